"""The audit log: verify the chain, export it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, _fail, app, console, err
from caifu.core.errors import CaifuError

audit_app = typer.Typer(no_args_is_help=True, help="The audit log (append-only, hash-chained).")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Recompute the tenant's hash chain; exit code 1 if any record was edited or deleted."""
    from caifu.services import audit

    try:
        report = audit.verify(_container(workspace), tenant)
    except CaifuError as exc:
        _fail(exc)
    if report.ok:
        console.print(f"audit log of {tenant}: {report.records:,} records, chain intact")
        return
    for problem in report.problems:
        err.print(f"[bold red]broken:[/] {problem}", highlight=False, soft_wrap=True)
    err.print(f"audit log of {tenant}: {report.records:,} records, "
              f"{len(report.problems)} problem(s)")
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(tenant: TenantOpt,
                 out: Annotated[Path, typer.Option(help="JSON Lines file to write")],
                 workspace: WorkspaceOpt = None) -> None:
    """Every record with its hashes as JSON Lines (a regulator can recompute the chain)."""
    from caifu.services import audit

    try:
        n = audit.export(_container(workspace), tenant, out)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"{n:,} audit records written to {out}")
