"""The ``caifu`` command: thin commands that parse input, call one service, show the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from caifu.core.errors import CaifuError
from caifu.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="caifu (财富): broker wealth-business data platform.")
tenant_app = typer.Typer(no_args_is_help=True, help="Manage tenants (one per broker).")
app.add_typer(tenant_app, name="tenant")
# Piped or logged output (CI, `make demo > log`) gets room for whole numbers instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

WorkspaceOpt = Annotated[Path | None, typer.Option(
    "--workspace", "-w", help="Workspace folder [env CAIFU_WORKSPACE; default ./caifu-workspace]")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]


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
         ) -> None:
    """The main job: a demo workspace, the demo broker's exports, their ingest, a summary."""
    from caifu.terminal import run_demo

    try:
        run_demo(workspace, Settings(), customers, seed, console)
    except CaifuError as exc:
        _fail(exc)


@app.command()
def docs(out: Annotated[Path, typer.Option(help="Where to write data-model.md")] = Path("docs/data-model.md")) -> None:
    """Regenerate docs/data-model.md from the table contracts."""
    from caifu.data.contracts import registry
    from caifu.data.contracts.docs import render

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(registry()), encoding="utf-8")
    console.print(f"wrote {out}")
