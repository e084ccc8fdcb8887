"""Lifecycle stages on hand-built customer timelines: every stage, every transition, the
precedence, reactivation, thresholds from configuration — each date worked out by hand.

Rules used here (small numbers keep the arithmetic readable): active 10 days, dormant 30,
declining window 14 days / drop 50 % / recover 25 % / at least 3 active days before, first
loss ≥ 10 yuan lasting 5 days, reactivated 7 days. The facts begin on 2025-01-01 (H).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import ibis
import pyarrow as pa
import pytest

from caifu.adapters.engines.duckdb import connect
from caifu.analytics import lifecycle as lc
from caifu.analytics.lifecycle_flows import flow_matrix, monthly_counts, stages_on
from caifu.analytics.lifecycle_machine import transitions
from caifu.core.errors import ConfigError
from caifu.pipelines.profile import ProfileInputs
from caifu.services.profiles.lifecycle import default_text, parse_text

_con = connect()
MONEY = pa.decimal128(18, 2)
H, AS_OF = dt.date(2025, 1, 1), dt.date(2025, 5, 31)
RULES = lc.LifecycleRules.model_validate({
    "active": {"days": 10}, "dormant": {"days": 30},
    "declining": {"window_days": 14, "drop_pct": 50, "recover_pct": 25, "min_previous_days": 3},
    "first_loss": {"min_amount": 10, "days": 5}, "reactivated": {"days": 7}})


def J(day: int, month: int = 1) -> dt.date:  # noqa: N802 — a date in 2025, read like "Jan 5"
    return dt.date(2025, month, day)


# customer, opened_on, closed_on, status, account status
CUSTOMERS = [
    ("NEW", J(10), None, "normal", "normal"),          # never funds
    ("FUND", J(5), J(10, 5), "closed", "closed"),      # the long road, closed on May 10
    ("DROP", J(2), None, "normal", "normal"),          # trades a lot, then much less
    ("REC", J(2), None, "normal", "normal"),           # trades a lot, then steadily less
    ("OLD", dt.date(2024, 6, 1), None, "normal", "normal"),  # opened before the facts
    ("GONE", J(3), None, "normal", "transferred_out"),  # account transferred out, no date
    ("FUNDS", J(3), None, "normal", "normal"),         # buys funds, never trades
    ("BACK", J(2), None, "normal", "normal"),          # lapses, then trades again
    ("LATER", J(1, 6), None, "normal", "normal"),      # opens after the as-of date
]
# customer, day, side, quantity, price
TRADES = [
    ("FUND", J(20), "B", 100, "10.00"), ("FUND", J(22), "S", 100, "9.00"),  # loss 100
    ("FUND", J(1, 3), "B", 100, "10.00"), ("FUND", J(2, 4), "S", 100, "10.00"),
    *(("DROP", J(d), "B" if d % 2 else "S", 100, "10.00") for d in range(3, 17)),
    ("DROP", J(20), "B", 100, "10.00"), ("DROP", J(25), "B", 100, "10.00"),
    ("DROP", J(30), "S", 100, "8.00"),  # first loss (200) while declining
    *(("REC", J(d), "B", 100, "10.00") for d in range(3, 17)),
    *(("REC", J(1) + dt.timedelta(days=d), "B", 100, "10.00") for d in range(19, 150, 4)),
    ("OLD", J(25), "B", 100, "10.00"), ("OLD", J(26), "S", 100, "8.00"),  # not judged
    ("GONE", J(4), "B", 100, "10.00"),
    ("BACK", J(3), "B", 100, "10.00"), ("BACK", J(4), "B", 100, "10.00"),
    ("BACK", J(20), "B", 100, "10.00"),
]
# customer, day, direction, amount, method
FLOWS = [
    ("OLD", J(1), "in", "500.00", "bank_transfer"),  # the first fact: H
    ("FUND", J(7), "in", "1000.00", "bank_transfer"),
    ("FUND", J(20, 3), "out", "900.00", "transfer_out"),
    ("DROP", J(2), "in", "5000.00", "bank_transfer"),
    ("REC", J(2), "in", "5000.00", "bank_transfer"),
    ("GONE", J(3), "in", "2000.00", "bank_transfer"),
    ("GONE", J(10, 2), "out", "2000.00", "transfer_out"),
    ("NEW", J(15), "in", "3.00", "dividend"),  # a dividend is not funding
]
FUND_TXNS = [("FUNDS", J(5), "purchase")]


def _inputs() -> ProfileInputs:
    def table(data: dict) -> ibis.Table:
        return ibis.memtable(pa.table(data))

    customers = table({
        "customer_id": [c[0] for c in CUSTOMERS],
        "opened_on": pa.array([c[1] for c in CUSTOMERS], pa.date32()),
        "closed_on": pa.array([c[2] for c in CUSTOMERS], pa.date32()),
        "status": [c[3] for c in CUSTOMERS]})
    accounts = table({"fund_account": [f"A{c[0]}" for c in CUSTOMERS],
                      "customer_id": [c[0] for c in CUSTOMERS],
                      "status": [c[4] for c in CUSTOMERS]})
    trades = table({
        "trade_id": [f"T{i:03d}" for i in range(len(TRADES))],
        "customer_id": [t[0] for t in TRADES],
        "trade_date": pa.array([t[1] for t in TRADES], pa.date32()),
        "trade_time": pa.array([dt.datetime.combine(t[1], dt.time(2)) for t in TRADES],
                               pa.timestamp("us")),
        "security_code": ["600000"] * len(TRADES), "side": [t[2] for t in TRADES],
        "quantity": pa.array([t[3] for t in TRADES], pa.int64()),
        "amount": pa.array([Decimal(t[4]) * t[3] for t in TRADES], MONEY)})
    flows = table({
        "flow_id": [f"F{i}" for i in range(len(FLOWS))], "customer_id": [f[0] for f in FLOWS],
        # 23:00 UTC is 07:00 the next morning in Shanghai: the local date is the day after
        "flow_time": pa.array([dt.datetime.combine(f[1] - dt.timedelta(days=1), dt.time(23))
                               for f in FLOWS], pa.timestamp("us")),
        "direction": [f[2] for f in FLOWS],
        "amount": pa.array([Decimal(f[3]) for f in FLOWS], MONEY),
        "method": [f[4] for f in FLOWS]})
    funds = table({"txn_id": ["J1"], "customer_id": [f[0] for f in FUND_TXNS],
                   "txn_date": pa.array([f[1] for f in FUND_TXNS], pa.date32()),
                   "txn_type": [f[2] for f in FUND_TXNS]})
    empty = table({"x": pa.array([], pa.int64())})
    return ProfileInputs(customers=customers, accounts=accounts, securities=empty,
                         fund_products=empty, suitability_assessments=empty,
                         wecom_follows=empty, trades=trades, cash_flows=flows,
                         fund_transactions=funds)


def _run(rules: lc.LifecycleRules = RULES, as_of: dt.date = AS_OF) -> pa.Table:
    inputs = _inputs()
    customers = _con.to_pyarrow(lc.customer_status(inputs, as_of, 8))
    daily = _con.to_pyarrow(lc.daily_activity(inputs, as_of, 8))
    losses = _con.to_pyarrow(lc.first_losses(inputs.trades, as_of, rules.first_loss.min_amount))
    return transitions(customers, daily, losses, rules, H, as_of)


@pytest.fixture(scope="module")
def history() -> pa.Table:
    return _run()


def _of(history: pa.Table, cid: str) -> list[tuple[dt.date, str | None, str, str]]:
    return [(r["date"], r["from_stage"], r["to_stage"], r["trigger"])
            for r in history.to_pylist() if r["customer_id"] == cid]


def _values(history: pa.Table, cid: str, trigger: str) -> dict:
    rows = [r for r in history.to_pylist() if r["customer_id"] == cid and r["trigger"] == trigger]
    assert len(rows) == 1
    return json.loads(rows[0]["values_json"])


def test_never_funded_customer_goes_dormant_after_the_threshold(history: pa.Table) -> None:
    # opened Jan 10, a dividend is not a deposit, nothing done for 30 days → dormant Feb 9
    assert _of(history, "NEW") == [
        (J(10), None, "opened_not_funded", "account_opened"),
        (J(9, 2), "opened_not_funded", "dormant", "no_activity")]
    assert _values(history, "NEW", "no_activity") == {
        "days_without_activity": 30, "last_activity_date": None}


def test_the_long_road_dates_every_transition_on_its_trigger_day(history: pa.Table) -> None:
    assert _of(history, "FUND") == [
        (J(5), None, "opened_not_funded", "account_opened"),
        (J(7), "opened_not_funded", "funded_not_traded", "first_deposit"),
        (J(20), "funded_not_traded", "active", "first_trade"),
        (J(22), "active", "first_loss", "first_realised_loss"),  # outranks active
        (J(27), "first_loss", "active", "first_loss_period_over"),  # 5 days later
        (J(1, 2), "active", "declining", "no_recent_trade"),  # 10 days after Jan 22
        (J(21, 2), "declining", "dormant", "no_activity"),  # 30 days after Jan 22
        (J(1, 3), "dormant", "reactivated", "returned_after_dormancy"),
        (J(8, 3), "reactivated", "active", "reactivation_period_over"),  # 7 days later
        (J(11, 3), "active", "declining", "no_recent_trade"),  # 10 days after Mar 1
        (J(20, 3), "declining", "churned", "assets_transferred_out"),
        (J(2, 4), "churned", "reactivated", "returned_after_churn"),  # the account survived
        (J(9, 4), "reactivated", "active", "reactivation_period_over"),
        (J(12, 4), "active", "declining", "no_recent_trade"),
        (J(2, 5), "declining", "dormant", "no_activity"),  # 30 days after Apr 2
        (J(10, 5), "dormant", "churned", "account_closed"),  # churned outranks dormant
    ]


def test_trigger_values_and_text(history: pa.Table) -> None:
    assert _values(history, "FUND", "first_deposit") == {"deposit_date": "2025-01-07",
                                                         "deposit_amount": 1000.0}
    assert _values(history, "FUND", "first_realised_loss") == {
        "loss_date": "2025-01-22", "security_code": "600000", "sell_price": 9.0,
        "average_cost": 10.0, "loss_amount": 100.0}
    assert _values(history, "FUND", "returned_after_dormancy") == {
        "days_inactive": 38, "activity_date": "2025-03-01", "activity": "交易"}
    assert _values(history, "FUND", "assets_transferred_out") == {
        "transfer_date": "2025-03-20", "transfer_amount": 900.0}
    assert _values(history, "FUND", "account_closed") == {"closed_on": "2025-05-10",
                                                          "date_inferred": False}
    text = {r["trigger"]: r["trigger_text"] for r in history.to_pylist()
            if r["customer_id"] == "FUND"}
    assert text["first_deposit"] == "2025-01-07 首次入金 1,000.00 元"
    assert text["no_activity"] == "连续 30 天无交易、无基金申购（最近一次 2025-04-02）"
    assert "卖出 600000 首次实现亏损 100.00 元" in text["first_realised_loss"]


def test_activity_drop_outranks_a_first_loss_and_is_dated_by_the_windows(
        history: pa.Table) -> None:
    # active days Jan 3–16, 20, 25, 30. On Jan 27 the last 14 days (Jan 14–27) hold 5 and the
    # 14 before (Dec 31–Jan 13) hold 11: a 55 % fall; on Jan 26 it was 6 against 10 (40 %).
    assert _of(history, "DROP") == [
        (J(2), None, "opened_not_funded", "account_opened"),
        (J(2), "opened_not_funded", "funded_not_traded", "first_deposit"),
        (J(3), "funded_not_traded", "active", "first_trade"),
        (J(27), "active", "declining", "activity_drop"),
        (J(1, 3), "declining", "dormant", "no_activity")]  # the Jan 30 loss stays hidden
    assert _values(history, "DROP", "activity_drop") == {
        "window_days": 14, "last_window_days": 5, "previous_window_days": 11, "drop_pct": 55}


def _windows(active: set[dt.date], day: dt.date, w: int = 14) -> tuple[int, int]:
    last = sum(day - dt.timedelta(days=k) in active for k in range(w))
    prev = sum(day - dt.timedelta(days=k) in active for k in range(w, 2 * w))
    return last, prev


def test_declining_ends_when_the_fall_is_back_inside_the_recover_band(
        history: pa.Table) -> None:
    """REC keeps trading every fourth day after a busy fortnight: it declines, then recovers
    on the first day the fall is under 25 %, counted here independently of the machine."""
    active = {t[1] for t in TRADES if t[0] == "REC"}
    rows = _of(history, "REC")
    down = [r for r in rows if r[2] == "declining"]
    up = [r for r in rows if r[1] == "declining" and r[2] == "active"]
    assert down and up and down[0][3] == "activity_drop"
    day = up[0][0]
    assert up[0][3] == ("trading_resumed" if day in active else "activity_recovered")
    last, prev = _windows(active, day)
    assert 100 * last >= 75 * prev
    last, prev = _windows(active, day - dt.timedelta(days=1))
    assert 100 * last < 75 * prev


def test_a_customer_opened_before_the_facts_is_tracked_after_a_look_back(
        history: pa.Table) -> None:
    # H + dormant.days − 1 = Jan 30; traded Jan 25 → active; the Jan 26 loss is not judged
    # (the first loss of a customer older than the data happened before it)
    assert _of(history, "OLD") == [
        (J(30), None, "active", "tracking_start"),
        (J(5, 2), "active", "declining", "no_recent_trade"),
        (J(25, 2), "declining", "dormant", "no_activity")]
    assert _values(history, "OLD", "tracking_start") == {
        "history_start": "2025-01-01", "tracking_start": "2025-01-30", "opened_on": "2024-06-01"}


def test_an_account_gone_without_a_date_churns_on_its_last_fact(history: pa.Table) -> None:
    assert _of(history, "GONE")[-2:] == [
        (J(3, 2), "declining", "dormant", "no_activity"),
        (J(10, 2), "dormant", "churned", "account_transferred_out")]
    assert _values(history, "GONE", "account_transferred_out") == {
        "closed_on": "2025-02-10", "date_inferred": True}


def test_a_lapsed_customer_who_trades_again_is_active_again(history: pa.Table) -> None:
    # two active days are below min_previous_days, so the Jan 20 trade is no "fall"
    assert _of(history, "BACK")[1:] == [
        (J(3), "opened_not_funded", "active", "first_trade"),  # no deposit seen: straight in
        (J(14), "active", "declining", "no_recent_trade"),
        (J(20), "declining", "active", "trading_resumed"),
        (J(30), "active", "declining", "no_recent_trade"),
        (J(19, 2), "declining", "dormant", "no_activity")]


def test_fund_buyer_who_never_trades_is_funded_but_never_active(history: pa.Table) -> None:
    assert _of(history, "FUNDS") == [
        (J(3), None, "opened_not_funded", "account_opened"),
        (J(5), "opened_not_funded", "funded_not_traded", "first_fund_purchase"),
        (J(4, 2), "funded_not_traded", "dormant", "no_activity")]


def test_every_customer_opened_by_the_date_has_exactly_one_stage(history: pa.Table) -> None:
    now = stages_on(history, AS_OF)
    assert sorted(now["customer_id"].to_pylist()) == sorted(c[0] for c in CUSTOMERS[:-1])
    got = dict(zip(now["customer_id"].to_pylist(), now["stage"].to_pylist(), strict=True))
    assert {k: got[k] for k in ("NEW", "FUND", "DROP", "OLD", "GONE", "FUNDS")} == {
        "NEW": "dormant", "FUND": "churned", "DROP": "dormant", "OLD": "dormant",
        "GONE": "churned", "FUNDS": "dormant"}
    fund = now.filter(pa.compute.equal(now["customer_id"], "FUND")).to_pylist()[0]
    assert (fund["since"], fund["days_in_stage"]) == (J(10, 5), 21)


@pytest.mark.parametrize("as_of", [J(5, 2), J(15, 3)])
def test_no_look_ahead_an_earlier_as_of_gives_the_same_history_up_to_it(
        history: pa.Table, as_of: dt.date) -> None:
    early = _run(as_of=as_of)
    cut = history.filter(pa.compute.less_equal(history["date"], as_of))
    assert early.to_pylist() == cut.to_pylist()  # GONE included: see the test below


def test_an_undated_closure_after_the_as_of_date_is_not_known_on_it() -> None:
    # GONE's accounts are transferred out in today's master data, undated; its last fact is
    # the Feb 10 transfer-out. On Feb 5 it had not left: its last fact up to then (the Jan 4
    # trade) would have churned it on Jan 4 with information from after Feb 5.
    early = _run(as_of=J(5, 2))
    assert _of(early, "GONE")[-1] == (J(3, 2), "declining", "dormant", "no_activity")
    now = {r["customer_id"]: r["stage"] for r in stages_on(early, J(5, 2)).to_pylist()}
    assert now["GONE"] == "dormant"
    later = _run(as_of=J(10, 2))  # on its closing day it is known, and dated by that fact
    assert _of(later, "GONE")[-1] == (J(10, 2), "dormant", "churned", "account_transferred_out")


def test_thresholds_come_from_the_rules() -> None:
    rules = RULES.model_copy(update={"dormant": lc.DormantRules(days=45)})
    rows = _of(_run(rules), "NEW")
    assert rows[-1] == (J(24, 2), "opened_not_funded", "dormant", "no_activity")  # Jan 10 + 45
    strict = RULES.model_copy(update={"first_loss": lc.FirstLossRules(min_amount=150, days=5)})
    assert "first_realised_loss" not in [r[3] for r in _of(_run(strict), "FUND")]  # 100 < 150


def test_monthly_counts_and_the_flow_matrix(history: pa.Table) -> None:
    counts = monthly_counts(history, H, AS_OF)
    assert counts.column_names == ["month_end", "stage", "customers"]
    assert sorted(set(counts["month_end"].to_pylist())) == [
        J(31), J(28, 2), J(31, 3), J(30, 4), J(31, 5)]
    for end in (J(31), J(30, 4)):
        rows = [r for r in counts.to_pylist() if r["month_end"] == end]
        expect = stages_on(history, end)["stage"].to_pylist()
        assert {r["stage"]: r["customers"] for r in rows if r["customers"]} == {
            s: expect.count(s) for s in set(expect)}
    jan = {r["stage"]: r["customers"] for r in counts.to_pylist() if r["month_end"] == J(31)}
    assert (jan["opened_not_funded"], jan["funded_not_traded"]) == (1, 1)  # NEW, FUNDS
    flows = {(r["from_stage"], r["to_stage"]): r["customers"]
             for r in flow_matrix(history, J(31), J(28, 2)).to_pylist()}
    assert flows[("opened_not_funded", "dormant")] == 1  # NEW
    assert flows[("active", "dormant")] == 2  # FUND, OLD
    assert flows[("declining", "churned")] == 1  # GONE (dormant Feb 3, churned Feb 10)
    assert flows[("funded_not_traded", "dormant")] == 1  # FUNDS
    assert flows[("declining", "dormant")] == 1  # BACK
    assert sum(flows.values()) == 8
    start = flow_matrix(history, J(1), J(31))
    assert set(start["from_stage"].to_pylist()) == {"new"}


def test_packaged_default_is_the_model_default() -> None:
    assert parse_text(default_text(), "default.yaml") == lc.LifecycleRules()


@pytest.mark.parametrize(("text", "message"), [
    ("active: {days: 200}\n", "dormant.days (180) must exceed active.days (200)"),
    ("declining: {drop_pct: 30, recover_pct: 40}\n", "declining.recover_pct (40.0) must be"),
    ("dormant: {dayz: 3}\n", "dormant.dayz: Extra inputs are not permitted"),
    ("active: {days: many}\n", "active.days: Input should be a valid integer"),
    ("first_loss: {min_amount: -5}\n", "first_loss.min_amount: Input should be greater than"),
    ("active: [\n", "not valid YAML"),
    ("version: 2\n", "version: format version 2 is not supported"),
    ("- active\n", "expected a mapping"),
])
def test_bad_configuration_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_text(text, "lifecycle/acme.yaml")
    assert str(err.value).startswith("lifecycle/acme.yaml: ")
    assert message in str(err.value)
