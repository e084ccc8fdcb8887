"""``caifu risk``: risk news in (files, a watched folder), its stories and rejected documents."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, app, console, err
from caifu.core.errors import SourceError

risk_app = typer.Typer(no_args_is_help=True,
                       help="Risk news (舆情): news and announcements folded into stories.")
app.add_typer(risk_app, name="risk")

PROCESSING_FAILED = 4  # the documents are stored; a story's processing failed

EncodingOpt = Annotated[str, typer.Option(help="Encoding of CSV/JSON Lines files (utf-8, gbk)")]


def _outcomes_table(rows: list[tuple[str, object, str]], title: str) -> RichTable:
    t = RichTable("file", "received", "stored", "new stories", "exact", "near", "duplicates",
                  "rejected", "outcome", title=title)
    for name, report, note in rows:
        if report is None:
            t.add_row(escape(name), "", "", "", "", "", "", "", f"[red]{escape(note)}[/]")
            continue
        r = report.plain()  # type: ignore[attr-defined]
        t.add_row(escape(name), *(f"{r[k]:,}" for k in (
            "received", "stored", "new_stories", "folded_exact", "folded_near", "duplicates",
            "rejected")), escape(note) or ("balanced" if r["balanced"] else "[red]unbalanced[/]"))
    return t


def _processing_table(processed: list, title: str) -> RichTable:  # type: ignore[type-arg]
    """Stories → event, severity, holders, new alerts (or why processing failed)."""
    t = RichTable("story", "title", "event", "severity", "by", "listed", "holders",
                  "new alerts", "repeats", "s", title=title)
    t.columns[1].overflow = "fold"
    for col in (0, 2, 5):
        t.columns[col].no_wrap = True
    for p in processed:
        o = p.outcome
        if p.error:
            t.add_row(p.story_id[:12], escape(p.title[:40]), "[red]failed[/]", "", "", "", "",
                      "", "", f"{p.seconds:.2f}")
            continue
        t.add_row(p.story_id[:12], escape(p.title[:40]), o.event_type or "", o.severity or "",
                  o.decided_by, " ".join(o.listed), f"{o.holders:,}", f"{o.new_alerts:,}",
                  f"{o.repeats:,}", f"{p.seconds:.2f}")
    return t


def _print_processing(processed: list, title: str) -> int:  # type: ignore[type-arg]
    """Print the processing table and each failure; how many failed."""
    if not processed:
        return 0
    console.print(_processing_table(processed, title))
    failed = [p for p in processed if p.error]
    for p in failed:
        console.print(f"  [red]processing failed[/] {p.story_id}: {escape(p.error or '')}",
                      highlight=False, soft_wrap=True)
    if failed:
        console.print(f"  the documents are stored; run again: caifu risk process -t … "
                      f"{' '.join(p.story_id for p in failed)}", highlight=False)
    return len(failed)


def _print_rejections(report: object, name: str, limit: int = 10) -> None:
    rejections = report.rejections  # type: ignore[attr-defined]
    for rej in rejections[:limit]:
        console.print(f"  {escape(name)}: {escape(rej.text())}", highlight=False)
    if len(rejections) > limit:
        console.print(f"  … {len(rejections) - limit:,} more: caifu risk rejections "
                      f"--batch {report.batch_id}")  # type: ignore[attr-defined]


@risk_app.command("ingest")
def ingest(paths: Annotated[list[Path], typer.Argument(help="JSON Lines, JSON or CSV files")],
           tenant: TenantOpt, workspace: WorkspaceOpt = None,
           encoding: EncodingOpt = "utf-8") -> None:
    """Take in news files: each file one batch, received = stored + duplicates + rejected.
    Rejected documents are kept (``caifu risk rejections``); a file refused whole (format,
    encoding, header) is reported and the others go on; exit 3 if any was refused. The
    stories each file founded are then linked, classified and — a negative risk — turned
    into alerts and advisor tasks for every holder; exit 4 if a story's processing failed
    (its documents are stored; ``caifu risk process`` runs it again)."""
    from caifu.services.risk.intake import Intake
    from caifu.services.risk.processing import StoryProcessed, after_intake

    c = _container(workspace)
    intake = Intake(c)
    rows: list[tuple[str, object, str]] = []
    processed: list[StoryProcessed] = []
    refused = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} files"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("risk news", total=len(paths))
        for path in paths:
            progress.update(task, description=f"risk news: {escape(path.name)}")
            try:
                report = intake.take_file(tenant, path, encoding=encoding)
            except SourceError as exc:
                refused += 1
                rows.append((path.name, None, str(exc)))
            else:
                rows.append((path.name, report, ""))
                progress.update(task, description=f"processing: {escape(path.name)}")
                processed.extend(after_intake(c, tenant, report))
            progress.advance(task)
    console.print(_outcomes_table(rows, f"risk news — {tenant}"))
    for name, outcome, note in rows:
        if outcome is not None:
            _print_rejections(outcome, name)
        else:
            console.print(f"  [red]refused:[/] {escape(note)}", highlight=False, soft_wrap=True)
    failed = _print_processing(processed, f"new stories → alerts and tasks — {tenant}")
    if refused:
        err.print(f"[bold red]error:[/] {refused} of {len(paths)} file(s) refused whole")
        raise typer.Exit(SourceError.exit_code)
    if failed:
        err.print(f"[bold red]error:[/] processing failed for {failed} stor"
                  f"{'y' if failed == 1 else 'ies'} (stored; caifu risk process retries)")
        raise typer.Exit(PROCESSING_FAILED)


@risk_app.command("watch")
def watch(folder: Annotated[Path, typer.Argument(help="The folder to watch")],
          tenant: TenantOpt, workspace: WorkspaceOpt = None,
          interval: Annotated[float, typer.Option(help="Seconds between polls")] = 5.0,
          once: Annotated[bool, typer.Option(
              help="Take in what is there now (no settling wait) and stop")] = False) -> None:
    """Watch a folder: new .jsonl/.json/.csv files are taken in, then moved to processed/
    (or to rejected/ with a .error.txt when refused whole). Stop with Ctrl-C."""
    from caifu.services.risk.watch import Watcher

    watcher = Watcher(_container(workspace), tenant, folder, settle_polls=0 if once else 1)
    console.print(f"watching {escape(str(folder))} for {tenant} every {interval:g} s"
                  if not once else f"taking in {escape(str(folder))} for {tenant}")
    try:
        while True:
            outcomes = watcher.poll()
            if outcomes:
                console.print(_outcomes_table(
                    [(o.name, o.report, o.error or f"→ {o.moved_to.parent.name}/")
                     for o in outcomes], f"risk news — {tenant}"))
                _print_processing([p for o in outcomes for p in o.processed],
                                  f"new stories → alerts and tasks — {tenant}")
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        console.print("stopped")


@risk_app.command("stories")
def stories(tenant: TenantOpt, limit: int = 30, workspace: WorkspaceOpt = None) -> None:
    """Stories, newest published first, with how many documents and sites carry each."""
    from caifu.services.risk.intake import list_stories

    page = list_stories(_container(workspace), tenant, limit)
    t = RichTable("story", "first published (UTC)", "docs", "sites", "title",
                  title=f"risk stories — {tenant} ({page['total']:,})")
    t.columns[-1].overflow = "fold"
    for s in page["items"]:
        t.add_row(s["story_id"][:12], f"{s['first_published_at']:%Y-%m-%d %H:%M}",
                  str(s["document_count"]), str(s["site_count"]), escape(s["title"]))
    console.print(t)


@risk_app.command("story")
def story(story_id: Annotated[str, typer.Argument(help="The story id")], tenant: TenantOpt,
          workspace: WorkspaceOpt = None) -> None:
    """One story and every source: site, URL, published time and how it joined."""
    from caifu.services.risk.intake import get_story

    s = get_story(_container(workspace), tenant, story_id)
    console.print(f"[bold]{escape(s['title'])}[/]\n{s['story_id']} · {s['document_count']} "
                  f"documents on {s['site_count']} sites", highlight=False)
    t = RichTable("published (UTC)", "site", "fold", "similarity", "url")
    t.columns[-1].overflow = "fold"
    for d in s["sources"]:
        sim = f"{d['similarity']:.2f}" if d["similarity"] is not None else ""
        t.add_row(f"{d['published_at']:%Y-%m-%d %H:%M}", escape(d["site"]), d["fold"], sim,
                  escape(d["url"]))
    console.print(t)


@risk_app.command("rejections")
def rejections(tenant: TenantOpt,
               batch: Annotated[str | None, typer.Option(help="Batch id or its first characters")] = None,
               limit: int = 50, workspace: WorkspaceOpt = None) -> None:
    """Rejected documents, newest first: file, where, field, reason, the document as received."""
    from caifu.services.risk.intake import list_rejections

    page = list_rejections(_container(workspace), tenant, batch, limit)
    t = RichTable("batch", "file", "where", "field", "reason", "message", "raw",
                  title=f"rejected risk documents — {tenant} ({page['total']:,})")
    t.columns[-1].overflow = "fold"
    for r in page["items"]:
        t.add_row(r["batch_id"][:14], escape(r["origin"]), r["location"], r["field"] or "",
                  r["reason"], escape(r["message"]), escape(r["raw"][:300]))
    console.print(t)


@risk_app.command("process")
def process(tenant: TenantOpt,
            story_ids: Annotated[list[str] | None, typer.Argument(
                help="Story ids (default: every unprocessed story)")] = None,
            limit: Annotated[int, typer.Option(help="At most this many unprocessed stories")]
            = 1000, workspace: WorkspaceOpt = None) -> None:
    """Link, classify and raise alerts and tasks for stories: the given ones, or every
    unprocessed story (never classified, or whose last processing failed). Safe to repeat: a
    story seen again raises nothing new. Exit 4 if one failed again."""
    from caifu.services.risk.processing import process as run
    from caifu.services.risk.processing import unprocessed

    c = _container(workspace)
    todo = list(story_ids or []) or unprocessed(c, tenant, limit)
    if not todo:
        console.print(f"no unprocessed stories for {tenant}")
        return
    failed = _print_processing(run(c, tenant, todo), f"stories → alerts and tasks — {tenant}")
    if failed:
        raise typer.Exit(PROCESSING_FAILED)
