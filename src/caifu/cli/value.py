"""Customer value and foresight: churn and propensity scores."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from caifu.cli.common import AsOfOpt, TenantOpt, WorkspaceOpt, _container, _fail, app, console
from caifu.core.errors import CaifuError
from caifu.services.container import Container
from caifu.services.scoring import ScoringResult

TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", help="Only these targets (repeatable): chinext_90d, level2_90d, "
    "fund_purchase_90d, churn_90d")]


@app.command()
def score(tenant: TenantOpt, as_of: AsOfOpt = None, target: TargetOpt = None,
          workspace: WorkspaceOpt = None) -> None:
    """Train churn and propensity models, backtest them on a later quarter, score customers."""
    from caifu.services.build import check_as_of

    try:
        c = _container(workspace)
        result = score_with_progress(c, tenant, check_as_of(as_of), target, console)
    except CaifuError as exc:
        _fail(exc)
    print_scores(result, console)


def score_with_progress(c: Container, tenant: str, as_of: Any, targets: list[str] | None,
                        out: Console) -> ScoringResult:
    from caifu.services.scoring import Scoring

    with out.status("score", spinner="dots") as status:
        def step(message: str) -> None:
            status.update(f"score {tenant}: {message}")

        return Scoring(c, step).run(tenant, as_of=as_of, targets=targets)


def print_scores(r: ScoringResult, out: Console) -> None:
    test = r.cutoffs["backtest_test"][0]
    t = RichTable("target", "model", "AUC", "PR-AUC", "lift top 10%", "Brier", "positives",
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
    out.print(t)
    s = RichTable("target", "名称", "customers scored", "mean score", "model version",
                  title=f"scores as of {r.as_of} (lake table model_scores)")
    for tr in r.targets:
        if not tr.problem:
            s.add_row(tr.target, tr.title, f"{tr.scored:,}", f"{tr.mean_score:.3f}",
                      tr.model_version)
    out.print(s)
    for note in r.notes:
        out.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    out.print(f"models and evaluation: {r.folder}", soft_wrap=True)
