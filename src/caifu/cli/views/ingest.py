"""Terminal views for ``caifu ingest`` and ``caifu push``: progress bars, per-batch and
per-file outcomes, event latencies."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from caifu.cli.views import cited
from caifu.services.container import Container
from caifu.services.ingest.load import BatchResult, Ingest

if TYPE_CHECKING:
    from caifu.services.demo.broker import IngestTotals


def ingest_with_progress(c: Container, tenant: str, paths: list[Path], mapping: Path | None,
                         table: str | None, console: Console,
                         outcomes: list[BatchResult] | None = None
                         ) -> tuple[list[BatchResult], float]:
    service = Ingest(c)
    total = len(service.plan(paths, mapping, table))
    t0 = time.perf_counter()
    with _ingest_bar(console, total) as on_phase:
        results = service.ingest(tenant, paths, mapping=mapping, table=table, progress=on_phase,
                                 outcomes=outcomes)
    return results, time.perf_counter() - t0


def print_outcomes(outcomes: list[BatchResult], console: Console) -> None:
    """Per file, after a failed run: what landed, what failed and why, what was not tried."""
    t = Table("file", "table", "outcome", title="ingest stopped: per file")
    t.columns[2].overflow = "fold"
    for r in outcomes:
        what = {"loaded": f"[green]loaded[/] {r.loaded:,} rows ({r.quarantined:,} quarantined)",
                "failed": f"[red]failed[/]: {r.error}",
                "skipped": "[yellow]skipped[/]: not attempted"}[r.status]
        t.add_row(r.path.name, r.table, what)
    console.print(t)


@contextmanager
def _ingest_bar(console: Console, total: int) -> Iterator[Callable[[str, str], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} files"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("ingest", total=total)

        def on_phase(name: str, phase: str) -> None:
            if phase == "done":
                bar.advance(task)
            if phase.startswith("waiting"):  # a line of its own: the bar may sit a while
                bar.console.print(f"{name}: {phase}", highlight=False)
            bar.update(task, description=f"{name}: {phase}")

        yield on_phase
        bar.update(task, description="ingest done")


def print_batches(results: list[BatchResult], elapsed: float, console: Console,
                  totals: IngestTotals | None = None) -> None:
    """One row per batch (what each did) and a total row: the batches' own sums, or the
    metric layer's ``totals`` when given (the demo's summary)."""
    t = Table("file", "table", "rows in", "loaded", "quarantined", "duplicates", "s",
              title="ingest: rows in = loaded + quarantined + duplicates",
              caption=None if totals is None else f"total: {cited(totals.metrics)}",
              caption_justify="left")
    for col in t.columns[:2]:
        col.overflow = "fold"
    reasons: Counter[str] = Counter()
    for r in results:
        t.add_row(r.path.name, r.table, f"{r.rows_in:,}", f"{r.loaded:,}", f"{r.quarantined:,}",
                  f"{r.duplicates:,}", f"{sum(r.timings.values()):.1f}")
        reasons.update({f"{r.table}.{k}": v for k, v in r.reasons.items()})
    if totals is None:
        sums = [sum(r.rows_in for r in results), sum(r.loaded for r in results),
                sum(r.quarantined for r in results), sum(r.duplicates for r in results)]
    else:
        sums = [totals.rows[m] for m in ("rows_read", "rows_loaded", "rows_quarantined",
                                         "duplicate_rows")]
    t.add_row("[bold]total", "", *(f"{n:,}" for n in sums), f"{elapsed:.1f}")
    console.print(t)
    if reasons:
        rt = Table("reason (table.column:RULE)", "rows", title="top quarantine reasons")
        for code, n in reasons.most_common(10):
            rt.add_row(code, f"{n:,}")
        console.print(rt)


def push_events(c: Container, tenant: str, kind: str, path: Path, batch: int,
                console: Console) -> None:
    """Submit a file's events (one per line) and apply them, with the latency of each."""
    import statistics

    from caifu.core.errors import UnreadableSourceError
    from caifu.services.ingest.realtime import Events

    try:
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableSourceError(f"cannot read events: {exc}", path=str(path)) from None
    events = Events(c)
    submitted = events.submit_many(tenant, kind, lines)
    bad = [s for s in submitted if s.status == "rejected"]
    latencies: list[float] = []
    applied = duplicates = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:,}/{task.total:,}"), console=console) as bar:
        task = bar.add_task("applying", total=len(submitted) - len(bad))
        while True:
            done = events.process(tenant, limit=batch)
            if done.batch_id is None:
                break
            applied, duplicates = applied + done.applied, duplicates + done.duplicates
            latencies += done.latencies
            bar.advance(task, done.applied + done.duplicates)
    console.print(f"{len(submitted):,} events: {applied:,} applied, {duplicates:,} duplicate, "
                  f"{len(bad):,} rejected")
    for s in bad[:10]:
        console.print(f"  rejected #{s.event_seq}: {'; '.join(s.reasons)}", soft_wrap=True)
    if latencies:
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        console.print(f"latency received → applied: p50 {q[49]:.2f} s, p99 {q[98]:.2f} s "
                      f"(submitted in one go, so it includes waiting for earlier batches)")
