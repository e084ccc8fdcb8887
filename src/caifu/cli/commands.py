"""Data, profile, tag, segment and event commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    AsOfOpt,
    EngineOpt,
    TenantOpt,
    WorkspaceOpt,
    _container,
    _fail,
    _settings,
    app,
    console,
    tenant_app,
)
from caifu.core.errors import CaifuError
from caifu.settings import Settings


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Workspace folder")] = Path("caifu-workspace"),
         sor_url: Annotated[str | None, typer.Option(help="System-of-record URL (default: SQLite in the workspace)")] = None) -> None:
    """Create a workspace: system of record (migrated) and lake."""
    from caifu.adapters.sor.store import current_revision
    from caifu.services.workspace import init_workspace

    try:
        c = init_workspace(path, _settings(path), sor_url)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"workspace [bold]{c.root}[/] ready: SoR {c.engine.dialect.name} "
                  f"(schema {current_revision(c.engine)}), lake {c.lake.root}")


@tenant_app.command("create")
def tenant_create(tenant_id: str, name: Annotated[str, typer.Option(help="Broker name")] = "",
                  timezone: str = "Asia/Shanghai", workspace: WorkspaceOpt = None) -> None:
    """Create a tenant."""
    from caifu.services.workspace import create_tenant

    try:
        t = create_tenant(_container(workspace), tenant_id, name or tenant_id, timezone)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"tenant [bold]{t.tenant_id}[/] created ({t.name}, {t.timezone})")


@tenant_app.command("list")
def tenant_list(workspace: WorkspaceOpt = None) -> None:
    """List tenants."""
    from caifu.services.workspace import list_tenants

    try:
        tenants = list_tenants(_container(workspace))
    except CaifuError as exc:
        _fail(exc)
    for t in tenants:
        console.print(f"{t.tenant_id}\t{t.name}\t{t.timezone}")


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest")],
           tenant: TenantOpt,
           mapping: Annotated[Path | None, typer.Option(help="sources.yaml (default: beside each file)")] = None,
           table: Annotated[str | None, typer.Option(help="Target table for all files")] = None,
           workspace: WorkspaceOpt = None) -> None:
    """Ingest broker export files (CSV UTF-8/GBK, Parquet, JSON Lines)."""
    from caifu.terminal import ingest_with_progress, print_batches

    try:
        results, elapsed = ingest_with_progress(_container(workspace), tenant, paths,
                                                mapping, table, console)
    except CaifuError as exc:
        _fail(exc)
    print_batches(results, elapsed, console)


@app.command("ingest-log")
def ingest_log(tenant: TenantOpt, limit: int = 30, workspace: WorkspaceOpt = None) -> None:
    """Show recent ingest batches: rows in = loaded + quarantined + duplicates."""
    from caifu.services.ingest import ingest_log as read_log

    try:
        rows = read_log(_container(workspace), tenant, limit)
    except CaifuError as exc:
        _fail(exc)
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
               limit: int = 50, workspace: WorkspaceOpt = None) -> None:
    """Show quarantined rows with their reasons and the raw row."""
    from caifu.services.ingest import quarantined_rows

    try:
        rows = quarantined_rows(_container(workspace), tenant, batch, limit)
    except CaifuError as exc:
        _fail(exc)
    t = RichTable("batch", "table", "file", "row", "reasons", "raw",
                  title=f"quarantine — {tenant} (newest batches first)")
    for r in rows:
        t.add_row(r["batch_id"][:12], r["table_name"], Path(r["source_path"]).name,
                  str(r["row_number"]), r["reasons"], r["raw_json"][:120])
    console.print(t)


@app.command("demo-data")
def demo_data(out: Annotated[Path, typer.Option(help="Output folder")] = Path("demo-data"),
              customers: int = 100_000, seed: int = 7) -> None:
    """Write a realistic, deterministic demo broker's exports (with some bad rows)."""
    from caifu.terminal import generate_with_progress

    try:
        summary = generate_with_progress(out, customers, seed, console)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"wrote {sum(summary.rows_per_file.values()):,} rows in "
                  f"{len(summary.rows_per_file)} files to {out} in {summary.elapsed_seconds:.1f} s")


@app.command()
def demo(customers: int = 100_000, seed: int = 7,
         workspace: Annotated[Path, typer.Option(
             "--workspace", "-w", help="Demo workspace; replaced on every run")] = Path("caifu-demo"),
         serve: Annotated[bool, typer.Option(
             help="Then start the API with one demo user per role")] = False,
         port: Annotated[int, typer.Option(help="Port for --serve")] = 8000,
         ) -> None:
    """The main job: a demo workspace, the demo broker's exports, their ingest, a summary."""
    from caifu.terminal import run_demo, serve_demo

    try:
        run_demo(workspace, Settings(), customers, seed, console)
        if serve:
            serve_demo(workspace, Settings(), port, console)
    except CaifuError as exc:
        _fail(exc)


@app.command()
def docs(out: Annotated[Path, typer.Option(help="Where to write data-model.md")] = Path("docs/data-model.md"),
         features_out: Annotated[Path, typer.Option(help="Where to write profile-features.md")] = Path("docs/profile-features.md")) -> None:
    """Regenerate docs/data-model.md and docs/profile-features.md from the code."""
    from caifu.data.contracts import registry
    from caifu.data.contracts.docs import render
    from caifu.pipelines import profile_docs

    for path, text in ((out, render(registry())), (features_out, profile_docs.render())):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path}")


# --- profiles, tags, segments -----------------------------------------------------------------

tags_app = typer.Typer(no_args_is_help=True, help="Tag definitions and who holds which tag.")
app.add_typer(tags_app, name="tags")
segment_app = typer.Typer(no_args_is_help=True, help="Segments: expressions over features and tags.")
app.add_typer(segment_app, name="segment")


def _tag_names(c, tenant: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from caifu.services.tagging import load_definitions

    definitions, _ = load_definitions(c, tenant)
    return {d.id: d.name for d in definitions}


@app.command("build")
def build_cmd(tenant: TenantOpt, engine: EngineOpt = "duckdb", as_of: AsOfOpt = None,
              workspace: WorkspaceOpt = None) -> None:
    """Build profiles, tags (with evidence) and segment sizes as of a date (default: newest data)."""
    from caifu.services.build import check_as_of
    from caifu.terminal import build_with_progress, print_build

    try:
        c = _container(workspace)
        result = build_with_progress(c, tenant, engine, check_as_of(as_of), console)
        print_build(result, console, _tag_names(c, tenant))
    except CaifuError as exc:
        _fail(exc)


@app.command()
def customer(customer_id: str, tenant: TenantOpt,
             unmask: Annotated[bool, typer.Option(
                 help="Show level-3 data in clear; needs --reason, written to the audit log")] = False,
             reason: Annotated[str, typer.Option(help="Why the data is needed (audited)")] = "",
             actor: Annotated[str | None, typer.Option(
                 help="Who reads it [default: the OS user]")] = None,
             workspace: WorkspaceOpt = None) -> None:
    """One customer's profile and tags with evidence (personal data masked unless --unmask)."""
    import getpass

    from caifu.services.customers import Unmask, customer_view
    from caifu.terminal import print_customer

    try:
        c = _container(workspace)
        who = Unmask(actor or getpass.getuser(), reason) if unmask else None
        print_customer(customer_view(c, tenant, customer_id, who), console,
                       _tag_names(c, tenant))
    except CaifuError as exc:
        _fail(exc)


@tags_app.command("list")
def tags_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Tag definitions in force and how many customers hold each."""
    from caifu.services.customers import tag_counts
    from caifu.services.tagging import load_definitions

    try:
        c = _container(workspace)
        definitions, source = load_definitions(c, tenant)
        counts = dict(tag_counts(c, tenant))
    except CaifuError as exc:
        _fail(exc)
    t = RichTable("tag", "name", "kind", "v", "customers", "definition",
                  title=f"tags — {tenant} ({source})")
    for d in definitions:
        spec = d.spec
        what = (getattr(spec, "when", None) or ", ".join(getattr(spec, "dictionaries", ())
                + getattr(spec, "patterns", ())) or f"{getattr(spec, 'score', '')} ≥ "
                f"{getattr(spec, 'min_score', '')}")
        t.add_row(d.id, d.name, d.kind, str(d.version), f"{counts.get(d.id, 0):,}", what)
    console.print(t)


@tags_app.command("init")
def tags_init(tenant: TenantOpt, force: bool = False, workspace: WorkspaceOpt = None) -> None:
    """Copy the default tag definitions into the workspace to edit."""
    from caifu.services.tagging import init_config

    try:
        path = init_config(_container(workspace), tenant, force)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"wrote {path}; edit it, then `caifu build -t {tenant}`")


@segment_app.command("create")
def segment_create(segment_id: str, tenant: TenantOpt,
                   where: Annotated[str, typer.Option(help="Expression, e.g. \"tag:dormant and aum > 100000\"")],
                   name: Annotated[str, typer.Option(help="Display name")] = "",
                   workspace: WorkspaceOpt = None) -> None:
    """Create or replace a segment."""
    from caifu.services.segments import Segments

    try:
        Segments(_container(workspace)).save(tenant, segment_id, name or segment_id, where)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"segment [bold]{segment_id}[/] saved; its size is recorded by each build")


@segment_app.command("list")
def segment_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Segments with their latest recorded size."""
    from caifu.services.segments import Segments

    try:
        rows = Segments(_container(workspace)).list(tenant)
    except CaifuError as exc:
        _fail(exc)
    t = RichTable("segment", "name", "members", "as of", "expression", title=f"segments — {tenant}")
    for r in rows:
        latest = r["latest"]
        t.add_row(r["segment_id"], r["name"], f"{latest[1]:,}" if latest else "–",
                  str(latest[0]) if latest else "–", r["expression"])
    console.print(t)


@segment_app.command("members")
def segment_members(segment_id: str, tenant: TenantOpt, as_of: AsOfOpt = None,
                    out: Annotated[Path | None, typer.Option(help="Export to .csv or .parquet")] = None,
                    engine: EngineOpt = "duckdb", limit: int = 20,
                    workspace: WorkspaceOpt = None) -> None:
    """Members of a segment as of a date (default: the newest profile); export with --out."""
    from caifu.services.build import check_as_of
    from caifu.services.segments import Segments, export

    try:
        day, members = Segments(_container(workspace)).members(
            tenant, segment_id, check_as_of(as_of), engine)
        if out is not None:
            export(members, out)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"{segment_id}: {members.num_rows:,} members as of {day}")
    if out is not None:
        console.print(f"wrote {out}")
    for cid in members["customer_id"].to_pylist()[:limit]:
        console.print(f"  {cid}")


@segment_app.command("change")
def segment_change(segment_id: str, tenant: TenantOpt,
                   before: Annotated[str, typer.Option("--from", help="Earlier date")],
                   after: Annotated[str, typer.Option("--to", help="Later date")],
                   workspace: WorkspaceOpt = None) -> None:
    """How a segment's membership changed between two dates."""
    from caifu.services.build import check_as_of
    from caifu.services.segments import Segments

    try:
        d1, d2 = check_as_of(before), check_as_of(after)
        assert d1 is not None and d2 is not None
        ch = Segments(_container(workspace)).size_change(tenant, segment_id, d1, d2)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"{segment_id}: {ch.members_before:,} on {ch.before} → {ch.members_after:,} on "
                  f"{ch.after} ({ch.members_after - ch.members_before:+,}; "
                  f"{ch.joined:,} joined, {ch.left:,} left)")


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
    from caifu.terminal import push_events

    try:
        push_events(_container(workspace), tenant, kind, path, batch, console)
    except CaifuError as exc:
        _fail(exc)


@events_app.command("status")
def events_status(tenant: TenantOpt, limit: int = 20, workspace: WorkspaceOpt = None) -> None:
    """Inbox counts by status, and the latest rejected events with their reasons."""
    from caifu.services.events import inbox_counts, rejected

    try:
        c = _container(workspace)
        counts, bad = inbox_counts(c, tenant), rejected(c, tenant, limit)
    except CaifuError as exc:
        _fail(exc)
    console.print("  ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())) or "inbox empty")
    # the payloads are not shown: chat content and WeCom ids are personal data (level 3)
    t = RichTable("seq", "kind", "received (UTC)", "reasons", title="rejected events")
    for r in bad:
        t.add_row(str(r["event_seq"]), r["kind"], str(r["received_at"])[:19], r["reasons"])
    if bad:
        console.print(t)
