"""Customer value and foresight: churn and propensity scores."""

from __future__ import annotations

from typing import Annotated

import typer

from caifu.cli.common import AsOfOpt, TenantOpt, WorkspaceOpt, _container, _fail, app, console
from caifu.core.errors import CaifuError

TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", help="Only these targets (repeatable): chinext_90d, level2_90d, "
    "fund_purchase_90d, churn_90d")]


@app.command()
def score(tenant: TenantOpt, as_of: AsOfOpt = None, target: TargetOpt = None,
          workspace: WorkspaceOpt = None) -> None:
    """Train churn and propensity models, backtest them on a later quarter, score customers."""
    from caifu.services.build import check_as_of
    from caifu.terminal import print_scores, score_with_progress

    try:
        c = _container(workspace)
        result = score_with_progress(c, tenant, check_as_of(as_of), target, console)
    except CaifuError as exc:
        _fail(exc)
    print_scores(result, console)
