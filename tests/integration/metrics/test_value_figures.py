"""The metrics of value_runs.yaml against hand-written oracles on the small demo broker (600
customers, seed 3): a value run, a lifecycle run and a fund-redemption study are made once,
then every metric is checked against plain DuckDB SQL over the Parquet files those runs
wrote — or over the raw fund transactions — and against the runs' own aggregates (a second
implementation: ``analytics.efficiency.rollup``, ``fund_redemptions``,
``holding_period_summary``, the lifecycle counts). Also: the services that the CLI, the API
and the report read (``services/value/figures``), their scope and withheld small groups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.analytics.redemption import Period
from caifu.analytics.redemption_effects import MISSING_LEVEL
from caifu.core.identity import Principal
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.metrics.query import answers
from caifu.services.platform import access
from caifu.services.profiles.lifecycle import Lifecycle, LifecycleResult
from caifu.services.value import figures
from caifu.services.value.customer_value import CustomerValue, CustomerValueResult
from caifu.services.value.redemption import RedemptionAnalysis, RedemptionResult
from tests.conftest import Broker

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

OPS = Principal("acme", "value.figures.test", "ops")
# a redemption wave of the seed-3 broker (caifu redemption finds it): enough redemptions
STUDY = Period(dt.date(2026, 5, 6), dt.date(2026, 6, 17))


@pytest.fixture(scope="module")
def ws(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = small_broker.copy(tmp_path_factory.mktemp("value-figures") / "ws")
    yield c
    c.close()


@pytest.fixture(scope="module")
def runs(ws: Container) -> tuple[CustomerValueResult, LifecycleResult, RedemptionResult]:
    value = CustomerValue(ws).run("acme")
    return (value, Lifecycle(ws).run("acme", value.as_of),
            RedemptionAnalysis(ws).run("acme", STUDY.start, STUDY.end))


@pytest.fixture(scope="module")
def sql(ws: Container, runs: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """The oracle's DuckDB: each table the runs wrote (and the fund transactions) as a view
    over its Parquet files, the customers and the fund master as Arrow."""
    con = duckdb.connect()
    for name in ("customer_value", "customer_value_payback", "lifecycle_stages",
                 "redemption_study_holdings", "redemption_study_redemptions",
                 "fund_transactions"):
        files = [str(f) for f in ws.lake.files("acme", name)]
        assert files, name
        con.read_parquet(files, union_by_name=True).create_view(name)
    with ws.engine.connect() as conn:
        for name in ("customers", "fund_products"):
            con.register(name, ingest_repo.rows(conn, "acme", registry()[name]))
    yield con
    con.close()


def _on(ws: Container, metrics: list[str], day: dt.date, by: tuple[str, ...] = (),
        p: Principal = OPS, **kw: Any) -> dict[str, dict[Any, Any]]:
    """Metric → {cut value (None uncut): value} on one run's day, every group shown
    (min_group_size 1)."""
    found = answers(ws, p, metrics, by=by, grain="all", start=day, end=day, min_group_size=1,
                    **kw)
    return {a.metric.name: {(r[by[0]] if by else None): r["value"] for r in a.rows}
            for a in found}


def _close(got: Any, want: Any) -> bool:
    if isinstance(got, float) or isinstance(want, float):
        return got == pytest.approx(float(want), rel=1e-12)
    return bool(got == want)


# --- the value run ---------------------------------------------------------------------------

ROLLUP_SQL = """
    SELECT {key} AS g, count(*) AS customers, sum(clv) AS clv, avg(clv::DOUBLE) AS clv_mean,
           sum(acquisition_cost) AS acquisition_cost,
           sum(acquisition_channel_cost) AS acquisition_channel_cost,
           sum(acquisition_campaign_cost) AS acquisition_campaign_cost,
           sum(retention_cost) AS retention_cost, sum(efficiency) AS efficiency,
           avg(efficiency::DOUBLE) AS efficiency_mean,
           avg(CASE WHEN efficiency < 0 THEN 1.0 ELSE 0.0 END) AS negative_share,
           sum(revenue_window) AS revenue_window
    FROM customer_value WHERE as_of = DATE '{day}' GROUP BY 1"""
COLUMNS = {"channel": "channel", "campaign": "coalesce(acquisition_campaign_id, '(none)')",
           "advisor": "coalesce(advisor_id, '(none)')", "branch": "coalesce(branch_id, '(none)')",
           "cohort": "cohort"}


@pytest.mark.parametrize("by", list(figures.ROLLUP_BY))
def test_value_rollups_are_the_runs_rows_by_its_own_attribution(ws: Container, runs: Any,
                                                                  sql: Any, by: str) -> None:
    value = runs[0]
    day = value.as_of
    want = {r["g"]: r for r in sql.sql(ROLLUP_SQL.format(key=COLUMNS[by], day=day))
            .to_arrow_table().to_pylist()}
    got = _on(ws, list(figures.ROLLUP_FIELDS.values()), day, (figures.ROLLUP_BY[by],))
    assert len(want) >= 2
    for field, metric in figures.ROLLUP_FIELDS.items():
        assert set(got[metric]) == set(want), (by, metric)
        for g, row in want.items():
            assert _close(got[metric][g], row[field]), (by, field, g)
    # the run's own roll-up (analytics.efficiency.rollup, Ibis) says the same
    for row in value.rollups[by].to_pylist():
        for field, metric in figures.ROLLUP_FIELDS.items():
            assert _close(got[metric][row["group"]], row[field]), (by, field, row["group"])


def _busiest_advisor(ws: Container) -> Principal:
    """The advisor with the most customers, signed in."""
    t = CONTRACT_TABLES["customers"]
    with ws.engine.connect() as conn:
        advisor = conn.execute(select(t.c.advisor_id).where(
            t.c.tenant_id == "acme", t.c.advisor_id.is_not(None)).group_by(t.c.advisor_id)
            .order_by(func.count().desc()).limit(1)).scalar_one()
    return Principal("acme", "adv", "advisor", advisor_id=advisor)


def test_value_totals_and_the_payback_view(ws: Container, runs: Any, sql: Any) -> None:
    value = runs[0]
    day = value.as_of
    whole = sql.sql(ROLLUP_SQL.format(key="'all'", day=day)).to_arrow_table().to_pylist()[0]
    got = _on(ws, list(figures.ROLLUP_FIELDS.values()), day)
    for field, metric in figures.ROLLUP_FIELDS.items():
        assert _close(got[metric][None], whole[field]), field
    assert whole["customers"] == value.customers > 500
    pay = sql.execute(f"""SELECT sum(clv), sum(retention_cost), sum(efficiency),
        avg(CASE WHEN efficiency < 0 THEN 1.0 ELSE 0.0 END), count(*)
        FROM customer_value_payback WHERE as_of = DATE '{day}'""").fetchone()
    got = _on(ws, list(figures.PAYBACK_FIELDS.values()), day)
    assert pay[4] == value.customers
    for (field, metric), want in zip(figures.PAYBACK_FIELDS.items(), pay[:4], strict=True):
        assert _close(got[metric][None], want), field
        assert float(got[metric][None]) == pytest.approx(value.payback.totals[field], rel=1e-12)
    # the payback view is a shorter horizon of the same fit: less CLV, less retention
    assert got["clv_payback_total"][None] < whole["clv"]


def test_value_figures_withhold_small_groups_and_keep_their_counts(ws: Container,
                                                                   runs: Any) -> None:
    value = runs[0]
    f = figures.value_figures(ws, OPS, value.as_of, ["campaign", "channel"], payback=True)
    campaigns = f.rollups["campaign"]
    small = [g for g in campaigns if g["customers"] < 10]
    assert small and all(g["suppressed"] and g["clv"] is None and g["efficiency"] is None
                         for g in small)
    assert all(not g["suppressed"] and g["clv"] is not None for g in campaigns
               if g["customers"] >= 10)
    assert sum(g["customers"] for g in campaigns) == f.totals["customers"] == value.customers
    assert sum(g["clv"] for g in f.rollups["channel"]) == f.totals["clv"]
    names = [m["metric"] for m in f.metrics]
    assert set(figures.ROLLUP_FIELDS.values()) | set(figures.PAYBACK_FIELDS.values()) <= \
        set(names) and len(names) == len(set(names))
    assert all(len(m["definition_hash"]) == 16 and m["version"] == 1 for m in f.metrics)


def test_an_advisors_rollup_is_his_customers(ws: Container, runs: Any, sql: Any) -> None:
    p = _busiest_advisor(ws)
    mine = sorted(access.visible_ids(ws, p) or ())
    ids = ", ".join(f"'{i}'" for i in mine)
    day = runs[0].as_of
    want = dict(sql.execute(f"""SELECT channel, sum(clv) FROM customer_value
        WHERE as_of = DATE '{day}' AND customer_id IN ({ids}) GROUP BY 1""").fetchall())
    got = _on(ws, ["clv_total"], day, ("value_channel",), p)["clv_total"]
    assert got == want and len(mine) < runs[0].customers
    f = figures.value_figures(ws, p, day, ["advisor"])
    assert f.totals["customers"] == len(set(mine) & set(
        runs[0].per_customer["customer_id"].to_pylist()))
    groups = {g["group"]: g["customers"] for g in f.rollups["advisor"]}
    assert groups[p.advisor_id] == max(groups.values())


# --- the lifecycle run -----------------------------------------------------------------------


def test_customers_per_lifecycle_stage(ws: Container, runs: Any, sql: Any) -> None:
    value, lifecycle, _ = runs
    want = dict(sql.execute(f"""SELECT stage, count(*) FROM lifecycle_stages
        WHERE as_of = DATE '{value.as_of}' GROUP BY 1""").fetchall())
    got, used = figures.stage_counts(ws, OPS, value.as_of)
    assert got == want == {k: v for k, v in lifecycle.counts.items() if v}
    assert len(got) >= 4 and [m["metric"] for m in used] == ["lifecycle_customers"]


# --- the fund-redemption study ---------------------------------------------------------------

WHERE = f"study_period_start = DATE '{STUDY.start}'"


def test_question_one_per_fund_from_the_raw_transactions(ws: Container, runs: Any, sql: Any
                                                          ) -> None:
    study = runs[2]
    got = _on(ws, list(figures.FUND_FIELDS.values()), STUDY.end, ("fund",), where=WHERE)
    # what was redeemed in the period, straight from the confirmed transactions
    raw = {r[0]: r[1:] for r in sql.execute(f"""SELECT fund_code, sum(amount), sum(fee),
        count(*), sum(shares), count(DISTINCT customer_id) FROM fund_transactions
        WHERE txn_type = 'redeem' AND txn_date BETWEEN DATE '{STUDY.start}'
        AND DATE '{STUDY.end}' GROUP BY 1""").fetchall()}
    assert len(raw) >= 5
    for code, (amount, fee, n, shares, people) in raw.items():
        assert got["study_redeemed_amount"][code] == amount
        assert got["study_redeem_fees"][code] == fee
        assert got["study_redemptions"][code] == n
        assert got["study_redeemed_shares"][code] == shares
        assert got["study_redeemed_holdings"][code] == people
    assert {k for k, v in got["study_redemptions"].items() if v} == set(raw)
    # the study's own question 1 (analytics.redemption.fund_redemptions) agrees fund by fund
    funds = study.funds.to_pylist()
    assert set(got["study_shares_at_start"]) == {f["fund_code"] for f in funds}
    for f in funds:  # a count a fund has no row for (no holder at the start) is 0
        for field, metric in figures.FUND_FIELDS.items():
            assert _close(got[metric].get(f["fund_code"], 0), f[field]), (f["fund_code"], field)


def test_the_studys_rows_hold_every_exposed_holding(ws: Container, runs: Any, sql: Any
                                                     ) -> None:
    study = runs[2]
    rows = sql.execute(f"""SELECT count(*), count(*) FILTER (WHERE redemptions > 0),
        count(*) FILTER (WHERE shares_at_start > 0), min(period_start), max(period_start)
        FROM redemption_study_holdings WHERE as_of = DATE '{STUDY.end}'""").fetchone()
    got = _on(ws, ["study_holdings", "study_redeemed_holdings", "study_holders_at_start",
               "study_redemption_rate"], STUDY.end, where=WHERE)
    assert rows[:3] == (got["study_holdings"][None], got["study_redeemed_holdings"][None],
                        got["study_holders_at_start"][None])
    assert rows[0] == study.holdings.num_rows and rows[3] == rows[4] == STUDY.start
    assert got["study_redemption_rate"][None] == pytest.approx(rows[1] / rows[0], rel=1e-12)


@pytest.mark.parametrize(("feature", "dimension"), list(figures.CATEGORICAL_BY.items())[:3])
def test_question_two_counts_per_level(ws: Container, runs: Any, sql: Any, feature: str,
                                       dimension: str) -> None:
    study = runs[2]
    column = {"fund_type": "f.fund_type", "risk_level": "f.risk_level",
              "manager_company": "f.manager_company"}[feature]
    want = {r[0]: r[1:] for r in sql.execute(f"""SELECT {column}, count(*),
        count(*) FILTER (WHERE h.redemptions > 0) FROM redemption_study_holdings h
        LEFT JOIN fund_products f USING (fund_code) WHERE h.as_of = DATE '{STUDY.end}'
        GROUP BY 1""").fetchall()}
    got = _on(ws, ["study_holdings", "study_redeemed_holdings"], STUDY.end, (dimension,),
              where=WHERE)
    assert {k: (got["study_holdings"][k], got["study_redeemed_holdings"].get(k, 0))
            for k in got["study_holdings"]} == want
    # the study's comparison (numpy over its rows) counted the same
    mine = {(r["level"]): (r["n"], r["redeemed"]) for r in study.comparison.to_pylist()
            if r["feature"] == feature}
    assert mine == {(MISSING_LEVEL if k is None else k): v for k, v in want.items()}


def test_question_two_effects_come_from_the_governed_counts(ws: Container, runs: Any) -> None:
    """Cramér's V and its p-value from the governed counts equal the study's (numpy over its
    rows); a small level's own count, rate and risk ratio are withheld, the feature's
    statistic (all its holders) is not."""
    study = runs[2]
    f = figures.study_figures(ws, OPS, STUDY)
    theirs = {(r["feature"], r["level"]): r for r in study.comparison.to_pylist()
              if r["kind"] == "categorical"}
    assert {(r["feature"], r["level"]) for r in f.categorical} == set(theirs)
    for r in f.categorical:
        t = theirs[(r["feature"], r["level"])]
        assert r["n"] == t["n"]
        assert r["effect"] == pytest.approx(t["effect"], rel=1e-9)
        assert r["p_value"] == pytest.approx(t["p_value"], rel=1e-9)
        if r["suppressed"]:
            assert r["redeemed"] is None and r["rate"] is None and r["risk_ratio"] is None
        else:
            assert r["redeemed"] == t["redeemed"]
            assert r["rate"] == pytest.approx(t["rate"], rel=1e-12)
            assert r["risk_ratio"] == pytest.approx(t["risk_ratio"], rel=1e-12)
    assert any(r["suppressed"] for r in f.categorical)
    assert any(not r["suppressed"] for r in f.categorical)
    assert {m["metric"] for m in f.metrics} >= {"study_holdings", "study_redeemed_holdings",
                                                "study_redeemed_amount"}


def test_question_three_holding_periods(ws: Container, runs: Any, sql: Any) -> None:
    study = runs[2]
    want = {r[0]: r[1:] for r in sql.execute(f"""SELECT coalesce(f.fund_type, 'all'), count(*),
        count(*) FILTER (WHERE r.holding_days IS NULL), avg(r.holding_days)
        FROM redemption_study_redemptions r LEFT JOIN fund_products f USING (fund_code)
        WHERE r.as_of = DATE '{STUDY.end}' GROUP BY ROLLUP (f.fund_type)""").fetchall()}
    metrics = list(figures.HOLDING_FIELDS.values())
    got = _on(ws, metrics, STUDY.end, where=WHERE)
    cut = _on(ws, metrics, STUDY.end, ("fund_type",), where=WHERE)
    for kind, (n, unknown, mean) in want.items():
        source, key = (got, None) if kind == "all" else (cut, kind)
        assert source["study_matched_redemptions"][key] == n
        assert source["study_unknown_age_redemptions"].get(key, 0) == unknown
        assert source["study_holding_days_mean"][key] == pytest.approx(mean, rel=1e-12)
    summary = {r["fund_type"]: r for r in study.holding_summary.to_pylist()}
    assert set(summary) == set(want) and len(want) >= 3
    for kind, (n, unknown, mean) in want.items():
        assert (summary[kind]["redemptions"], summary[kind]["unknown_age"]) == (n, unknown)
        assert summary[kind]["mean"] == pytest.approx(mean, rel=1e-12)


def test_a_study_is_read_by_its_own_period(ws: Container, runs: Any) -> None:
    """A later study ending the same day with another start replaces the rows: the first
    study's figures are then gone (not the second's read as the first's)."""
    end = dt.date(2026, 3, 31)
    first, second = Period(dt.date(2026, 3, 1), end), Period(dt.date(2026, 2, 1), end)
    RedemptionAnalysis(ws).run("acme", first.start, first.end)
    assert figures.study_figures(ws, OPS, first).stored
    RedemptionAnalysis(ws).run("acme", second.start, second.end)
    assert not figures.study_figures(ws, OPS, first).stored
    wider = figures.study_figures(ws, OPS, second)
    assert wider.stored and wider.holding[0]["redemptions"] > 0
    # the study of STUDY (another end) is untouched
    assert figures.study_figures(ws, OPS, STUDY).stored


# --- quantiles (MEDIAN / QUANTILE) -----------------------------------------------------------

SHARES = {"p10": 0.1, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "p99": 0.99}


def test_value_distributions_are_quantiles_of_the_runs_rows(ws: Container, runs: Any,
                                                            sql: Any) -> None:
    """The CLV (open accounts) and efficiency tables: DuckDB's quantile_cont over the Parquet
    rows, and the run's own numpy distribution (``analytics.efficiency.distribution``)."""
    value = runs[0]
    f = figures.value_figures(ws, OPS, value.as_of, distribution=True)
    for name, column, cond in (("clv", "clv", "clv_basis <> 'closed'"),
                               ("efficiency", "efficiency", "TRUE")):
        row = sql.execute(f"""SELECT avg({column}::DOUBLE),
            {", ".join(f"quantile_cont({column}::DOUBLE, {p})" for p in SHARES.values())},
            max({column})::DOUBLE, avg(CASE WHEN {column} < 0 THEN 1.0 ELSE 0.0 END)
            FROM customer_value WHERE as_of = DATE '{value.as_of}' AND {cond}""").fetchone()
        want = dict(zip(["mean", *SHARES, "max", "negative_share"], row, strict=True))
        got = f.distribution[name]
        own = getattr(value, name)  # the run's numpy distribution of the same rows
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-9), (name, k)
            assert got[k] == pytest.approx(own[k], rel=1e-9, abs=1e-9), (name, k)
        assert got["p10"] < got["p50"] < got["p99"] <= got["max"]
    zero = sql.execute(f"""SELECT avg(CASE WHEN clv = 0 THEN 1.0 ELSE 0.0 END)
        FROM customer_value WHERE as_of = DATE '{value.as_of}' AND clv_basis <> 'closed'
        """).fetchone()[0]
    assert f.distribution["clv"]["zero_share"] == pytest.approx(zero, rel=1e-12)
    assert f.distribution["clv"]["zero_share"] == pytest.approx(value.clv["zero_share"])
    names = {m["metric"] for m in f.metrics}
    assert {m for d in figures.DISTRIBUTION_FIELDS.values() for m in d.values()} <= names


def test_an_advisors_distribution_is_his_customers(ws: Container, runs: Any, sql: Any) -> None:
    p = _busiest_advisor(ws)
    ids = ", ".join(f"'{i}'" for i in sorted(access.visible_ids(ws, p) or ()))
    day = runs[0].as_of
    want = sql.execute(f"""SELECT median(efficiency::DOUBLE) FROM customer_value
        WHERE as_of = DATE '{day}' AND customer_id IN ({ids})""").fetchone()[0]
    f = figures.value_figures(ws, p, day, distribution=True)
    assert f.distribution["efficiency"]["p50"] == pytest.approx(want, rel=1e-12)


def test_question_three_quartiles(ws: Container, runs: Any, sql: Any) -> None:
    study = runs[2]
    want = {r[0]: r[1:] for r in sql.execute(f"""SELECT coalesce(f.fund_type, 'all'),
        quantile_cont(r.holding_days, 0.25), median(r.holding_days),
        quantile_cont(r.holding_days, 0.75)
        FROM redemption_study_redemptions r LEFT JOIN fund_products f USING (fund_code)
        WHERE r.as_of = DATE '{STUDY.end}' GROUP BY ROLLUP (f.fund_type)""").fetchall()}
    f = figures.study_figures(ws, OPS, STUDY)
    summary = {r["fund_type"]: r for r in study.holding_summary.to_pylist()}  # the study's numpy
    rows = {r["fund_type"]: r for r in f.holding}
    assert set(rows) == set(want) and len(want) >= 3
    for kind, quartiles in want.items():
        for k, v in zip(("p25", "median", "p75"), quartiles, strict=True):
            if rows[kind]["suppressed"]:
                continue
            assert rows[kind][k] == pytest.approx(v, rel=1e-12), (kind, k)
            assert rows[kind][k] == pytest.approx(summary[kind][k], rel=1e-12), (kind, k)
    assert rows["all"]["median"] is not None
    assert {"study_holding_days_p25", "study_holding_days_median",
            "study_holding_days_p75"} <= {m["metric"] for m in f.metrics}


def test_question_two_medians_of_numeric_features(ws: Container, runs: Any, sql: Any) -> None:
    study = runs[2]
    f = figures.study_figures(ws, OPS, STUDY)
    theirs = {r["feature"]: r for r in study.comparison.to_pylist() if r["kind"] == "numeric"}
    assert len(theirs) >= 6
    for feature, r in theirs.items():
        want = dict(sql.execute(f"""SELECT redemptions > 0, median({feature}::DOUBLE)
            FROM redemption_study_holdings WHERE as_of = DATE '{STUDY.end}'
            AND {feature} IS NOT NULL AND NOT isnan({feature}::DOUBLE) GROUP BY 1""").fetchall())
        got = f.medians[feature]
        for group, flag, mine in (("redeemed", True, "median_redeemed"),
                                  ("rest", False, "median_rest")):
            assert got[group] == pytest.approx(want[flag], rel=1e-12), (feature, group)
            assert got[group] == pytest.approx(r[mine], rel=1e-12), (feature, group)
    shown = [r for r in figures.with_numeric(f, study.comparison.to_pylist())
             if r["kind"] == "numeric"]
    assert [r["feature"] for r in shown] == list(theirs)
    assert all(r["median_redeemed"] == f.medians[r["feature"]]["redeemed"] for r in shown)
