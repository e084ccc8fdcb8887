"""Customer value on hand-built tables: every expected number worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pytest
import yaml

from caifu.adapters.engines.duckdb import connect
from caifu.analytics import efficiency as eff
from caifu.analytics import value as an
from caifu.analytics.value_config import (
    ClvConfig,
    RevenueConfig,
    StampDuty,
    ValueConfig,
    parse_value_config,
)
from caifu.core.errors import ConfigError

_con = connect()
MONEY = pa.decimal128(18, 2)
D = dt.date
AS_OF = D(2024, 1, 31)  # retention window 2023-02-01 … 2024-01-31: 365 days


def _rows(expr: ibis.Table) -> list[dict]:
    return _con.to_pyarrow(expr).to_pylist()


def _money(values: list[str]) -> pa.Array:
    return pa.array([Decimal(v) for v in values], MONEY)


# --- revenue per customer-day -----------------------------------------------------------------

# Round rates so each line below is arithmetic by hand: exchange 0.0001 and transfer 0.00001 of
# turnover; stamp duty 0.001 on stock sells until 2023-08-27, then 0.0005; half the net
# commission is the broker's, 80% of fund sales fees.
REVENUE = RevenueConfig(exchange_fee_rate=0.0001, transfer_fee_rate=0.00001,
                        stamp_duty=(StampDuty(since=D(2008, 9, 19), rate=0.001),
                                    StampDuty(since=D(2023, 8, 28), rate=0.0005)),
                        commission_share=0.5, fund_fee_share=0.8)
TRADES = [  # customer, date, code, side, amount, fee — net = (fee - levies) * 0.5
    ("A", D(2024, 1, 2), "600000", "B", "100000", "40.00"),  # 40-10-1 = 29 -> 14.50
    ("A", D(2024, 1, 2), "600000", "S", "100000", "90.00"),  # 90-10-1-50 = 29 -> 14.50
    ("A", D(2023, 8, 1), "600000", "S", "10000", "15.00"),  # old stamp: 15-1-0.1-10 -> 1.95
    ("B", D(2024, 1, 3), "510300", "B", "200000", "5.00"),  # ETF: 5-20 < 0 -> 0, no day
    ("B", D(2024, 1, 5), "999999", "S", "10000", "20.00"),  # unknown = stock: 20-6.1 -> 6.95
    ("A", D(2024, 2, 1), "600000", "B", "100000", "40.00"),  # after as-of
]
FUNDS = [  # customer, date, type, fee — purchases and subscriptions earn fee * 0.8
    ("A", D(2024, 1, 2), "purchase", "10.00"),  # 8.00, same day as A's trades
    ("B", D(2024, 1, 3), "redeem", "7.00"),  # a redemption is not a transaction
    ("C", D(2024, 1, 10), "purchase", "0.00"),  # money fund, no fee: earned nothing
    ("C", D(2024, 1, 11), "subscribe", "2.50"),  # 2.00
]


def _trades() -> ibis.Table:
    return ibis.memtable(pa.table({
        "customer_id": [r[0] for r in TRADES], "trade_date": pa.array([r[1] for r in TRADES]),
        "security_code": [r[2] for r in TRADES], "side": [r[3] for r in TRADES],
        "amount": _money([r[4] for r in TRADES]), "fee": _money([r[5] for r in TRADES])}))


def _fund_tx() -> ibis.Table:
    return ibis.memtable(pa.table({
        "customer_id": [r[0] for r in FUNDS], "txn_date": pa.array([r[1] for r in FUNDS]),
        "txn_type": [r[2] for r in FUNDS], "fee": _money([r[3] for r in FUNDS])}))


def _securities() -> ibis.Table:
    return ibis.memtable(pa.table({"security_code": ["600000", "510300"],
                                   "security_type": ["stock", "etf"]}))


def _log(start: dt.date | None = None) -> list[tuple[str, dt.date, float]]:
    expr = an.revenue_log(_trades(), _fund_tx(), _securities(), REVENUE, AS_OF, start)
    assert expr is not None
    return sorted((r["customer_id"], r["date"], round(r["revenue"], 6)) for r in _rows(expr))


def test_revenue_log_is_net_revenue_per_customer_day() -> None:
    assert _log() == [("A", D(2023, 8, 1), 1.95), ("A", D(2024, 1, 2), 37.0),
                      ("B", D(2024, 1, 5), 6.95), ("C", D(2024, 1, 11), 2.0)]
    assert _log(start=D(2024, 1, 1))[0] == ("A", D(2024, 1, 2), 37.0)
    assert an.revenue_log(None, None, _securities(), REVENUE, AS_OF) is None


def test_trade_revenue_without_levies_is_the_fee() -> None:
    bare = RevenueConfig(exchange_fee_rate=0, transfer_fee_rate=0, stamp_duty=())
    rows = _rows(an.trade_revenue(_trades(), _securities(), bare))
    assert [r["revenue"] for r in rows] == [40.0, 90.0, 15.0, 5.0, 20.0, 40.0]


# --- customers and costs -------------------------------------------------------------------------

CUSTOMERS = [  # id, channel, branch, advisor, opened, closed
    ("P", "app", "YYB1", "TG1", D(2020, 5, 6), None),
    ("Q", "bank", "YYB1", None, D(2023, 12, 1), None),
    ("R", "app", "YYB2", "TG1", D(2020, 5, 6), D(2023, 8, 1)),
    ("S", "campaign", "YYB2", None, D(2023, 9, 6), None),
    ("U", "app", "YYB1", None, D(2024, 2, 15), None),  # opened after as-of
]
CAMPAIGNS = [  # id, goal, starts_on, spend
    ("K1", "funded", D(2023, 6, 1), "1000.00"),
    ("K2", "account_opened", D(2023, 9, 1), "600.00"),
    ("K3", "funded", D(2023, 9, 1), "300.00"),  # converts only Q, whom K1 already acquired
    ("K4", "fund_purchase", D(2024, 1, 5), "900.00"),
    ("K5", "reactivation", D(2022, 12, 1), "500.00"),  # before the window: no spend
    ("K6", "account_opened", D(2024, 2, 10), "999.00"),  # after as-of
]
TOUCHES = [  # campaign, customer, touched_at (UTC), stage, cost
    ("K1", "P", dt.datetime(2023, 6, 2, 2), "converted", "20.00"),
    ("K1", "Q", dt.datetime(2023, 6, 3, 2), "converted", "20.00"),
    ("K1", "R", dt.datetime(2023, 6, 2, 2), "sent", "0.05"),
    ("K2", "S", dt.datetime(2023, 9, 6, 2), "converted", None),
    ("K3", "Q", dt.datetime(2023, 9, 5, 2), "converted", "20.00"),
    ("K4", "P", dt.datetime(2024, 1, 5, 2), "sent", "0.05"),
    ("K4", "P", dt.datetime(2024, 1, 6, 2), "converted", None),
    ("K4", "Q", dt.datetime(2024, 1, 5, 2), "sent", "0.05"),
    ("K4", "R", dt.datetime(2024, 1, 5, 2), "sent", "0.05"),
    ("K4", "P", dt.datetime(2024, 1, 31, 15, 30), "sent", "1.00"),  # 23:30 on 31 Jan, Beijing
    ("K4", "Q", dt.datetime(2024, 1, 31, 17), "sent", "1.00"),  # 01:00 on 1 Feb: after as-of
    ("K5", "R", dt.datetime(2022, 12, 2, 2), "sent", "5.00"),  # before the window
    ("K5", "R", dt.datetime(2023, 3, 1, 2), "sent", "5.00"),  # in it: a retention touch
]
CONFIG = ValueConfig(
    acquisition={"channel_costs": {"app": 100, "bank": 200, "branch": 400},
                 "campaign_goals": ["account_opened", "funded"]},
    retention={"annual_service_cost": 120, "annual_advisor_cost": 240})


def _customers() -> ibis.Table:
    return ibis.memtable(pa.table({
        "customer_id": [r[0] for r in CUSTOMERS], "channel": [r[1] for r in CUSTOMERS],
        "branch_id": [r[2] for r in CUSTOMERS],
        "advisor_id": pa.array([r[3] for r in CUSTOMERS], pa.string()),
        "opened_on": pa.array([r[4] for r in CUSTOMERS]),
        "closed_on": pa.array([r[5] for r in CUSTOMERS], pa.date32())}))


def _campaigns() -> ibis.Table:
    return ibis.memtable(pa.table({
        "campaign_id": [r[0] for r in CAMPAIGNS], "goal": [r[1] for r in CAMPAIGNS],
        "starts_on": pa.array([r[2] for r in CAMPAIGNS]),
        "spend": _money([r[3] for r in CAMPAIGNS])}))


def _touches() -> ibis.Table:
    return ibis.memtable(pa.table({
        "campaign_id": [r[0] for r in TOUCHES], "customer_id": [r[1] for r in TOUCHES],
        "touched_at": pa.array([r[2] for r in TOUCHES], pa.timestamp("us")),
        "stage": [r[3] for r in TOUCHES],
        "cost": pa.array([None if r[4] is None else Decimal(r[4]) for r in TOUCHES], MONEY)}))


def _base(cohort: str = "quarter") -> ibis.Table:
    return an.customer_base(_customers(), AS_OF, cohort)


def test_customer_base_keeps_customers_opened_by_as_of_with_their_cohort() -> None:
    rows = {r["customer_id"]: r for r in _rows(_base())}
    assert sorted(rows) == ["P", "Q", "R", "S"]
    assert [rows[c]["cohort"] for c in "PQRS"] == ["2020Q2", "2023Q4", "2020Q2", "2023Q3"]
    assert rows["R"]["closed_on"] == D(2023, 8, 1) and rows["P"]["closed_on"] is None
    months = {r["customer_id"]: r["cohort"] for r in _rows(_base("month"))}
    assert months == {"P": "2020-05", "Q": "2023-12", "R": "2020-05", "S": "2023-09"}
    # closed after as-of: still open on that date
    later = an.customer_base(_customers(), D(2023, 7, 1))
    assert {r["customer_id"]: r["closed_on"] for r in _rows(later)} == {"P": None, "R": None}


def test_campaign_spend_is_divided_among_the_customers_each_campaign_acquired_first() -> None:
    rows = {r["campaign_id"]: r for r in _rows(
        an.campaign_costs(_base(), _campaigns(), _touches(), CONFIG, AS_OF, 8))}
    # K5 started before the window, K6 after as-of: neither counts
    assert sorted(rows) == ["K1", "K2", "K3", "K4"]
    k1 = rows["K1"]  # (1000 spend + 20 + 20 + 0.05 touch costs) / P and Q
    assert (k1["role"], k1["customers"]) == ("acquisition", 2)
    assert k1["per_customer"] == pytest.approx(1040.05 / 2)
    assert (rows["K2"]["customers"], rows["K2"]["per_customer"]) == (1, 600.0)
    # Q converted in K3 too, but was acquired by K1 first: K3's spend is carried by nobody
    assert (rows["K3"]["customers"], rows["K3"]["per_customer"]) == (0, None)
    # retention: spend over the customers targeted (P, Q, R); its touch costs stay per touch
    k4 = rows["K4"]
    assert (k4["role"], k4["customers"], k4["per_customer"]) == ("retention", 3, 300.0)
    # 0.05 (P, Q, R) + 1.00 (P at 23:30 local on 31 Jan); Q's 1.00 on 1 Feb is after as-of
    assert k4["touch_cost"] == pytest.approx(1.15)


def test_costs_per_customer() -> None:
    rows = {r["customer_id"]: r for r in _rows(an.customer_costs(
        _base(), None, _campaigns(), _touches(), CONFIG, AS_OF, 8))}
    assert sorted(rows) == ["P", "Q", "R", "S"]
    got = {c: (r["acquisition_channel_cost"], r["acquisition_campaign_id"],
               round(r["acquisition_campaign_cost"], 6)) for c, r in rows.items()}
    assert got == {"P": (100.0, "K1", 520.025), "Q": (200.0, "K1", 520.025),
                   "R": (100.0, None, 0.0), "S": (0.0, "K2", 600.0)}  # no cost for 'campaign'
    # retention touches in the window, not of acquisition campaigns: P 0.05 + 1.00 (K4);
    # Q 0.05 (K4; the later touch is after as-of); R 0.05 (K4) + 5.00 (K5, in the window)
    touch = {c: round(r["retention_touch_cost"], 6) for c, r in rows.items()}
    assert touch == {"P": 1.05, "Q": 0.05, "R": 5.05, "S": 0.0}
    spend = {c: r["retention_campaign_cost"] for c, r in rows.items()}
    assert spend == {"P": 300.0, "Q": 300.0, "R": 300.0, "S": 0.0}
    # service: 120 a year + 240 with an advisor, for the days served of the 365 in the window
    service = {c: r["retention_service_cost"] for c, r in rows.items()}
    assert service["P"] == pytest.approx(360.0)  # advisor, the whole window
    assert service["Q"] == pytest.approx(120 * 62 / 365)  # opened 1 Dec: 31 + 31 days
    assert service["R"] == pytest.approx(360 * 182 / 365)  # closed 1 Aug: 1 Feb … 1 Aug
    assert service["S"] == pytest.approx(120 * 148 / 365)  # opened 6 Sep: 25+31+30+31+31
    assert all(r["revenue_past"] == 0.0 for r in rows.values())


def test_retention_spend_can_be_left_out_and_touches_without_campaign_data() -> None:
    off = CONFIG.model_copy(update={"retention": CONFIG.retention.model_copy(
        update={"campaign_spend": False})})
    rows = _rows(an.customer_costs(_base(), None, _campaigns(), _touches(), off, AS_OF, 8))
    assert {r["retention_campaign_cost"] for r in rows} == {0.0}
    bare = _rows(an.customer_costs(_base(), None, _campaigns(), None, CONFIG, AS_OF, 8))
    assert {(r["acquisition_campaign_cost"], r["retention_touch_cost"]) for r in bare} == {
        (0.0, 0.0)}


def test_revenue_in_the_window_is_summed_per_customer() -> None:
    log = an.revenue_log(_trades(), _fund_tx(), _securities(), REVENUE, AS_OF)
    base = an.customer_base(ibis.memtable(pa.table({
        "customer_id": ["A", "B", "C", "D"], "channel": ["app"] * 4,
        "branch_id": ["YYB1"] * 4, "advisor_id": pa.array([None] * 4, pa.string()),
        "opened_on": pa.array([D(2020, 1, 1)] * 4),
        "closed_on": pa.array([None] * 4, pa.date32())})), AS_OF)
    rows = _rows(an.customer_costs(base, log, _campaigns(), None, CONFIG, AS_OF, 8))
    assert {r["customer_id"]: round(r["revenue_past"], 6) for r in rows} == {
        "A": 38.95, "B": 6.95, "C": 2.0, "D": 0.0}


@pytest.mark.parametrize(("as_of", "months", "start"), [
    (D(2024, 1, 31), 12, D(2023, 2, 1)), (D(2024, 2, 29), 12, D(2023, 3, 1)),
    (D(2024, 3, 31), 1, D(2024, 3, 1)), (D(2024, 12, 31), 12, D(2024, 1, 1))])
def test_window_start(as_of: dt.date, months: int, start: dt.date) -> None:
    assert an.window_start(as_of, months) == start


# --- the per-customer table and its roll-ups ------------------------------------------------------

HAND_COSTS = pa.table({  # as customer_costs returns them, in float yuan
    "customer_id": ["P", "Q", "R", "S"],
    "acquisition_campaign_id": pa.array(["K1", None, None, "K2"], pa.string()),
    "acquisition_channel_cost": [100.0, 200.0, 100.0, 0.0],
    "acquisition_campaign_cost": [520.024, 0.0, 0.0, 600.0],
    "retention_touch_cost": [1.05, 0.05, 5.05, 0.0],
    "retention_campaign_cost": [300.0, 300.0, 300.0, 0.0],
    "retention_service_cost": [360.0, 120 * 62 / 365, 360 * 182 / 365, 120 * 148 / 365],
    "revenue_past": [38.95, 0.0, 12.0, 2.0],
})


def _estimate() -> an.ClvEstimate:
    def f(*values: float) -> np.ndarray:
        return np.array(values, dtype=np.float64)

    return an.ClvEstimate(
        customer_id=np.array(["P", "Q", "R", "S"], dtype=object),
        frequency=np.array([3, 0, 5, 1]), recency=f(10, 0, 20, 1), T=f(100, 61, 500, 147),
        monetary_value=f(12.5, 0, 8, 3), p_alive=f(0.9, 1, 0.2, 1),
        expected_transactions=f(2, 1, 1, 0.5), clv=f(100.004, 1000.006, 50.0, 0.994),
        estimated=True)


def _value_table() -> pa.Table:
    base = _con.to_pyarrow(_base())
    return eff.customer_value_table(AS_OF, base, HAND_COSTS, _estimate(), unit_days=1)


def test_efficiency_is_clv_less_costs_to_the_fen() -> None:
    t = _value_table()
    assert t.schema == eff.CUSTOMER_VALUE_SCHEMA
    rows = {r["customer_id"]: r for r in t.to_pylist()}
    d = Decimal
    # P: 100.00 - (100 + 520.02) - (1.05 + 300 + 360)
    assert (rows["P"]["clv"], rows["P"]["acquisition_cost"], rows["P"]["retention_cost"],
            rows["P"]["efficiency"]) == (d("100.00"), d("620.02"), d("661.05"), d("-1181.07"))
    # Q: 1000.01 - 200 - (0.05 + 300 + 20.38)
    assert (rows["Q"]["clv"], rows["Q"]["retention_cost"], rows["Q"]["efficiency"]) == (
        d("1000.01"), d("320.43"), d("479.58"))
    # R closed on 1 Aug 2023: worth nothing, whatever the model said; its costs stay
    assert (rows["R"]["clv"], rows["R"]["clv_basis"], rows["R"]["p_alive"],
            rows["R"]["expected_transactions"]) == (d("0.00"), "closed", 0.0, 0.0)
    assert (rows["R"]["retention_cost"], rows["R"]["efficiency"]) == (d("484.56"), d("-584.56"))
    assert (rows["S"]["acquisition_cost"], rows["S"]["retention_cost"], rows["S"]["efficiency"]
            ) == (d("600.00"), d("48.66"), d("-647.67"))
    for r in rows.values():
        assert r["efficiency"] == r["clv"] - r["acquisition_cost"] - r["retention_cost"]
    assert rows["P"]["monetary_value"] == d("12.50")
    assert rows["P"]["acquisition_campaign_id"] == "K1" and rows["Q"]["clv_basis"] == "model"
    assert (rows["S"]["recency_days"], rows["S"]["age_days"]) == (1.0, 147.0)


def test_a_table_without_a_fit_says_so() -> None:
    est = _estimate()
    est.estimated, est.clv = False, np.zeros(4)
    t = eff.customer_value_table(AS_OF, _con.to_pyarrow(_base()), HAND_COSTS, est, 1)
    assert t["clv_basis"].to_pylist() == ["not_estimated", "not_estimated", "closed",
                                          "not_estimated"]
    with pytest.raises(ValueError, match="same customers"):
        eff.customer_value_table(AS_OF, _con.to_pyarrow(_base()), HAND_COSTS.slice(0, 3), est, 1)


def _rollup(by: str) -> dict[str, tuple]:
    view = ibis.memtable(_value_table())
    return {r["group"]: (r["customers"], r["clv"], r["acquisition_cost"], r["retention_cost"],
                         r["efficiency"], round(r["negative_share"], 6))
            for r in _rows(eff.rollup(view, by))}


def test_rollups_by_hand() -> None:
    d = Decimal
    assert _rollup("channel") == {
        "app": (2, d("100.00"), d("720.02"), d("1145.61"), d("-1765.63"), 1.0),
        "bank": (1, d("1000.01"), d("200.00"), d("320.43"), d("479.58"), 0.0),
        "campaign": (1, d("0.99"), d("600.00"), d("48.66"), d("-647.67"), 1.0)}
    assert {g: v[0] for g, v in _rollup("campaign").items()} == {"(none)": 2, "K1": 1, "K2": 1}
    assert _rollup("campaign")["K1"][2] == d("620.02")
    assert {g: (v[0], v[4]) for g, v in _rollup("advisor").items()} == {
        "(none)": (2, d("-168.09")), "TG1": (2, d("-1765.63"))}
    assert {g: (v[1], v[4], v[5]) for g, v in _rollup("branch").items()} == {
        "YYB1": (d("1100.01"), d("-701.49"), 0.5), "YYB2": (d("0.99"), d("-1232.23"), 1.0)}
    assert {g: v[0] for g, v in _rollup("cohort").items()} == {
        "2020Q2": 2, "2023Q3": 1, "2023Q4": 1}
    whole = _rows(eff.totals(ibis.memtable(_value_table())))[0]
    assert (whole["customers"], whole["clv"], whole["efficiency"], whole["negative_share"]) == (
        4, d("1101.00"), d("-1933.72"), 0.75)
    assert whole["clv_mean"] == pytest.approx(1101.0 / 4)
    with pytest.raises(ValueError, match="unknown roll-up"):
        eff.rollup(ibis.memtable(_value_table()), "province")


def test_distribution() -> None:
    d = eff.distribution([0.0, -1.0, 1.0, 2.0, 3.0])
    assert (d["count"], d["mean"], d["min"], d["p50"], d["max"]) == (5, 1.0, -1.0, 1.0, 3.0)
    assert (d["zero_share"], d["negative_share"]) == (0.2, 0.2)
    assert eff.distribution([]) == {"count": 0}


# --- CLV per customer -----------------------------------------------------------------------------

HISTORY = D(2022, 1, 1)
CLV_AS_OF = D(2023, 12, 31)


def _population(n: int = 600, seed: int = 3) -> tuple[pa.Table, pa.Table]:
    """Customers opened 2020–2023 who transact at a personal Poisson rate until they lapse."""
    rng = np.random.default_rng(seed)
    start, end = np.datetime64(HISTORY), np.datetime64(CLV_AS_OF)
    opened = np.datetime64("2020-01-01") + rng.integers(0, 1400, n).astype("timedelta64[D]")
    rate = rng.gamma(0.8, 0.05, n)  # transaction days per day
    life = rng.exponential(500, n)
    nu = rng.gamma(4.0, 1 / 40, n)  # Gamma-Gamma: each customer's own mean spend, 3 / nu
    ids, days, amounts = [], [], []
    for i in range(n):
        birth = max(opened[i], start)
        stop = min(birth + np.timedelta64(int(life[i]), "D"), end)
        span = int((stop - birth).astype(int))
        k = rng.poisson(rate[i] * max(span, 0))
        for d in np.unique(rng.integers(0, span + 1, k)) if k else []:
            ids.append(f"C{i:04d}")
            days.append(birth + np.timedelta64(int(d), "D"))
            amounts.append(float(rng.gamma(3.0, 1 / nu[i])))
    base = pa.table({"customer_id": [f"C{i:04d}" for i in range(n)],
                     "opened_on": pa.array(opened, pa.date32()),
                     "closed_on": pa.array([None] * n, pa.date32())})
    log = pa.table({"customer_id": ids, "date": pa.array(np.array(days), pa.date32()),
                    "revenue": amounts})
    return base, log


def test_clv_is_the_same_in_days_and_weeks() -> None:
    """The BG/NBD is scale-free in time (α scales with the unit), so the unit is a reading
    choice, not a modelling one: the forecasts must agree."""
    base, log = _population()
    by_day = an.estimate_clv(base, log, ClvConfig(time_unit="day"), CLV_AS_OF, HISTORY)
    by_week = an.estimate_clv(base, log, ClvConfig(time_unit="week"), CLV_AS_OF, HISTORY)
    assert by_day.bgnbd is not None and by_week.bgnbd is not None
    assert by_day.bgnbd.report.converged and by_week.bgnbd.report.converged
    assert by_day.bgnbd.params.alpha == pytest.approx(7 * by_week.bgnbd.params.alpha, rel=1e-4)
    assert by_day.bgnbd.params.r == pytest.approx(by_week.bgnbd.params.r, rel=1e-4)
    np.testing.assert_allclose(by_day.clv, by_week.clv, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(by_day.T, by_week.T * 7)
    assert by_day.estimated and np.all(np.isfinite(by_day.clv)) and by_day.notes == []


def test_a_customers_clock_starts_at_opening_or_the_history() -> None:
    base, log = _population()
    est = an.estimate_clv(base, log, ClvConfig(), CLV_AS_OF, HISTORY)
    assert est.customer_id.tolist() == sorted(base["customer_id"].to_pylist())  # everyone
    opened = dict(zip(base["customer_id"].to_pylist(), base["opened_on"].to_pylist(),
                      strict=True))
    for i, c in enumerate(est.customer_id):
        birth = max(opened[c], HISTORY)
        assert est.T[i] == (CLV_AS_OF - birth).days
    never = est.frequency == 0
    assert never.any() and np.all(est.clv[never] >= 0)
    # a customer who never transacted is worth less than the typical repeat customer, and
    # less the longer he has been silent
    assert np.median(est.clv[never]) < np.median(est.clv[~never])
    order = np.argsort(est.T[never])
    assert never.sum() > 10 and np.all(np.diff(est.clv[never][order]) <= 1e-9)


def test_without_repeat_transactions_clv_is_not_estimated() -> None:
    base = pa.table({"customer_id": ["A", "B"],
                     "opened_on": pa.array([D(2023, 1, 1), D(2023, 2, 1)]),
                     "closed_on": pa.array([None, None], pa.date32())})
    est = an.estimate_clv(base, None, ClvConfig(), CLV_AS_OF, None)
    assert not est.estimated and est.clv.tolist() == [0.0, 0.0]
    assert "no customer has a repeat transaction" in est.notes[0]
    # a log customer who is not in the base is left out
    log = pa.table({"customer_id": ["Z"], "date": pa.array([D(2023, 5, 1)]), "revenue": [5.0]})
    assert an.estimate_clv(base, log, ClvConfig(), CLV_AS_OF, None).customer_id.tolist() == [
        "A", "B"]


# --- configuration -------------------------------------------------------------------------------


def test_the_packaged_default_is_the_documented_default() -> None:
    import caifu.data

    text = (Path(caifu.data.__file__).parent / "value" / "default.yaml").read_text("utf-8")
    assert parse_value_config(yaml.safe_load(text), "default.yaml") == ValueConfig()
    assert ValueConfig().acquisition.channel_costs["branch"] == 480.0


@pytest.mark.parametrize(("document", "expected"), [
    ({"retention": {"annual_servce_cost": 10}}, "retention.annual_servce_cost: Extra inputs"),
    ({"acquisition": {"channel_costs": {"brnach": 1}}},
     "acquisition.channel_costs: 'brnach' is not a customer channel"),
    ({"acquisition": {"channel_costs": {"app": -5}}}, "app: cost must be between 0"),
    ({"acquisition": {"campaign_goals": ["funded", "open"]}}, "unknown goal(s) 'open'"),
    ({"clv": {"time_unit": "month"}}, "clv.time_unit: Input should be 'day' or 'week'"),
    ({"revenue": {"stamp_duty": [{"since": "2023-08-28", "rate": 0.0005},
                                 {"since": "2008-09-19", "rate": 0.001}]}},
     "revenue.stamp_duty: periods must be in increasing order"),
    ({"revenue": {"exchange_fee_rate": 0.5}}, "revenue.exchange_fee_rate: Input should be less"),
    ({"version": 2}, "format version 2 is not supported"),
    (["revenue"], "expected a mapping"),
])
def test_configuration_errors_name_the_file_and_field(document: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_value_config(document, "value/acme.yaml")
    assert str(err.value).startswith("value/acme.yaml: ")
    assert expected in str(err.value)


def test_an_empty_file_is_the_default() -> None:
    assert parse_value_config(None, "value/acme.yaml") == ValueConfig()
    partial = parse_value_config({"clv": {"horizon_months": 24}}, "value/acme.yaml")
    assert partial.clv.horizon_months == 24 and partial.revenue == ValueConfig().revenue


# --- the lifetime and the payback views -----------------------------------------------------------


def test_the_default_is_the_lifetime_view_with_the_payback_view_beside_it() -> None:
    clv_config = ValueConfig().clv
    assert (clv_config.horizon_months, clv_config.payback_months) == (120, 12)
    with pytest.raises(ConfigError, match="payback_months \\(24\\) may not exceed "
                                          "horizon_months \\(12\\)"):
        parse_value_config({"clv": {"horizon_months": 12, "payback_months": 24}}, "v.yaml")


def test_retention_is_a_run_rate_over_the_months_expected_active() -> None:
    """P: 2.5 discounted months active of a 12-month window -> 2.5/12 of each retention
    component; R is closed: no months ahead, no retention ahead; acquisition stays whole."""
    est = _estimate()
    est.active_months = np.array([2.5, 12.0, 30.0, 24.0])
    t = eff.customer_value_table(AS_OF, _con.to_pyarrow(_base()), HAND_COSTS, est, 1,
                                 window_months=12)
    rows = {r["customer_id"]: r for r in t.to_pylist()}
    d = Decimal
    # P's window: touch 1.05, campaign 300, service 360 -> x 2.5/12
    assert (rows["P"]["retention_touch_cost"], rows["P"]["retention_campaign_cost"],
            rows["P"]["retention_service_cost"], rows["P"]["retention_cost"]) == (
        d("0.22"), d("62.50"), d("75.00"), d("137.72"))
    assert rows["P"]["acquisition_cost"] == d("620.02")
    assert rows["P"]["efficiency"] == d("100.00") - d("620.02") - d("137.72")
    assert (rows["R"]["retention_cost"], rows["R"]["efficiency"]) == (d("0.00"), d("-100.00"))
    # S: 24 months of a 12-month window's 48.66 -> twice each component
    assert rows["S"]["retention_cost"] == 2 * d("48.66")
    for r in rows.values():
        assert r["efficiency"] == r["clv"] - r["acquisition_cost"] - r["retention_cost"]
    # the payback view swaps in its own CLV and months
    est.clv_payback, est.active_months_payback = np.full(4, 7.0), np.full(4, 6.0)
    payback = eff.customer_value_table(AS_OF, _con.to_pyarrow(_base()), HAND_COSTS,
                                       est.payback_view(), 1, window_months=12)
    p = {r["customer_id"]: r for r in payback.to_pylist()}["P"]
    assert (p["clv"], p["retention_service_cost"]) == (d("7.00"), d("180.00"))


def test_both_views_come_from_one_fit() -> None:
    base, log = _population()
    est = an.estimate_clv(base, log, ClvConfig(), CLV_AS_OF, HISTORY)
    assert est.clv_payback is not None and est.active_months is not None
    assert est.active_months_payback is not None
    assert np.all(est.clv >= est.clv_payback) and est.clv.sum() > 2 * est.clv_payback.sum()
    # discounted months active: at most the horizon's annuity factor, more over the longer one
    annuity = sum(1.01 ** -m for m in range(1, 121))
    assert np.all(est.active_months <= annuity + 1e-9)
    assert np.all(est.active_months >= est.active_months_payback)
    assert np.all(est.active_months_payback <= sum(1.01 ** -m for m in range(1, 13)) + 1e-9)
    # a customer who is surely active (never transacted again: P(alive) = 1) and young
    young = int(np.argmin(np.where(est.frequency == 0, est.T, np.inf)))
    assert est.active_months_payback[young] > 10
