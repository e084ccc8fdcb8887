"""``caifu risk aliases`` / ``caifu risk relations``: the tenant's reference data for the
company linker.

    caifu risk aliases load FILE -t T [--replace]     name, code, kind, valid_from, valid_to
    caifu risk aliases list -t T
    caifu risk relations load FILE -t T [--replace]   party, code, relation
    caifu risk relations list -t T

CSV (UTF-8, a header) or JSON Lines. A file is loaded whole or not at all: every bad row is
printed with where, field, reason and value, and the command exits 2 with nothing written.
The CLI works as the tenant's operator (``ops``); ``--actor`` (default the OS user) is who
the audit log records.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, console
from caifu.cli.risk import risk_app
from caifu.core.identity import Principal

aliases_app = typer.Typer(no_args_is_help=True,
                          help="Company aliases and former names the linker adds to the "
                               "A-share list")
relations_app = typer.Typer(no_args_is_help=True,
                            help="Unlisted parties (shareholders, issuers, subsidiaries) → "
                                 "listed companies")
risk_app.add_typer(aliases_app, name="aliases")
risk_app.add_typer(relations_app, name="relations")

FileArg = Annotated[Path, typer.Argument(help="CSV or JSON Lines file", exists=True,
                                         dir_okay=False)]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="Remove the tenant's rows not in "
                                                            "the file")]
ActorOpt = Annotated[str | None, typer.Option(help="Who loads it [default: OS user]")]


def _operator(tenant: str, actor: str | None) -> Principal:
    return Principal(tenant, actor or getpass.getuser(), "ops")


def _load(table: str, file: Path, tenant: str, replace: bool, actor: str | None,
          workspace: Path | None) -> None:
    from caifu.services.risk.reference import load

    r = load(_container(workspace), _operator(tenant, actor), table, file, replace_all=replace)
    if not r.loaded:
        t = RichTable("where", "field", "reason", "message", "value",
                      title=f"{file.name}: {len(r.rejected)} bad rows of {r.rows} — nothing "
                            "loaded")
        for b in r.rejected:
            t.add_row(b.where, b.field or "", b.reason, escape(b.message), escape(b.value))
        console.print(t)
        raise typer.Exit(2)
    console.print(f"{table} ({tenant}): {r.rows} rows from {escape(file.name)} — added "
                  f"{r.added}, updated {r.updated}" + (f", removed {r.removed}" if replace
                                                       else "") + " (audited)")


def _list(table: str, tenant: str, workspace: Path | None) -> None:
    from caifu.services.risk.reference import FIELDS, rows

    got = rows(_container(workspace), _operator(tenant, None), table)
    t = RichTable(*FIELDS[table], "loaded", title=f"{table} — {tenant} ({len(got)})")
    for r in got:
        t.add_row(*(escape("" if r[f] is None else str(r[f])) for f in FIELDS[table]),
                  f"{r['loaded_at']:%Y-%m-%d %H:%M} {escape(r['loaded_by'])}")
    console.print(t)


@aliases_app.command("load")
def aliases_load(file: FileArg, tenant: TenantOpt, replace: ReplaceOpt = False,
                 actor: ActorOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Load aliases (name, code, kind former|alias, valid_from, valid_to, note); audited."""
    _load("aliases", file, tenant, replace, actor, workspace)


@aliases_app.command("list")
def aliases_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """The tenant's aliases and former names."""
    _list("aliases", tenant, workspace)


@relations_app.command("load")
def relations_load(file: FileArg, tenant: TenantOpt, replace: ReplaceOpt = False,
                   actor: ActorOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Load relations (party, code, relation, note); audited."""
    _load("relations", file, tenant, replace, actor, workspace)


@relations_app.command("list")
def relations_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """The tenant's party relations."""
    _list("relations", tenant, workspace)
