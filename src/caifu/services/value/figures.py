"""The figures of a value run, a lifecycle run and a fund-redemption study, from the metric
layer: every count, sum, mean and share the CLI, the API and the value report show of them
is ``services/metrics/query.answers`` over the lake tables the runs write
(``data/metrics/value_runs.yaml``), so it has one definition, the caller's scope (an advisor
sees his customers' roll-up), small level-3 groups withheld, and the id, version and
definition hash of each metric (``metrics`` in every result).

A run is a snapshot of its date: each query asks for that one day (grain ``all``), and a
redemption study also for its first day (``study_period_start``), so a later study ending the
same day with another start is not mistaken for it.

What is *not* here stays the run's own and is named where it is shown: quantiles and
histograms (the metric language has no median), model fits, the rank statistics of numeric
features (question 2) and the wave detection. The categorical effect sizes (risk ratio,
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
from caifu.analytics.redemption_effects import MISSING_LEVEL, effect_of_counts
from caifu.core.identity import Principal
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.metrics.query import Answer, answers
from caifu.services.platform.access import tenant_of
from caifu.services.value.customer_value import VALUE_TABLE

# --- shared ---------------------------------------------------------------------------------


def reader(tenant: str, who: str = "value-report") -> Principal:
    """The tenant-wide reader of a job or command that has no user (the value report, the
    CLI): operations' scope, as the report's headline figures are asked."""
    return Principal(tenant, who, "ops")


def traced(found: Iterable[Answer]) -> list[dict[str, Any]]:
    """Each metric used, once: id, version and definition hash."""
    out: dict[str, dict[str, Any]] = {}
    for a in found:
        out.setdefault(a.metric.name, {"metric": a.metric.name, "version": a.metric.version,
                                       "definition_hash": a.catalog.definition_hash(
                                           a.metric.name)})
    return list(out.values())


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


def value_run_date(c: Container, tenant: str) -> dt.date | None:
    """The newest value run's date (the lake's newest ``customer_value`` snapshot)."""
    dates = c.lake.snapshot_dates(tenant, VALUE_TABLE)
    return dt.date.fromisoformat(dates[-1]) if dates else None


def value_figures(c: Container, p: Principal, as_of: dt.date, by: Sequence[str] = (), *,
                  payback: bool = False, engine: str = "duckdb") -> ValueFigures:
    """Totals and roll-ups (``by``: keys of ``ROLLUP_BY``) of the value run of ``as_of``, in
    ``p``'s scope; with ``payback``, the payback view's totals too."""
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
    return ValueFigures(as_of, totals, rollups, view, traced(used))


# --- the lifecycle run ------------------------------------------------------------------------


def stage_counts(c: Container, p: Principal, as_of: dt.date
                 ) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Customers per lifecycle stage in the lifecycle run of ``as_of`` (stages without
    customers are left out), and the metric used."""
    found = _on(c, p, ["lifecycle_customers"], as_of, ("lifecycle_run_stage",))
    return ({r["lifecycle_run_stage"]: r["value"] for r in found[0].rows}, traced(found))


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
                  "mean": "study_holding_days_mean"}


@dataclass
class StudyFigures:
    period: Period
    funds: list[dict[str, Any]]  # per fund, by redeemed amount (withheld ones last)
    categorical: list[dict[str, Any]]  # question 2: per feature and level, with effect sizes
    holding: list[dict[str, Any]]  # question 3: "all", then per fund type (no quantiles)
    metrics: list[dict[str, Any]] = field(default_factory=list)

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
    return StudyFigures(period, funds, categorical, holding, traced(used))


def _level(value: Any) -> str:
    return MISSING_LEVEL if value is None else str(value)


def with_quartiles(holding: list[dict[str, Any]], study: Iterable[Mapping[str, Any]]
                   ) -> list[dict[str, Any]]:
    """Question 3's governed rows with the study's quartiles of the same fund type (p25,
    median, p75: quantiles are no metric)."""
    quartiles = {r["fund_type"]: r for r in study}
    return [{**row, **{k: quartiles.get(row["fund_type"], {}).get(k)
                       for k in ("p25", "median", "p75")}} for row in holding]


def with_numeric(categorical: list[dict[str, Any]], study: Iterable[Mapping[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Question 2: the governed categorical rows, then the study's numeric features (medians
    and rank-biserial correlations over the rows: no metric can say them)."""
    return [*categorical, *(dict(r) for r in study if r["kind"] == "numeric")]
