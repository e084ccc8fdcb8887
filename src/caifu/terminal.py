"""Terminal views for the CLI: Rich progress and summaries around the services."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from caifu.data.demo import DemoSummary
from caifu.services.container import Container
from caifu.services.ingest import BatchResult, Ingest
from caifu.settings import Settings


def ingest_with_progress(c: Container, tenant: str, paths: list[Path], mapping: Path | None,
                         table: str | None, console: Console) -> tuple[list[BatchResult], float]:
    service = Ingest(c)
    total = len(service.plan(paths, mapping, table))
    t0 = time.perf_counter()
    with _ingest_bar(console, total) as on_phase:
        results = service.ingest(tenant, paths, mapping=mapping, table=table, progress=on_phase)
    return results, time.perf_counter() - t0


@contextmanager
def _ingest_bar(console: Console, total: int) -> Iterator[Callable[[str, str], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} files"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("ingest", total=total)

        def on_phase(name: str, phase: str) -> None:
            if phase == "done":
                bar.advance(task)
            bar.update(task, description=f"{name}: {phase}")

        yield on_phase
        bar.update(task, description="ingest done")


def print_batches(results: list[BatchResult], elapsed: float, console: Console) -> None:
    t = Table("file", "table", "rows in", "loaded", "quarantined", "duplicates", "s",
              title="ingest: rows in = loaded + quarantined + duplicates")
    for col in t.columns[:2]:
        col.overflow = "fold"
    reasons: Counter[str] = Counter()
    for r in results:
        t.add_row(r.path.name, r.table, f"{r.rows_in:,}", f"{r.loaded:,}", f"{r.quarantined:,}",
                  f"{r.duplicates:,}", f"{sum(r.timings.values()):.1f}")
        reasons.update({f"{r.table}.{k}": v for k, v in r.reasons.items()})
    t.add_row("[bold]total", "", f"{sum(r.rows_in for r in results):,}",
              f"{sum(r.loaded for r in results):,}", f"{sum(r.quarantined for r in results):,}",
              f"{sum(r.duplicates for r in results):,}", f"{elapsed:.1f}")
    console.print(t)
    if reasons:
        rt = Table("reason (table.column:RULE)", "rows", title="top quarantine reasons")
        for code, n in reasons.most_common(10):
            rt.add_row(code, f"{n:,}")
        console.print(rt)


@contextmanager
def _generate_bar(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("demo broker", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"demo broker: {stage}", completed=done, total=total)

        yield on_progress


def generate_with_progress(out: Path, customers: int, seed: int, console: Console) -> DemoSummary:
    from caifu.data.demo import generate

    with _generate_bar(console) as on_progress:
        return generate(out, customers=customers, seed=seed, progress=on_progress)


def run_demo(workspace: Path, settings: Settings, customers: int, seed: int,
             console: Console) -> None:
    from caifu.services import demo

    t0 = time.perf_counter()
    console.rule("[bold]caifu demo — 演示券商")
    c = demo.prepare_workspace(workspace, settings)
    data_dir = c.root / "demo-data"
    summary = generate_with_progress(data_dir, customers, seed, console)
    console.print(f"generated {sum(summary.rows_per_file.values()):,} rows in "
                  f"{len(summary.rows_per_file)} files ({summary.elapsed_seconds:.1f} s)")
    results, elapsed = ingest_with_progress(c, demo.TENANT, [data_dir], None, None, console)
    print_batches(results, elapsed, console)
    console.print(f"[bold green]demo ready[/] in {time.perf_counter() - t0:.0f} s — workspace "
                  f"{c.root}")
    console.print(f"next: caifu ingest-log -t demo -w {workspace}   |   "
                  f"caifu quarantine -t demo -w {workspace}", soft_wrap=True)
