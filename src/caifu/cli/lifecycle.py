"""``caifu lifecycle``: stage counts, the last three months' flows, one customer's history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    AsOfOpt,
    EngineOpt,
    TenantOpt,
    WorkspaceOpt,
    _container,
    _fail,
    app,
    console,
)
from caifu.core.errors import CaifuError

FLOW_DAYS = 91  # "the last three months": 13 weeks, the same weekdays at both ends


def _names() -> dict[str, str]:
    from caifu.analytics.lifecycle import STAGE_NAMES

    return {**STAGE_NAMES, "new": "新开户"}


def _counts(counts: dict[str, int], as_of: dt.date) -> RichTable:
    names = _names()
    total = sum(counts.values()) or 1
    t = RichTable(title=f"生命周期阶段（{as_of}）", title_justify="left")
    for col in ("阶段", "stage", "客户数", "占比"):
        t.add_column(col, justify="right" if col in ("客户数", "占比") else "left")
    for stage, n in counts.items():
        t.add_row(names[stage], stage, f"{n:,}", f"{100 * n / total:.1f}%")
    return t


def _flows(matrix: pa.Table, start: dt.date, end: dt.date) -> RichTable:
    from caifu.analytics.lifecycle import REPORT_ORDER

    names = _names()
    cells = {(r["from_stage"], r["to_stage"]): r["customers"] for r in matrix.to_pylist()}
    rows = [s for s in ("new", *REPORT_ORDER) if any(k[0] == s for k in cells)]
    cols = [s for s in REPORT_ORDER if any(k[1] == s for k in cells)]
    t = RichTable(title=f"阶段流转 {start} → {end}（行：起点阶段，列：终点阶段）",
                  title_justify="left")
    t.add_column("从 \\ 到")
    for c in cols:
        t.add_column(names[c], justify="right")
    for r in rows:
        t.add_row(names[r], *(f"{cells[(r, c)]:,}" if (r, c) in cells else "·" for c in cols))
    return t


def _history(rows: pa.Table, customer: str) -> RichTable:
    names = _names()
    t = RichTable(title=f"客户 {customer} 的阶段变化", title_justify="left")
    for col in ("日期", "从", "到", "触发", "说明"):
        t.add_column(col, overflow="fold")
    for r in rows.to_pylist():
        t.add_row(str(r["date"]), names.get(r["from_stage"] or "", "—"),
                  names[r["to_stage"]], r["trigger"], r["trigger_text"])
    return t


@app.command()
def lifecycle(tenant: TenantOpt, as_of: AsOfOpt = None,
              customer: Annotated[str | None, typer.Option(
                  "--customer", help="Show this customer's dated transitions")] = None,
              engine: EngineOpt = "duckdb", workspace: WorkspaceOpt = None) -> None:
    """Lifecycle stages as of a date: counts per stage, the flows of the last three months,
    and (with --customer) one customer's transitions with their triggers."""
    from caifu.services.build import check_as_of
    from caifu.services.lifecycle import Lifecycle

    try:
        c = _container(workspace)
        result = Lifecycle(c).run(tenant, check_as_of(as_of), engine=engine)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"[bold]{tenant}[/] lifecycle as of {result.as_of}: "
                  f"{result.stages.num_rows:,} customers, facts from {result.history_start}, "
                  f"thresholds from {result.rules_source}")
    console.print(_counts(result.counts, result.as_of))
    start = max(result.as_of - dt.timedelta(days=FLOW_DAYS), result.history_start)
    console.print(_flows(result.flows(start), start, result.as_of))
    if customer is not None:
        rows = result.history(customer)
        if rows.num_rows:
            console.print(_history(rows, customer))
        else:
            console.print(f"[yellow]note:[/] no customer {customer} opened by {result.as_of}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"{result.transitions.num_rows:,} transitions written to lifecycle_transitions, "
                  f"stages to lifecycle_stages ({result.seconds:.1f} s)")
