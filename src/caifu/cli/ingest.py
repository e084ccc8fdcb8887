"""``caifu ingest``: broker export files in, the ingest log, the quarantine, real-time events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    TenantOpt,
    WorkspaceOpt,
    _container,
    app,
    console,
)
from caifu.core.errors import CaifuError


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest")],
           tenant: TenantOpt,
           mapping: Annotated[Path | None, typer.Option(help="sources.yaml (default: beside each file)")] = None,
           table: Annotated[str | None, typer.Option(help="Target table for all files")] = None,
           workspace: WorkspaceOpt = None) -> None:
    """Ingest broker export files (CSV UTF-8/GBK, Parquet, JSON Lines)."""
    from caifu.cli.views.ingest import ingest_with_progress, print_batches, print_outcomes
    from caifu.services.ingest.load import BatchResult

    outcomes: list[BatchResult] = []
    try:
        results, elapsed = ingest_with_progress(_container(workspace), tenant, paths,
                                                mapping, table, console, outcomes)
    except CaifuError:
        if len(outcomes) > 1:  # which files landed, which failed, which were not tried
            print_outcomes(outcomes, console)
        raise
    print_batches(results, elapsed, console)


@app.command("ingest-log")
def ingest_log(tenant: TenantOpt, limit: int = 30, workspace: WorkspaceOpt = None) -> None:
    """Show recent ingest batches: rows in = loaded + quarantined + duplicates."""
    from caifu.services.ingest.load import ingest_log as read_log

    rows = read_log(_container(workspace), tenant, limit)
    t = RichTable("started (UTC)", "batch", "table", "status", "in", "loaded", "quarantined",
                  "dup", "source", title=f"ingest log — {tenant}")
    for r in rows:
        t.add_row(str(r["started_at"])[:19], r["batch_id"][:12], r["table_name"], r["status"],
                  f"{r['rows_in']:,}", f"{r['loaded']:,}", f"{r['quarantined']:,}",
                  f"{r['duplicates']:,}", Path(r["source_path"]).name)
    console.print(t)


@app.command()
def quarantine(tenant: TenantOpt,
               batch: Annotated[str | None, typer.Option(help="Batch id or its first characters (see ingest-log)")] = None,
               limit: int = 50,
               unmask: Annotated[bool, typer.Option(
                   help="Show level-3 values in clear; needs --reason, written to the audit log")] = False,
               reason: Annotated[str, typer.Option(help="Why the raw rows are needed (audited)")] = "",
               actor: Annotated[str | None, typer.Option(
                   help="Who reads them [default: the OS user]")] = None,
               workspace: WorkspaceOpt = None) -> None:
    """Show quarantined rows with their reasons and the raw row (personal data masked unless
    --unmask, as in the API)."""
    import getpass
    import json

    from caifu.services.ingest.uploads import quarantine as read_quarantine

    page = read_quarantine(_container(workspace), tenant, batch, limit, 0,
                           unmask_by=(actor or getpass.getuser()) if unmask else None,
                           reason=reason)
    t = RichTable("batch", "table", "file", "row", "reasons", "raw",
                  title=f"quarantine — {tenant} (newest batches first)")
    t.columns[-1].overflow = "fold"
    for r in page["items"]:
        raw = r["row"] if isinstance(r["row"], str | None) else json.dumps(r["row"],
                                                                           ensure_ascii=False)
        t.add_row(r["batch_id"][:12], r["table"], r["file"], str(r["row_number"]),
                  ";".join(r["reasons"]), raw or "")
    console.print(t)
    if page["total"] > len(page["items"]):
        console.print(f"{len(page['items'])} of {page['total']:,} rows shown (--limit)")


# --- real-time events ---------------------------------------------------------------------------

events_app = typer.Typer(no_args_is_help=True,
                         help="The real-time path: chat messages and APP events.")
app.add_typer(events_app, name="events")


@events_app.command("push")
def events_push(path: Annotated[Path, typer.Argument(help="JSON Lines, one event per line")],
                tenant: TenantOpt,
                kind: Annotated[str, typer.Option(help="chat_message or app_event")],
                batch: Annotated[int, typer.Option(help="Events per micro-batch")] = 1000,
                workspace: WorkspaceOpt = None) -> None:
    """Submit events from a file, apply them in micro-batches, report latency."""
    from caifu.cli.views.ingest import push_events

    push_events(_container(workspace), tenant, kind, path, batch, console)


@events_app.command("status")
def events_status(tenant: TenantOpt, limit: int = 20, workspace: WorkspaceOpt = None) -> None:
    """Inbox counts by status, and the latest rejected events with their reasons."""
    from caifu.services.ingest.realtime import inbox_counts, rejected

    c = _container(workspace)
    counts, bad = inbox_counts(c, tenant), rejected(c, tenant, limit)
    console.print("  ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())) or "inbox empty")
    # the payloads are not shown: chat content and WeCom ids are personal data (level 3)
    t = RichTable("seq", "kind", "received (UTC)", "reasons", title="rejected events")
    for r in bad:
        t.add_row(str(r["event_seq"]), r["kind"], str(r["received_at"])[:19], r["reasons"])
    if bad:
        console.print(t)
