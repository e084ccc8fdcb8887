"""The value report as one self-contained HTML file: inline CSS and SVG, no scripts, nothing
fetched — it opens offline, attaches to an e-mail, and prints.

Customers appear by id only (data level 2); names, ID numbers and mobiles never do.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from jinja2 import Environment, FileSystemLoader, select_autoescape

from caifu.analytics.lifecycle import STAGE_NAMES, STAGES
from caifu.analytics.value import NONE_GROUP
from caifu.pipelines.metrics.compile import periods
from caifu.services.value.figures import with_numeric
from caifu.services.value.report import ValueReport
from caifu.web import charts

TEMPLATES = Path(__file__).parent / "templates"
TOP_ADVISORS = 10
TOP_FUNDS = 10
TOP_HOLDERS = 25


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["yuan"] = lambda v: "—" if v is None else f"{float(v):,.0f}"
    env.filters["num"] = lambda v, d=2: "—" if v is None else f"{float(v):,.{d}f}"
    env.filters["sig"] = lambda v: "—" if v is None else (
        f"{float(v):,.0f}" if abs(float(v)) >= 100 else f"{float(v):.4g}")
    env.filters["pct"] = lambda v, d=1: "—" if v is None else f"{100 * float(v):.{d}f} %"
    env.filters["count"] = lambda v: "—" if v is None else f"{int(v):,}"
    return env


def render(r: ValueReport) -> str:
    return _env().get_template("value_report.html").render(
        r=r, kpis=_kpis(r), value=_value(r), lifecycle=_lifecycle(r), models=_models(r),
        redemption=_redemption(r))


def write(r: ValueReport, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(r), encoding="utf-8")
    return out


# --- sections ------------------------------------------------------------------------------


def _rows(t: pa.Table) -> list[dict[str, Any]]:
    return t.to_pylist()


def _kpis(r: ValueReport) -> list[dict[str, Any]]:
    """One row per headline metric: the newest month, the one before, 12 months as a line."""
    out = []
    for a in r.kpis:
        by_month = {row["period"]: row["value"] for row in a.rows}
        months = [p for p, _, _ in periods(a.query.start, a.query.end, "month")]
        series = [None if by_month.get(m) is None else float(by_month[m]) for m in months]
        last, prev = (by_month.get(months[-1]), by_month.get(months[-2])) \
            if len(months) > 1 else (None, None)
        change = None if last is None or prev in (None, 0) else float(last) / float(prev) - 1
        out.append({"name": a.metric.name, "label": a.metric.label.get("zh", a.metric.name),
                    "format": a.metric.format, "version": a.metric.version,
                    "hash": a.catalog.definition_hash(a.metric.name), "last": last,
                    "prev": prev, "change": change, "month": months[-1],
                    "withheld": a.suppressed, "chart": charts.sparkline(series)})
    return out


def _per_customer(row: dict[str, Any], key: str) -> float | None:
    """A group's total per customer (None when the total is withheld)."""
    if row[key] is None or not row["customers"]:
        return None
    return float(row[key]) / row["customers"]


def _value(r: ValueReport) -> dict[str, Any]:
    v = r.value
    assert r.figures is not None
    f = r.figures.value
    per = v.per_customer
    open_ = per.filter(pc.not_equal(per["clv_basis"], "closed"))
    # the histogram is drawn from the run's per-customer rows; its quantiles are metrics
    dist = f.distribution
    clv = np.asarray(pc.cast(open_["clv"], pa.float64()).to_numpy(zero_copy_only=False))
    channel = sorted(({**c, "acquisition_per_customer": _per_customer(c, "acquisition_cost"),
                       "retention_per_customer": _per_customer(c, "retention_cost")}
                      for c in f.rollups["channel"]),
                     key=lambda x: (x["efficiency_mean"] is None, -(x["efficiency_mean"] or 0)))
    # advisors ranked by their governed total; one behind fewer than 10 customers is withheld
    advisors = sorted((a for a in f.rollups["advisor"] if a["efficiency"] is not None
                       and a["group"] and a["group"] != NONE_GROUP),
                      key=lambda x: -float(x["efficiency"]))
    shown = advisors[:TOP_ADVISORS] + [a for a in advisors[-TOP_ADVISORS:]
                                       if a not in advisors[:TOP_ADVISORS]]

    fits = {}
    if v.bgnbd is not None:
        p, rep = v.bgnbd.params, v.bgnbd.report
        fits["BG/NBD"] = {"params": f"r = {p.r:.3f}, α = {p.alpha:.2f}, a = {p.a:.3f}, "
                                    f"b = {p.b:.3f}",
                          "ll": rep.log_likelihood, "converged": rep.converged,
                          "iterations": rep.iterations}
    if v.gamma_gamma is not None:
        p, rep = v.gamma_gamma.params, v.gamma_gamma.report
        fits["Gamma-Gamma"] = {"params": f"p = {p.p:.3f}, q = {p.q:.3f}, γ = {p.gamma:.3f}",
                               "ll": rep.log_likelihood, "converged": rep.converged,
                               "iterations": rep.iterations}
    totals = f.totals or {}
    payback = {**f.payback, "acquisition_cost": totals.get("acquisition_cost")} \
        if f.payback else {}
    views = [{"name": name, "label": label, "months": months, "totals": t}
             for name, label, months, t in (
                 ("lifetime", "终身口径（默认）", v.config.clv.horizon_months, totals),
                 ("payback", "回本口径", v.config.clv.payback_months, payback)) if t]
    return {
        "views": views, "months": v.config.clv.horizon_months,
        "discount": v.config.clv.monthly_discount_rate,
        "totals": totals, "clv": dist.get("clv", {}), "efficiency": dist.get("efficiency", {}),
        "fits": fits,
        "channels": channel, "advisors": shown, "config": v.config_source,
        "cohorts": f.rollups["cohort"][-8:],
        "campaigns": f.rollups["campaign"],
        "metrics": f.metrics,
        "chart_clv": charts.histogram_log(clv, {"median": dist.get("clv", {}).get("p50") or 0.0,
                                                "p90": dist.get("clv", {}).get("p90") or 0.0},
                                          f"CLV, next {v.config.clv.horizon_months} months "
                                          "(yuan, log scale)"),
        "chart_channel": charts.grouped_bars(
            [c["group"] for c in channel],
            {"CLV": [c["clv_mean"] or 0.0 for c in channel],
             "acquisition cost": [c["acquisition_per_customer"] or 0.0 for c in channel],
             "retention cost": [c["retention_per_customer"] or 0.0 for c in channel],
             "efficiency": [c["efficiency_mean"] or 0.0 for c in channel]},
            "yuan per customer"),
        "chart_advisors": charts.grouped_bars(
            [a["group"] for a in shown],
            {"efficiency (total)": [float(a["efficiency"]) for a in shown]}, "yuan"),
    }


def _lifecycle(r: ValueReport) -> dict[str, Any]:
    lc = r.lifecycle
    assert r.figures is not None
    governed = r.figures.stages  # customers per stage: the metric layer
    # the monthly chart and the flows are the run's transition history (see ReportFigures)
    # customers opened before the facts begin get their first stage only after a look-back of
    # the dormancy threshold: months before that would show a base that is still filling up
    settled = lc.history_start + dt.timedelta(days=lc.rules.dormant.days)
    months = sorted(m for m in set(lc.monthly["month_end"].to_pylist()) if m >= settled)
    counts = {(row["month_end"], row["stage"]): row["customers"] for row in _rows(lc.monthly)}
    series = {s: [counts.get((m, s), 0) for m in months] for s in STAGES}
    start = _months_back(r.as_of.replace(day=1), 3)
    flows = [f for f in _rows(lc.flows(start)) if f["from_stage"] != f["to_stage"]]
    total = sum(governed.values()) or 1
    return {
        "counts": [{"stage": s, "name": STAGE_NAMES[s], "customers": governed.get(s, 0),
                    "share": governed.get(s, 0) / total} for s in STAGES],
        "flows": sorted(flows, key=lambda x: -x["customers"])[:15], "flow_start": start,
        "chart": charts.stacked_area(months, series, "customers") if months else "",
        "rules": lc.rules_source, "chart_from": settled,
        "metrics": [m for m in r.figures.metrics if m["metric"] == "lifecycle_customers"],
    }


def _months_back(first: dt.date, n: int) -> dt.date:
    """The first of the month ``n`` months before ``first`` (itself a first of a month)."""
    y, m = divmod(first.year * 12 + first.month - 1 - n, 12)
    return dt.date(y, m + 1, 1)


def _models(r: ValueReport) -> dict[str, Any] | None:
    run = r.models
    if run is None:
        return None
    targets = [t for t in run["targets"] if not t.get("problem")]
    return {"run": run, "targets": targets,
            "problems": [t for t in run["targets"] if t.get("problem")],
            "chart": charts.calibration_and_lift(targets) if targets else ""}


def _redemption(r: ValueReport) -> dict[str, Any] | None:
    x = r.redemption
    if x is None or r.reassurance is None or r.figures is None or r.figures.study is None:
        return None
    study = r.figures.study  # questions 1–3's figures: the metric layer
    funds = study.funds[:TOP_FUNDS]
    by_feature: dict[str, list[dict[str, Any]]] = {}
    # categorical rows from governed counts; numeric ones: governed medians, the run's rank
    # statistics
    for c in with_numeric(study, _rows(x.comparison)):
        by_feature.setdefault(c["feature"], []).append(c)
    features = []
    for rows in by_feature.values():  # one line per feature; a category shows the level
        if rows[0]["kind"] == "categorical":  # most prone to redemption (as the CLI does)
            known = [c for c in rows if c["n"] >= 5 and c["risk_ratio"] is not None] or rows
            features.append(max(known, key=lambda c: (c["risk_ratio"] or 0, c["n"])))
        else:
            features.append(rows[0])
    features.sort(key=lambda c: -abs(c["effect"] or 0.0))
    summary = study.holding  # counts, quartiles and mean: metrics
    holders = []
    for h in _rows(r.reassurance.reassurance)[:TOP_HOLDERS]:
        h = dict(h)
        h["reason_list"] = [f"{item['label']}" for item in json.loads(h["reasons_json"])]
        holders.append(h)
    known = [s for s in summary if s["median"] is not None]
    return {
        "basis": r.redemption_basis, "period": x.period, "funds": funds,
        "features": features, "summary": summary, "holders": holders,
        "waves": _rows(r.reassurance.waves),  # the run that chose the period
        "holders_total": r.reassurance.reassurance.num_rows,
        "holders_as_of": r.reassurance.period.end,
        "metrics": study.metrics,
        "chart_funds": charts.grouped_bars(
            [f"{f['fund_code']} {f['fund_type']}" for f in funds],
            {"redeemed amount": [float(f["redeemed_amount"] or 0) for f in funds]}, "yuan")
        if funds else "",
        "chart_holding": charts.quartile_bars(
            [s["fund_type"] for s in known], [s["p25"] for s in known],
            [s["median"] for s in known], [s["p75"] for s in known], "days held (FIFO)")
        if known else "",
    }
