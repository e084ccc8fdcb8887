"""Compliance: data-subject requests (export, erase) and the audit log (verify, export)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, app, console, err, option_date

privacy_app = typer.Typer(no_args_is_help=True,
                          help="Data-subject requests (PIPL): export, erasure or storage only.")
app.add_typer(privacy_app, name="privacy")

CustomerArg = Annotated[str, typer.Argument(help="Customer id")]
ReasonOpt = Annotated[str, typer.Option(help="Why (written to the audit log); required")]
ActorOpt = Annotated[str, typer.Option(help="Who handles the request (audited)")]


def _counts(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in sorted(counts.items()):
        table.add_row(name, f"{n:,}")
    return table


@privacy_app.command("export")
def privacy_export(tenant: TenantOpt, customer: CustomerArg, reason: ReasonOpt, actor: ActorOpt,
                   out: Annotated[Path, typer.Option(help="JSON file to write")],
                   workspace: WorkspaceOpt = None) -> None:
    """Everything stored about the customer, unmasked, as one JSON document with a manifest."""
    from caifu.services.compliance import privacy

    doc = privacy.export_customer(_container(workspace), tenant, customer, actor, reason)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(_counts(f"export of {customer} (request {doc['request_id']})",
                          doc["manifest"]))
    console.print(f"written to {out} — it holds level-3 personal data: hand it to the "
                  "customer only", highlight=False)


@privacy_app.command("erase")
def privacy_erase(tenant: TenantOpt, customer: CustomerArg, reason: ReasonOpt, actor: ActorOpt,
                  today: Annotated[str | None, typer.Option(
                      help="The date the retention rule is judged on, YYYY-MM-DD [today]")] = None,
                  workspace: WorkspaceOpt = None) -> None:
    """Erase the customer, or make him storage only where account and trade records must be
    kept (≥ 20 years). Running it again completes an interrupted erasure."""
    from caifu.services.compliance import privacy

    day = option_date(today, "--today")
    r = privacy.erase_customer(_container(workspace), tenant, customer, actor, reason, day)
    console.print(_counts(f"{r.outcome}: {customer} (request {r.request_id})", r.deleted))
    if r.kept:
        console.print(_counts("kept (regulated records)", r.kept))
    console.print(r.rule, highlight=False, soft_wrap=True)
    if r.uploads_removed:
        console.print(f"uploads removed (they named him): {', '.join(r.uploads_removed)}",
                      highlight=False)
    if r.old_files:
        console.print(f"{r.old_files} replaced lake file(s) stay readable for running readers "
                      f"and are deleted by the first `caifu privacy retire` (or erasure) from "
                      f"{r.old_files_removed_by} UTC on", highlight=False, soft_wrap=True)
    if r.deferred:
        console.print(f"[yellow]not finished:[/] {', '.join(r.deferred)} have a batch in "
                      "flight; run the same command again once it has resolved")
        raise typer.Exit(1)


@privacy_app.command("retire")
def privacy_retire(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Delete the lake files erasures replaced, once no reader can still be reading them
    (24 h after the erasure). Schedule it daily; each erasure runs it too."""
    from caifu.services.compliance import privacy

    done = privacy.retire_files(_container(workspace), tenant)
    console.print(f"{done['removed']:,} old lake file(s) deleted, {done['waiting']:,} not yet "
                  "due")


audit_app = typer.Typer(no_args_is_help=True, help="The audit log (append-only, hash-chained).")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Recompute the tenant's hash chain; exit code 1 if any record was edited or deleted."""
    from caifu.services.compliance import audit

    report = audit.verify(_container(workspace), tenant)
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
    from caifu.services.compliance import audit

    n = audit.export(_container(workspace), tenant, out)
    console.print(f"{n:,} audit records written to {out}")
