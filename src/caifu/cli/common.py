"""What every ``caifu`` command shares: the app, consoles, common options, the container."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from caifu.core.errors import CaifuError
from caifu.settings import Settings

# A crash must not print local variables: they can hold customers' personal data.
app = typer.Typer(no_args_is_help=True, add_completion=False,
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


def _fail(exc: CaifuError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
