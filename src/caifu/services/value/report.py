"""The value report's content: customer value and efficiency, lifecycle, models, fund redemptions.

    caifu report value -t demo [--as-of D] [--out value-report.html]

``gather`` runs the analyses that take seconds (customer value, lifecycle stages, the
fund-redemption answers) as of one date and reads the newest ``caifu score`` run for the
models (training takes minutes; the report says when there is none). Rendering is the entry
layer's job (``caifu.web.report``); nothing here formats HTML.

The fund-redemption answers 1–3 are for the newest redemption wave the history shows (the
"after a market fall" the questions are about), or the 30 days to the date when there was
none; answer 4 (whom to reassure) is always as of the report's date.

Every business figure of sections 0, 1, 2 and 4 is a governed metric (``figures``): the
headline KPIs, the value run's totals, views, roll-ups and CLV quantiles, customers per
lifecycle stage, and questions 1–3's counts, sums, rates, means, medians and quartiles over
the study's rows. What stays the runs' own is said in ``ReportFigures``: the CLV histogram,
the monthly stage chart and the stage flows, the numeric features' rank statistics and the
redemption waves; sections 3 and 5 are model evaluation (AUC, lift, calibration, NDCG), not
business KPIs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from caifu.services.container import Container
from caifu.services.metrics.board import HEADLINE as HEADLINE  # re-exported: the report's list
from caifu.services.metrics.board import board
from caifu.services.metrics.query import Answer
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.lifecycle import Lifecycle, LifecycleResult
from caifu.services.recommend.evaluate import latest as latest_evaluation
from caifu.services.value.customer_value import CustomerValue, CustomerValueResult
from caifu.services.value.figures import (
    StudyFigures,
    ValueFigures,
    reader,
    stage_counts,
    study_figures,
    value_figures,
)
from caifu.services.value.redemption import RedemptionAnalysis, RedemptionResult, has_fund_data
from caifu.services.value.scoring import latest_run


@dataclass
class ReportFigures:
    """Sections 1, 2 and 4's figures from the metric layer, and the metrics used."""

    value: ValueFigures  # totals, payback view, roll-ups by channel, advisor, campaign, cohort
    stages: dict[str, int]  # customers per lifecycle stage on the report's date
    study: StudyFigures | None  # questions 1–3 of the report's redemption period
    metrics: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValueReport:
    tenant: str
    tenant_name: str
    as_of: dt.date
    generated_at: dt.datetime
    value: CustomerValueResult
    lifecycle: LifecycleResult
    redemption: RedemptionResult | None  # questions 1–3, for the period below (None: no funds)
    redemption_basis: str  # why this period (shown to operations, in Chinese)
    reassurance: RedemptionResult | None  # question 4: holders to reassure now (as of the date)
    models: dict[str, Any] | None  # the newest `caifu score` run.json, if any
    recommendations: dict[str, Any] | None = None  # the newest `caifu recommend evaluate`
    notes: list[str] = field(default_factory=list)
    kpis: list[Answer] = field(default_factory=list)  # headline metrics, 12 months, by month
    figures: ReportFigures | None = None  # sections 1, 2 and 4 (metric layer)


def headline(c: Container, tenant: str, as_of: dt.date) -> list[Answer]:
    """The headline metrics by month over the 12 months to ``as_of``, tenant-wide."""
    return board(c, reader(tenant), as_of).answers


ROLLUPS_SHOWN = ("channel", "advisor", "campaign", "cohort")


def report_figures(c: Container, tenant: str, as_of: dt.date,
                   redemption: RedemptionResult | None) -> ReportFigures:
    """The value run's, the lifecycle run's (both of ``as_of``) and the study's figures."""
    p = reader(tenant)
    value = value_figures(c, p, as_of, ROLLUPS_SHOWN, payback=True, distribution=True)
    stages, used = stage_counts(c, p, as_of)
    study = None if redemption is None else study_figures(c, p, redemption.period)
    metrics = {m["metric"]: m for m in (*value.metrics, *used,
                                        *(study.metrics if study else ()))}
    return ReportFigures(value, stages, study, list(metrics.values()))


def gather(c: Container, tenant: str, as_of: dt.date | None = None) -> ValueReport:
    tenant_row = get_tenant(c, tenant)
    value = CustomerValue(c).run(tenant, as_of)
    as_of = value.as_of
    lifecycle = Lifecycle(c).run(tenant, as_of)
    notes = [*value.notes, *lifecycle.notes]
    now = redemption = None
    basis = ""
    if has_fund_data(c, tenant):
        now = RedemptionAnalysis(c).run(tenant, end=as_of)
        redemption, basis = now, f"截至 {as_of} 的 30 天（历史上没有赎回高峰）"
        notes += [f"reassurance list: {n}" for n in now.notes if "question 2" not in n]
        wave = _latest_wave(now.waves, as_of)
        if wave is not None:
            start, end = wave
            redemption = RedemptionAnalysis(c).run(tenant, start, end)
            basis = "历史上最近一次赎回高峰：赎回笔数远高于平常水平的时期"
            notes += [f"redemption wave {start} … {end}: {n}" for n in redemption.notes
                      if "reassurance" not in n]  # answer 4 comes from the current run
    else:
        notes.append("no fund transactions: the fund-redemption section is left out")
    models = latest_run(c, tenant)
    if models is None:
        notes.append("no model run yet: run `caifu score` for the churn and propensity section")
    elif models["as_of"] != as_of.isoformat():
        notes.append(f"the newest model run is as of {models['as_of']}, not {as_of}")
    recommendations = latest_evaluation(c, tenant)
    if recommendations is None:
        notes.append("no recommendation evaluation yet: run `caifu recommend evaluate` for the "
                     "next-best-action section")
    return ValueReport(tenant, tenant_row.name or tenant, as_of,
                       dt.datetime.now(dt.UTC).replace(microsecond=0), value, lifecycle,
                       redemption, basis, now, models, recommendations, notes,
                       headline(c, tenant, as_of),
                       report_figures(c, tenant, as_of, redemption))


def _latest_wave(waves: pa.Table, as_of: dt.date) -> tuple[dt.date, dt.date] | None:
    rows = [r for r in waves.to_pylist() if r["wave_end"] <= as_of]
    if not rows:
        return None
    last = max(rows, key=lambda r: r["wave_start"])
    return last["wave_start"], last["wave_end"]
