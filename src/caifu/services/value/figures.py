"""The figures of a value run, a lifecycle run and a fund-redemption study, from the metric
layer: every count, sum, mean and share the CLI, the API and the value report show of them
is ``services/metrics/query.answers`` over the lake tables the runs write
(``data/metrics/value_runs.yaml``), so it has one definition, the caller's scope (an advisor
sees his customers' roll-up), small level-3 groups withheld, and the id, version and
definition hash of each metric (``metrics`` in every result).

A run is a snapshot of its date: each query asks for that one day (grain ``all``), and a
redemption study also for its first day (``study_period_start``), so a later study ending the
same day with another start is not mistaken for it.

The quantiles are metrics too (``MEDIAN``/``QUANTILE``: exact, interpolated linearly): the
value run's CLV and efficiency distributions, question 3's quartiles of holding days and
question 2's medians of each numeric feature among the redeemed holdings and the rest. What is
*not* here stays the run's own and is named where it is shown: the CLV histogram, model fits,
the rank statistics of numeric features (question 2: the rank-biserial correlation, its
Mann-Whitney p and the counts it was computed over) and the wave detection. The categorical effect sizes (risk ratio,
Cramér's V, chi-square p) and the rates behind them are computed here *from* governed counts
(``study_holdings`` and ``study_redeemed_holdings`` by the feature's dimension); V and p
describe all the feature's holders, so they are shown when a small level's own figures are
withheld.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.analytics.redemption import Period
from caifu.analytics.redemption_effects import MISSING_LEVEL, NUMERIC, effect_of_counts
from caifu.core.identity import Principal
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.metrics.query import Answer, answers, cited
from caifu.services.platform.access import tenant_of
from caifu.services.value.customer_value import VALUE_TABLE

# --- shared ---------------------------------------------------------------------------------


def reader(tenant: str, who: str = "value-report") -> Principal:
    """The tenant-wide reader of a job or command that has no user (the value report, the
    CLI): operations' scope, as the report's headline figures are asked."""
    return Principal(tenant, who, "ops")


def _on(c: Container, p: Principal, metrics: list[str], day: dt.date, by: tuple[str, ...] = (),
        where: str | None = None, engine: str = "duckdb", **kw: Any) -> list[Answer]:
    """The metrics on one run's date (grain ``all``: one period, that day)."""
    return answers(c, p, metrics, by=by, grain="all", start=day, end=day, where=where,
                   engine=engine, **kw)


def _table(found: list[Answer], fields: Mapping[str, str], by: str | None
           ) -> dict[Any, dict[str, Any]]:
    """One row per value of ``by`` (``None``: the one uncut row) with a field per metric; a
    group a count has no row for counts 0, another figure is unknown; ``suppressed`` when a
    figure of the row is withheld (a level-3 group behind fewer than 10 customers)."""
    by_metric = {a.metric.name: (a.metric.format, {r[by] if by else None: r for r in a.rows})
                 for a in found}
    keys = dict.fromkeys(k for _, rows in by_metric.values() for k in rows)
    out: dict[Any, dict[str, Any]] = {}
    for key in keys:
        row: dict[str, Any] = {"suppressed": False}
        for name, metric in fields.items():
            fmt, rows = by_metric[metric]
            hit = rows.get(key)
            row[name] = hit["value"] if hit else 0 if fmt == "count" else None
            row["suppressed"] = row["suppressed"] or bool(hit and hit["suppressed"])
        out[key] = row
    return out


# --- the value run ----------------------------------------------------------------------------

ROLLUP_BY = {"channel": "value_channel", "campaign": "value_campaign",
             "advisor": "value_advisor", "branch": "value_branch", "cohort": "value_cohort"}
ROLLUP_FIELDS = {  # the roll-up row's field: its metric
    "customers": "value_customers", "clv": "clv_total", "clv_mean": "clv_mean",
    "acquisition_cost": "acquisition_cost_total",
    "acquisition_channel_cost": "acquisition_channel_cost_total",
    "acquisition_campaign_cost": "acquisition_campaign_cost_total",
    "retention_cost": "retention_cost_total", "efficiency": "efficiency_total",
    "efficiency_mean": "efficiency_mean", "negative_share": "negative_efficiency_share",
    "revenue_window": "revenue_window_total"}
# the distribution tables: CLV of open accounts (a closed one's 0 left out), efficiency of all
DISTRIBUTION_FIELDS = {
    "clv": {"mean": "clv_open_mean", "p10": "clv_open_p10", "p25": "clv_open_p25",
            "p50": "clv_open_median", "p75": "clv_open_p75", "p90": "clv_open_p90",
            "p99": "clv_open_p99", "max": "clv_open_max", "zero_share": "clv_open_zero_share",
            "negative_share": "clv_open_negative_share"},
    "efficiency": {"mean": "efficiency_mean", "p10": "efficiency_p10",
                   "p25": "efficiency_p25", "p50": "efficiency_median",
                   "p75": "efficiency_p75", "p90": "efficiency_p90", "p99": "efficiency_p99",
                   "max": "efficiency_max", "negative_share": "negative_efficiency_share"}}
PAYBACK_FIELDS = {"clv": "clv_payback_total", "retention_cost": "retention_cost_payback_total",
                  "efficiency": "efficiency_payback_total",
                  "negative_share": "negative_efficiency_payback_share"}


@dataclass
class ValueFigures:
    as_of: dt.date
    totals: dict[str, Any] | None  # the caller's whole scope as one row (None: no customer)
    rollups: dict[str, list[dict[str, Any]]]  # by → rows (``group`` first), ordered by group
    payback: dict[str, Any] | None = None  # the payback view's totals (acquisition: totals')
    metrics: list[dict[str, Any]] = field(default_factory=list)
    # "clv" / "efficiency" → mean, p10 … p99, max, shares (DISTRIBUTION_FIELDS); {} when asked
    # for none or nobody is valued; a figure withheld (fewer than 10 customers) is None
    distribution: dict[str, dict[str, Any]] = field(default_factory=dict)


def value_run_date(c: Container, tenant: str) -> dt.date | None:
    """The newest value run's date (the lake's newest ``customer_value`` snapshot)."""
    dates = c.lake.snapshot_dates(tenant, VALUE_TABLE)
    return dt.date.fromisoformat(dates[-1]) if dates else None


def value_figures(c: Container, p: Principal, as_of: dt.date, by: Sequence[str] = (), *,
                  payback: bool = False, distribution: bool = False, engine: str = "duckdb"
                  ) -> ValueFigures:
    """Totals and roll-ups (``by``: keys of ``ROLLUP_BY``) of the value run of ``as_of``, in
    ``p``'s scope; with ``payback``, the payback view's totals too; with ``distribution``,
    the quantiles of CLV and efficiency per customer."""
    metrics = list(ROLLUP_FIELDS.values())
    used = _on(c, p, metrics, as_of, engine=engine)
    whole = _table(used, ROLLUP_FIELDS, None)
    totals = whole.get(None)
    rollups = {}
    for name in by:
        dim = ROLLUP_BY[name]
        found = _on(c, p, metrics, as_of, (dim,), engine=engine)
        used += found
        rows = _table(found, ROLLUP_FIELDS, dim)
        rollups[name] = [{"group": key, **row} for key, row in
                         sorted(rows.items(), key=lambda kv: (kv[0] is None, str(kv[0])))]
    view = None
    if payback:
        found = _on(c, p, list(PAYBACK_FIELDS.values()), as_of, engine=engine)
        used += found
        view = _table(found, PAYBACK_FIELDS, None).get(None)
    dist: dict[str, dict[str, Any]] = {}
    if distribution:
        wanted = [m for fields in DISTRIBUTION_FIELDS.values() for m in fields.values()]
        found = _on(c, p, list(dict.fromkeys(wanted)), as_of, engine=engine)
        used += found
        for name, fields in DISTRIBUTION_FIELDS.items():
            row = _table(found, fields, None).get(None)
            if row is not None and row["mean"] is not None:
                dist[name] = {k: None if v is None else float(v) for k, v in row.items()
                              if k != "suppressed"}
    return ValueFigures(as_of, totals, rollups, view, cited(used), dist)


# --- the lifecycle run ------------------------------------------------------------------------


def stage_counts(c: Container, p: Principal, as_of: dt.date
                 ) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Customers per lifecycle stage in the lifecycle run of ``as_of`` (stages without
    customers are left out), and the metric used."""
    found = _on(c, p, ["lifecycle_customers"], as_of, ("lifecycle_run_stage",))
    return ({r["lifecycle_run_stage"]: r["value"] for r in found[0].rows}, cited(found))


# --- the fund-redemption study ---------------------------------------------------------------

FUND_FIELDS = {  # question 1, per fund (the names ``analytics.redemption.fund_redemptions``
    "shares_at_start": "study_shares_at_start",  # gives its columns)
    "holders_at_start": "study_holders_at_start", "shares_added": "study_shares_added",
    "redeemed_shares": "study_redeemed_shares", "redeemed_amount": "study_redeemed_amount",
    "redeem_fees": "study_redeem_fees", "redemptions": "study_redemptions",
    "redeemers": "study_redeemed_holdings", "redemption_ratio": "study_share_redemption_ratio"}
# question 2's categorical features (``redemption_effects.CATEGORICAL``) and their dimensions
CATEGORICAL_BY = {"fund_type": "fund_type", "risk_level": "fund_risk_level",
                  "manager_company": "fund_company", "c_level": "study_c_level"}
LEVEL_FIELDS = {"n": "study_holdings", "redeemed": "study_redeemed_holdings"}
HOLDING_FIELDS = {"redemptions": "study_matched_redemptions",  # question 3
                  "unknown_age": "study_unknown_age_redemptions",
                  "p25": "study_holding_days_p25", "median": "study_holding_days_median",
                  "p75": "study_holding_days_p75", "mean": "study_holding_days_mean"}
# question 2's numeric features (``redemption_effects.NUMERIC``): each one's median, cut by
# ``study_redeemed`` (the redeemed holdings and the rest)
NUMERIC_MEDIANS = {f: f"study_median_{f}" for f in NUMERIC}


@dataclass
class StudyFigures:
    period: Period
    funds: list[dict[str, Any]]  # per fund, by redeemed amount (withheld ones last)
    categorical: list[dict[str, Any]]  # question 2: per feature and level, with effect sizes
    holding: list[dict[str, Any]]  # question 3: "all", then per fund type
    metrics: list[dict[str, Any]] = field(default_factory=list)
    # question 2: feature → {"redeemed": median, "rest": median} (None: none or withheld)
    medians: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def stored(self) -> bool:
        """Whether the lake holds this study's rows (a later study ending the same day with
        another start replaces them; a study before caifu stored them has none)."""
        return bool(self.funds)


def _fund_info(c: Container, tenant: str) -> dict[str, dict[str, Any]]:
    """The fund master's name, type, R-level and manager per fund code (records, no figures)."""
    with c.engine.connect() as conn:
        data = ingest_repo.rows(conn, tenant, registry()["fund_products"])
    if data is None:
        return {}
    return {r["fund_code"]: r for r in data.select(
        ["fund_code", "name", "fund_type", "risk_level", "manager_company"]).to_pylist()}


def study_figures(c: Container, p: Principal, period: Period, engine: str = "duckdb"
                  ) -> StudyFigures:
    """Questions 1–3's figures of the study of ``period`` (as the lake holds it), in ``p``'s
    scope."""
    where = f"study_period_start = DATE '{period.start.isoformat()}'"

    def on(fields: Mapping[str, str], by: tuple[str, ...] = (), **kw: Any) -> list[Answer]:
        return _on(c, p, list(dict.fromkeys(fields.values())), period.end, by, where, engine,
                   **kw)

    used = on(FUND_FIELDS, ("fund",))
    info = _fund_info(c, tenant_of(p))
    funds = []
    for code, row in _table(used, FUND_FIELDS, "fund").items():
        master = info.get(code, {})
        funds.append({"fund_code": code, **row, **{k: master.get(k) for k in (
            "name", "fund_type", "risk_level", "manager_company")}})
    funds.sort(key=lambda f: (f["redeemed_amount"] is None, -float(f["redeemed_amount"] or 0),
                              -(f["redemption_ratio"] or 0.0), str(f["fund_code"])))

    categorical: list[dict[str, Any]] = []
    for feature, dim in CATEGORICAL_BY.items():
        found = on(LEVEL_FIELDS, (dim,))
        used += found
        levels = _table(found, LEVEL_FIELDS, dim)
        if not levels or set(levels) == {None}:  # no holder profile: nothing to compare
            continue
        counts = levels
        if any(v["suppressed"] for v in levels.values()):
            # the feature's statistic needs every level's counts: the same metrics, no level
            # withheld — V and p are a figure of all the feature's holders, never shown per
            # level (a withheld level's count, rate and risk ratio stay withheld)
            counts = _table(on(LEVEL_FIELDS, (dim,), min_group_size=1), LEVEL_FIELDS, dim)
        stats, effect, p_value = effect_of_counts(
            [(_level(k), v["n"], v["redeemed"]) for k, v in counts.items()])
        risk = {s["level"]: s["risk_ratio"] for s in stats}
        categorical += [{
            "feature": feature, "kind": "categorical", "level": _level(k), "n": v["n"],
            "redeemed": v["redeemed"],
            "rate": None if v["redeemed"] is None else v["redeemed"] / v["n"],
            "risk_ratio": None if v["suppressed"] else risk[_level(k)], "effect": effect,
            "effect_size": "cramers_v", "p_value": p_value, "median_redeemed": None,
            "median_rest": None, "suppressed": v["suppressed"]}
            for k, v in sorted(levels.items(), key=lambda kv: _level(kv[0]))]

    found = on(HOLDING_FIELDS)
    used += found
    holding = [{"fund_type": "all", **row} for row in _table(found, HOLDING_FIELDS, None).values()]
    found = on(HOLDING_FIELDS, ("fund_type",))
    used += found
    holding += [{"fund_type": k, **row} for k, row in sorted(
        _table(found, HOLDING_FIELDS, "fund_type").items(), key=lambda kv: str(kv[0]))]

    found = on(NUMERIC_MEDIANS, ("study_redeemed",))
    used += found
    groups = _table(found, NUMERIC_MEDIANS, "study_redeemed")
    medians = {f: {g: groups.get(g, {}).get(f) for g in ("redeemed", "rest")}
               for f in NUMERIC_MEDIANS}
    return StudyFigures(period, funds, categorical, holding, cited(used), medians)


def _level(value: Any) -> str:
    return MISSING_LEVEL if value is None else str(value)


def with_numeric(f: StudyFigures, study: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Question 2: the governed categorical rows, then the study's numeric features with their
    governed medians (``f.medians``); the rank-biserial correlation, its Mann-Whitney p and the
    counts it was computed over (``n``, ``redeemed``, ``rate``) are the study's, a rank
    statistic over the rows no metric says."""
    numeric = []
    for r in study:
        if r["kind"] != "numeric":
            continue
        m = f.medians.get(r["feature"], {})
        numeric.append({**r, "median_redeemed": m.get("redeemed"), "median_rest": m.get("rest")})
    return [*f.categorical, *numeric]
