"""Customer value and foresight: churn and propensity scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from caifu.cli.common import AsOfOpt, TenantOpt, WorkspaceOpt, _container, app, console

TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", help="Only these targets (repeatable): chinext_90d, level2_90d, "
    "fund_purchase_90d, churn_90d")]


@app.command()
def score(tenant: TenantOpt, as_of: AsOfOpt = None, target: TargetOpt = None,
          workspace: WorkspaceOpt = None) -> None:
    """Train churn and propensity models, backtest them on a later quarter, score customers."""
    from caifu.cli.views.value import print_scores, score_with_progress
    from caifu.services.profiles.build import check_as_of

    c = _container(workspace)
    result = score_with_progress(c, tenant, check_as_of(as_of), target, console)
    print_scores(result, console)


report_app = typer.Typer(no_args_is_help=True, help="Reports: self-contained offline HTML.")
app.add_typer(report_app, name="report")


@report_app.command("value")
def report_value(tenant: TenantOpt, as_of: AsOfOpt = None,
                 out: Annotated[Path | None, typer.Option(
                     help="HTML file to write [default: <workspace>/reports/value-<tenant>-<date>.html]")] = None,
                 workspace: WorkspaceOpt = None) -> None:
    """Customer value and efficiency, lifecycle, model quality and fund redemptions, with charts."""
    from caifu.cli.views.value import value_report
    from caifu.services.profiles.build import check_as_of

    c = _container(workspace)
    path = value_report(c, tenant, console, check_as_of(as_of), out)
    console.print(f"value report written: {path}", soft_wrap=True)
