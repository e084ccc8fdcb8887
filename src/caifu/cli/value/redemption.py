"""``caifu redemption``: the four fund-redemption answers, and the reassurance tasks.

Questions 1–3's counts, sums, rates, means, medians and quartiles are governed metrics over
the study's rows (``services/value/figures``); the numeric features' rank statistics and the
waves are the study's own (statistical tests over the rows, no metric).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    EngineOpt,
    TenantOpt,
    WorkspaceOpt,
    _container,
    app,
    console,
    operator,
)
from caifu.cli.views import metrics_line
from caifu.core.money import pct, yuan

FromOpt = Annotated[str | None, typer.Option("--from", help="First day YYYY-MM-DD [default: 29 days before --to]")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day YYYY-MM-DD [default: the newest data date]")]


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "" if x is None else format(x, fmt)


WITHHELD = "不显示"  # a level-3 figure of fewer than 10 customers (the metric layer's rule)


def _count(x: int | None) -> str:
    return WITHHELD if x is None else str(x)


def _top_funds(funds: list[dict[str, Any]], top: int) -> RichTable:
    t = RichTable(title="1. 赎回金额最高的基金", title_justify="left")
    for col in ("基金", "类型", "风险", "赎回金额", "赎回份额占比", "赎回笔数", "赎回客户",
                "期初持有人"):
        t.add_column(col, justify="left" if col in ("基金", "类型", "风险") else "right")
    for r in funds[:top]:
        t.add_row(f"{r['fund_code']} {r['name'] or ''}", r["fund_type"], r["risk_level"],
                  yuan(r["redeemed_amount"], none=WITHHELD),
                  pct(r["redemption_ratio"], none=WITHHELD), _count(r["redemptions"]),
                  _count(r["redeemers"]), _count(r["holders_at_start"]))
    return t


def _by_ratio(funds: list[dict[str, Any]], top: int, min_holders: int) -> RichTable:
    t = RichTable(title=f"1. 赎回比例最高的基金（期初持有人 ≥ {min_holders}）",
                  title_justify="left")
    for col in ("基金", "赎回份额占比", "赎回金额", "期初持有人"):
        t.add_column(col, justify="left" if col == "基金" else "right")
    rows = [r for r in funds if (r["holders_at_start"] or 0) >= min_holders
            and r["redemption_ratio"] is not None]
    rows.sort(key=lambda r: (-r["redemption_ratio"], r["fund_code"]))
    for r in rows[:top]:
        t.add_row(f"{r['fund_code']} {r['name'] or ''}", pct(r["redemption_ratio"], none=""),
                  yuan(r["redeemed_amount"], none=WITHHELD), str(r["holders_at_start"]))
    return t


def _comparison(rows: list[dict[str, Any]]) -> RichTable:
    t = RichTable(title="2. 被赎回持仓与其余持仓的差异（效应量）", title_justify="left")
    for col in ("特征", "效应量", "p", "被赎回", "其余", "最突出的取值"):
        t.add_column(col, justify="left" if col in ("特征", "最突出的取值") else "right")
    features: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        features.setdefault(r["feature"], []).append(r)
    ordered = sorted(features.items(), key=lambda kv: -abs(kv[1][0]["effect"] or 0))
    for name, rs in ordered:
        first = rs[0]
        effect = f"{first['effect_size']} {_num(first['effect'], '+.3f')}"
        if first["kind"] == "numeric":
            t.add_row(name, effect, _num(first["p_value"], ".3f"),
                      _num(first["median_redeemed"], ".4g"), _num(first["median_rest"], ".4g"),
                      "（中位数）")
        else:
            big = [r for r in rs if r["n"] >= 5 and r["risk_ratio"] is not None] or rs
            best = max(big, key=lambda r: (r["risk_ratio"] or 0, r["n"]))
            t.add_row(name, effect, _num(first["p_value"], ".3f"), "", "",
                      f"{best['level']}: 赎回率 {pct(best['rate'], none=WITHHELD)}, 风险比 "
                      f"{_num(best['risk_ratio'])} (n={best['n']})")
    return t


def _holding(summary: list[dict[str, Any]]) -> RichTable:
    t = RichTable(title="3. 赎回份额的持有天数（先进先出）", title_justify="left")
    for col in ("基金类型", "赎回笔数", "P25", "中位数", "P75", "均值", "持有期未知"):
        t.add_column(col, justify="left" if col == "基金类型" else "right")
    for r in summary:
        mean = WITHHELD if r["mean"] is None and r["suppressed"] else _num(r["mean"], ".0f")
        t.add_row(str(r["fund_type"]), str(r["redemptions"]), _num(r["p25"], ".0f"),
                  _num(r["median"], ".0f"), _num(r["p75"], ".0f"), mean,
                  _count(r["unknown_age"]))
    return t


def _reassure(ranked: pa.Table, top: int) -> RichTable:
    t = RichTable(title="4. 需要安抚的持有人", title_justify="left")
    for col in ("#", "客户号", "投顾", "分", "基金市值", "原因"):
        t.add_column(col, justify="right" if col in ("#", "分", "基金市值") else "left",
                     overflow="fold")
    for r in ranked.slice(0, top).to_pylist():
        t.add_row(str(r["rank"]), r["customer_id"], r["advisor_id"] or "—", str(r["score"]),
                  f"{r['fund_value']:,}", r["reasons"])
    return t


@app.command()
def redemption(tenant: TenantOpt, start: FromOpt = None, end: ToOpt = None,
               top: Annotated[int, typer.Option(help="Rows per answer, and tasks written")] = 20,
               export: Annotated[Path | None, typer.Option(help="Write the tasks to this CSV")] = None,
               tasks: Annotated[bool, typer.Option(help="Record the top holders as advisor tasks")] = True,
               engine: EngineOpt = "duckdb", workspace: WorkspaceOpt = None) -> None:
    """Fund-redemption analysis: top funds, what redeemed holdings share, holding periods,
    and the holders who need reassurance (recorded as advisor tasks)."""
    from caifu.services.profiles.build import check_as_of
    from caifu.services.value import figures as fg
    from caifu.services.value.redemption import RedemptionAnalysis, task_table

    c = _container(workspace)
    analysis = RedemptionAnalysis(c)
    result = analysis.run(tenant, check_as_of(start), check_as_of(end), engine=engine)
    written = analysis.write_tasks(result, top) if tasks else None
    p = result.period
    f = fg.study_figures(c, operator(tenant), p, engine)
    everything = f.holding[0]["redemptions"] if f.holding else 0
    console.print(f"[bold]{tenant}[/] fund redemptions {p.start} … {p.end} ({p.days} days): "
                  f"{everything} redemptions, {len(f.funds)} funds held or bought")
    for w in result.waves.to_pylist():
        console.print(f"赎回高峰 {w['wave_start']} … {w['wave_end']}: {w['redemptions']} 笔 "
                      f"(10 日峰值 {w['peak_window']}，中位数 {w['baseline']:.0f})")
    console.print(_top_funds(f.funds, top))
    console.print(_by_ratio(f.funds, top, 3))
    console.print(_comparison(fg.with_numeric(f, result.comparison.to_pylist())))
    console.print(_holding(f.holding))
    console.print(_reassure(result.reassurance, top))
    console.print(metrics_line(f.metrics), soft_wrap=True, highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if written is not None:
        console.print(f"{written.num_rows} advisor tasks (reassure_fund_holder) recorded "
                      f"for {p.end}")
    if export is not None:
        rows = (written if written is not None else task_table(result, top, p.end)).to_pylist()
        n = export_tasks(rows, export)
        console.print(f"{n} tasks written to {export}")


TASK_COLUMNS = ("task_id", "customer_id", "advisor_id", "rank", "score", "reason_codes",
                "reasons")


def export_tasks(rows: list[dict[str, Any]], path: Path) -> int:
    """The advisor tasks as CSV for a spreadsheet (formula-like text neutralised)."""
    from caifu.adapters.csv_export import write_rows

    return write_rows(path, TASK_COLUMNS, rows)
