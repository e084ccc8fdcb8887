"""``caifu metrics export`` / ``caifu metrics import``: the metric catalog as an Open Semantic
Interchange (Apache Ossie) document, and definitions read back from one.

    caifu metrics export --format osi --out FILE -t T    FILE .yaml (default) or .json
    caifu metrics import FILE -t T [--check]              --check: compare, write nothing

``register(metrics_app)`` adds both commands to the ``caifu metrics`` group.
When a definition in the file differs from the tenant's under the same id, import writes
nothing and fails (exit 2, the error names them); ``--check`` prints the comparison and exits
1.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, console
from caifu.core.errors import ConfigError

FORMATS = ("osi",)


def register(metrics_app: typer.Typer) -> None:
    metrics_app.command("export")(export_cmd)
    metrics_app.command("import")(import_cmd)


def export_cmd(out: Annotated[Path, typer.Option("--out", help="File to write (.yaml or .json)",
                                                 dir_okay=False)],
               tenant: TenantOpt,
               format: Annotated[str, typer.Option("--format", help="osi (Open Semantic "
                                                   "Interchange / Apache Ossie)")] = "osi",
               workspace: WorkspaceOpt = None) -> None:
    """Export the tenant's metric definitions (shipped and its own)."""
    from caifu.services.metrics.interchange import export_osi

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: one of {', '.join(FORMATS)}")
    r = export_osi(_container(workspace), tenant, out)
    console.print(f"{escape(str(r.path))}: OSI semantic model of {tenant} — {r.datasets} "
                  f"datasets, {r.relationships} relationships, {r.dimensions} dimensions, "
                  f"{r.metrics} metrics")


def import_cmd(file: Annotated[Path, typer.Argument(help="An OSI document caifu exported",
                                                    exists=True, dir_okay=False)],
               tenant: TenantOpt,
               check: Annotated[bool, typer.Option("--check", help="Compare with the "
                                                   "tenant's catalog; write nothing")] = False,
               actor: Annotated[str | None, typer.Option(help="Who imports it [default: OS "
                                                         "user]")] = None,
               workspace: WorkspaceOpt = None) -> None:
    """Read metric definitions from an OSI document into the tenant's catalog."""
    from caifu.services.metrics.interchange import import_osi

    r = import_osi(_container(workspace), tenant, file, check=check,
                   actor=actor or getpass.getuser())
    cat = r.catalog
    console.print(f"{escape(file.name)}: {len(cat.datasets)} datasets, "
                  f"{len(cat.dimensions)} dimensions, {len(cat.metrics)} metrics (catalog "
                  f"{cat.version}) — {len(r.same)} identical to the tenant's, {len(r.new)} new, "
                  f"{len(r.changed)} different")
    for item in r.new:
        console.print(f"  new      {escape(item)}")
    for item in r.changed:
        console.print(f"  [red]differs[/]  {escape(item)}")
    if r.written is not None:
        console.print(f"written to {escape(str(r.written))} (audited)")
    elif check and r.new and not r.changed:
        console.print("--check: nothing written")
    if r.changed:
        raise typer.Exit(1)
