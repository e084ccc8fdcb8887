"""Terminal views for customer value and the scoring models: the value report summary,
scoring progress and the backtest tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from caifu.services.container import Container

if TYPE_CHECKING:
    from caifu.services.value.scoring import ScoringResult


def value_report(c: Container, tenant: str, console: Console, as_of: date | None = None,
                 out: Path | None = None) -> Path:
    """Customer value, lifecycle and fund redemptions as of a date, a short summary on the
    terminal, and the self-contained HTML report with the charts."""
    from caifu.services.value.report import gather
    from caifu.web.report import write

    with console.status(f"report {tenant}: customer value, lifecycle, fund redemptions"):
        report = gather(c, tenant, as_of)
        path = write(report, out or c.root / "reports" / f"value-{tenant}-{report.as_of}.html")
    console.rule("[bold]customer value and lifecycle")
    assert report.figures is not None  # the metric layer's figures (services/value/figures)
    f = report.figures.value
    totals = f.totals or {}
    clv = report.value.config.clv
    for name, months, t in (("lifetime", clv.horizon_months, totals),
                            ("payback", clv.payback_months, f.payback)):
        if not t:
            continue
        console.print(f"{name} view: CLV ({months} months, discounted) "
                      f"{t['clv']:,.0f} yuan over {totals['customers']:,} customers; "
                      f"acquisition {totals['acquisition_cost']:,.0f}, retention "
                      f"{t['retention_cost']:,.0f}; efficiency {t['efficiency']:,.0f} "
                      f"({t['negative_share']:.0%} of customers below zero)", soft_wrap=True)
    stages = ", ".join(f"{k} {v:,}" for k, v in sorted(report.figures.stages.items(),
                                                        key=lambda kv: -kv[1]))
    console.print(f"lifecycle stages: {stages}", soft_wrap=True)
    if report.reassurance is not None:
        top = report.reassurance.reassurance.num_rows
        console.print(f"fund holders to reassure: {top:,} (ranked, with reasons)",
                      soft_wrap=True)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    console.print(f"figures of {len(report.figures.metrics) + len(report.kpis)} governed "
                  "metrics (ids, versions and hashes beside each section of the report)",
                  soft_wrap=True, highlight=False)
    return path


def score_with_progress(c: Container, tenant: str, as_of: Any, targets: list[str] | None,
                        console: Console) -> ScoringResult:
    from caifu.services.value.scoring import Scoring

    with console.status("score", spinner="dots") as status:
        def step(message: str) -> None:
            status.update(f"score {tenant}: {message}")

        return Scoring(c, step).run(tenant, as_of=as_of, targets=targets)


def print_scores(r: ScoringResult, console: Console) -> None:
    test = r.cutoffs["backtest_test"][0]
    t = Table("target", "model", "AUC", "PR-AUC", "lift top 10%", "Brier", "positives",
                  title=f"backtest: trained on profiles at {', '.join(r.cutoffs['backtest_train'])}, "
                        f"tested on {test} with the 90 days after it")
    for tr in r.targets:
        if tr.problem:
            t.add_row(tr.target, "—", tr.problem, "", "", "", "")
            continue
        for model in ("lightgbm", "logistic", "heuristic"):
            m = tr.backtest[model]
            label = model if model != "heuristic" else f"heuristic ({m['feature']})"
            brier = f"{m['brier']:.4f}" if "brier" in m else "—"
            t.add_row(tr.target if model == "lightgbm" else "", label, f"{m['auc']:.3f}",
                      f"{m['pr_auc']:.3f}", f"{m['lift_top_decile']:.2f}×", brier,
                      f"{m['positives']:,} / {m['rows']:,}" if model == "lightgbm" else "")
    console.print(t)
    s = Table("target", "名称", "customers scored", "mean score", "model version",
                  title=f"scores as of {r.as_of} (lake table model_scores)")
    for tr in r.targets:
        if not tr.problem:
            s.add_row(tr.target, tr.title, f"{tr.scored:,}", f"{tr.mean_score:.3f}",
                      tr.model_version)
    console.print(s)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    console.print(f"models and evaluation: {r.folder}", soft_wrap=True)
