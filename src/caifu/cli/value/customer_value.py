"""Customer value: CLV and efficiency = CLV − (acquisition + retention cost), rolled up.

The run's totals, views and roll-ups are governed metrics over the lake tables it wrote
(``services/value/figures``), its distribution table too (``MEDIAN``/``QUANTILE``); the fits
are the run's model output.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from caifu.cli.common import (
    AsOfOpt,
    TenantOpt,
    WorkspaceOpt,
    _container,
    app,
    console,
    operator,
)
from caifu.cli.views import metrics_line
from caifu.core.errors import ConfigError
from caifu.core.money import pct, yuan
from caifu.services.value.customer_value import CustomerValueResult
from caifu.services.value.figures import ValueFigures

BY = ("channel", "campaign", "advisor", "branch", "cohort")
ByOpt = Annotated[str, typer.Option("--by", help="Roll up by " + ", ".join(BY))]
LimitOpt = Annotated[int, typer.Option(help="Show at most this many groups")]


@app.command("value")
def value_cmd(tenant: TenantOpt, as_of: AsOfOpt = None, by: ByOpt = "channel",
              limit: LimitOpt = 40, workspace: WorkspaceOpt = None) -> None:
    """CLV per customer (BG/NBD + Gamma-Gamma), acquisition and retention cost, efficiency."""
    from caifu.services.profiles.build import check_as_of
    from caifu.services.value.customer_value import CustomerValue
    from caifu.services.value.figures import value_figures

    if by not in BY:
        raise ConfigError(f"--by {by!r}: use one of {', '.join(BY)}")
    c = _container(workspace)
    with console.status(f"value {tenant}", spinner="dots"):
        result = CustomerValue(c).run(tenant, check_as_of(as_of))
        figures = value_figures(c, operator(tenant), result.as_of, [by],
                                payback=True, distribution=True)
    print_value(result, figures, by, console, limit)


@app.command("value-init")
def value_init(tenant: TenantOpt, force: bool = False, workspace: WorkspaceOpt = None) -> None:
    """Copy the default customer-value configuration to value/<tenant>.yaml to edit."""
    from caifu.services.value.customer_value import init_config

    path = init_config(_container(workspace), tenant, force)
    console.print(f"wrote {path}", soft_wrap=True)


def print_value(r: CustomerValueResult, f: ValueFigures, by: str, out: Console,
                limit: int = 40) -> None:
    """The run's fits and distributions, then its figures from the metric layer (``f``)."""
    cfg = r.config.clv
    unit = cfg.time_unit
    fit = RichTable("model", "parameters", "log-likelihood", "converged", "iterations",
                    title=f"CLV fit as of {r.as_of}: calibration end {r.as_of}, time unit "
                          f"{unit}, history from {r.history_start or '—'}")
    if r.bgnbd is not None:
        p, rep = r.bgnbd.params, r.bgnbd.report
        fit.add_row("BG/NBD", f"r={p.r:.4g}  α={p.alpha:.4g} ({unit}s)  a={p.a:.4g}  b={p.b:.4g}",
                    f"{rep.log_likelihood:,.2f}", _yes(rep.converged), str(rep.iterations))
    if r.gamma_gamma is not None:
        g, rep = r.gamma_gamma.params, r.gamma_gamma.report
        fit.add_row("Gamma-Gamma", f"p={g.p:.4g}  q={g.q:.4g}  γ={g.gamma:.4g}",
                    f"{rep.log_likelihood:,.2f}", _yes(rep.converged), str(rep.iterations))
    out.print(fit)

    # the distribution of the run's per-customer output: governed quantiles
    customers = (f.totals or {}).get("customers", 0)
    dist = RichTable("yuan", "mean", "p10", "p25", "median", "p75", "p90", "p99", "max",
                     "< 0", title=f"{customers:,} customers opened by {r.as_of}; CLV over "
                     f"{cfg.horizon_months} months at {cfg.monthly_discount_rate:.2%}/month "
                     f"({r.transaction_days:,} transaction days)")
    for name, key in (("CLV (open accounts)", "clv"), ("efficiency", "efficiency")):
        if d := f.distribution.get(key):
            dist.add_row(name, *(_yuan(d[k]) for k in ("mean", "p10", "p25", "p50", "p75",
                                                        "p90", "p99", "max")),
                         pct(d["negative_share"], none="withheld"))
    out.print(dist)
    t, payback = f.totals or {}, f.payback or {}
    views = RichTable("view", "CLV horizon", "CLV", "acquisition", "retention", "efficiency",
                      "eff. < 0", title="lifetime view (the default, below) and payback view "
                      "(yuan; retention at the window's run rate over the months expected "
                      "active)")
    for name, months, v in (("lifetime", r.config.clv.horizon_months, t),
                            ("payback", r.config.clv.payback_months, payback)):
        if v:
            views.add_row(name, f"{months} months", _yuan(v["clv"]),
                          _yuan(t.get("acquisition_cost")), _yuan(v["retention_cost"]),
                          _yuan(v["efficiency"]), pct(v["negative_share"], none="—"))
    out.print(views)
    if t:
        out.print(f"total (lifetime view): CLV {_yuan(t['clv'])} − acquisition "
                  f"{_yuan(t['acquisition_cost'])} − retention {_yuan(t['retention_cost'])} = "
                  f"efficiency {_yuan(t['efficiency'])} yuan; revenue of the last "
                  f"{r.config.retention.window_months} months {_yuan(t['revenue_window'])}",
                  soft_wrap=True, highlight=False)

    rows = f.rollups[by]
    if by == "cohort":  # the newest cohorts are the ones still being decided
        rows = rows[::-1]
    table = RichTable(by, "customers", "CLV", "CLV mean", "acquisition", "retention",
                      "efficiency", "eff. mean", "eff. < 0",
                      title=f"by {by} (yuan; lake table customer_value, as of {r.as_of})",
                      caption="withheld: a group of fewer than 10 customers" if any(
                          row["suppressed"] for row in rows) else None)
    for row in rows[:limit]:
        table.add_row(str(row["group"]), f"{row['customers']:,}", _yuan(row["clv"]),
                      _yuan(row["clv_mean"]), _yuan(row["acquisition_cost"]),
                      _yuan(row["retention_cost"]), _yuan(row["efficiency"]),
                      _yuan(row["efficiency_mean"]), pct(row["negative_share"], none="withheld"))
    out.print(table)
    if len(rows) > limit:
        out.print(f"… {len(rows) - limit} more groups (--limit)")
    out.print(metrics_line(f.metrics), soft_wrap=True, highlight=False)
    for note in r.notes:
        out.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    out.print(f"configuration: {r.config_source}", soft_wrap=True, highlight=False)


def _yuan(v: Any) -> str:
    return yuan(v, none="withheld")


def _yes(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[bold red]no[/]"
