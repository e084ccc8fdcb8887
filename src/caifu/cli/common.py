"""What every ``caifu`` command shares: the app, consoles, common options, the container."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from caifu.core.errors import CaifuError, ConfigError
from caifu.core.identity import Principal
from caifu.settings import Settings


class Commands(TyperGroup):
    """The root command group: the one place a ``CaifuError`` becomes ``error: <message>``
    on stderr and the error's ``exit_code`` (``caifu.core.errors``). Every command and sub-app
    runs inside this ``invoke``, under the console script and ``CliRunner`` alike, so commands
    just let errors rise. A test that mounts a few sub-apps on its own root uses it too
    (``typer.Typer(cls=Commands)``)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CaifuError as exc:
            fail(exc)


def fail(exc: CaifuError) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


# A crash must not print local variables: they can hold customers' personal data.
app = typer.Typer(cls=Commands, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False, pretty_exceptions_short=True,
                  help="caifu (财富): broker wealth-business data platform.")
tenant_app = typer.Typer(no_args_is_help=True, help="Manage tenants (one per broker).")
app.add_typer(tenant_app, name="tenant")
# Piped or logged output (CI, `make demo > log`) gets room for whole numbers instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

WorkspaceOpt = Annotated[Path | None, typer.Option(
    "--workspace", "-w", help="Workspace folder [env CAIFU_WORKSPACE; default ./caifu-workspace]")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]
EngineOpt = Annotated[str, typer.Option(help="Pipeline engine: duckdb (default) or spark")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Business date YYYY-MM-DD")]


def _settings(workspace: Path | None) -> Settings:
    s = Settings()
    return s.model_copy(update={"workspace": workspace}) if workspace else s


def _container(workspace: Path | None):  # type: ignore[no-untyped-def]
    from caifu.services.container import build

    s = _settings(workspace)
    return build(s, s.workspace)



def option_date(value: str | None, option: str) -> dt.date | None:
    """An option's YYYY-MM-DD value (None when not given); ConfigError naming the option."""
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise ConfigError(f"{option} {value!r}: not a date YYYY-MM-DD") from None


def operator(tenant: str) -> Principal:
    """Whoever runs the terminal, as the metric layer's caller: the CLI works on the whole
    workspace, so its figures are tenant-wide (storage-only customers still count for
    nobody); `caifu metrics query --advisor/--branch` shows a narrower scope."""
    return Principal(tenant, getpass.getuser(), "ops")
