"""Fund-redemption analysis on hand-built ledgers: every expected number worked out by hand."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import ibis
import pyarrow as pa
import pytest

from caifu.adapters.engines.duckdb import connect
from caifu.analytics import reassurance as rs
from caifu.analytics import redemption as an
from caifu.analytics import redemption_effects as effects
from caifu.pipelines import fund_ledger as ledger

_con = connect()
MONEY = pa.decimal128(18, 2)
D = date

# customer, fund, date, type, amount, shares, nav
LEDGER = [
    ("C1", "F1", D(2025, 1, 1), "purchase", "1000.00", "1000.00", "1.0000"),  # lot A
    ("C1", "F1", D(2025, 2, 1), "purchase", "1200.00", "1000.00", "1.2000"),  # lot B
    ("C1", "F1", D(2025, 3, 1), "redeem", "1350.00", "1500.00", "0.9000"),  # all A, half B
    ("C2", "F1", D(2025, 1, 10), "purchase", "550.00", "500.00", "1.1000"),
    ("C2", "F1", D(2025, 3, 5), "redeem", "160.00", "200.00", "0.8000"),
    ("C2", "F2", D(2025, 2, 20), "purchase", "400.00", "400.00", "1.0000"),
    ("C2", "F2", D(2025, 2, 28), "dividend", "4.00", "4.00", "1.0000"),
    ("C3", "F2", D(2025, 3, 2), "redeem", "100.00", "100.00", "1.0000"),  # held before history
    ("C3", "F2", D(2025, 3, 10), "purchase", "300.00", "300.00", "1.0000"),
]
MARCH = an.Period(D(2025, 3, 1), D(2025, 3, 31))


def _ledger(rows: list[tuple[str, ...]] = LEDGER) -> ibis.Table:
    data = pa.table({
        "txn_id": [f"T{i:02d}" for i in range(len(rows))],
        "customer_id": [r[0] for r in rows], "fund_code": [r[1] for r in rows],
        "txn_date": pa.array([r[2] for r in rows], pa.date32()),
        "txn_type": [r[3] for r in rows],
        "amount": pa.array([Decimal(r[4]) for r in rows], MONEY),
        "shares": pa.array([Decimal(r[5]) for r in rows], MONEY),
        "nav": pa.array([Decimal(r[6]) for r in rows], pa.decimal128(10, 4)),
        "fee": pa.array([Decimal("0.00")] * len(rows), MONEY)})
    return ibis.memtable(data)


def _funds() -> ibis.Table:
    return ibis.memtable(pa.table({
        "fund_code": ["F1", "F2"], "name": ["权益一号", "债券二号"],
        "fund_type": ["equity", "bond"], "risk_level": ["R4", "R2"],
        "manager_company": ["甲基金", "乙基金"],
        "mgmt_fee_rate": pa.array([Decimal("0.015"), Decimal("0.003")], pa.decimal128(8, 6)),
        "purchase_fee_rate": pa.array([Decimal("0.015"), Decimal("0.008")], pa.decimal128(8, 6)),
        "redeem_fee_rate": pa.array([Decimal("0.005"), Decimal("0.001")], pa.decimal128(8, 6))}))


def _rows(expr: ibis.Table) -> list[dict]:
    return _con.to_pyarrow(expr).to_pylist()


def test_period_rejects_an_end_before_its_start() -> None:
    with pytest.raises(ValueError, match="after it ends"):
        an.Period(D(2025, 3, 2), D(2025, 3, 1))
    assert MARCH.days == 31


def test_funds_ranked_by_redeemed_amount_with_share_ratio() -> None:
    rows = {r["fund_code"]: r for r in _rows(an.fund_redemptions(_ledger(), _funds(), MARCH))}
    assert list(rows) == ["F1", "F2"]  # 1510.00 before 100.00
    f1, f2 = rows["F1"], rows["F2"]
    assert f1["redeemed_amount"] == Decimal("1510.00")
    # F1 at the start: C1 2000 + C2 500 shares, nothing added; 1500 + 200 redeemed
    assert (f1["shares_at_start"], f1["redeemed_shares"]) == (Decimal(2500), Decimal(1700))
    assert f1["redemption_ratio"] == pytest.approx(1700 / 2500)
    assert (f1["holders_at_start"], f1["redemptions"], f1["redeemers"]) == (2, 2, 2)
    # F2: C3's opening balance (100, bought before the history) + C2's 400 + 4 reinvested;
    # C3 buys 300 in March
    assert (f2["shares_at_start"], f2["shares_added"]) == (Decimal(504), Decimal(300))
    assert f2["redemption_ratio"] == pytest.approx(100 / 804)
    assert (f2["name"], f2["fund_type"]) == ("债券二号", "bond")


def test_fifo_consumes_the_oldest_lot_first() -> None:
    m = _rows(ledger.fifo_matches(_ledger(), D(2025, 3, 31)).order_by(
        ["redeem_date", "lot_date"]))
    got = [(r["customer_id"], r["lot_type"], r["lot_date"], r["matched_shares"],
            r["holding_days"]) for r in m]
    assert got == [
        ("C1", "purchase", D(2025, 1, 1), Decimal(1000), 59),  # Jan 1 → Mar 1
        ("C1", "purchase", D(2025, 2, 1), Decimal(500), 28),  # Feb 1 → Mar 1
        ("C3", "opening", None, Decimal(100), None),  # held since before the history
        ("C2", "purchase", D(2025, 1, 10), Decimal(200), 54),  # Jan 10 → Mar 5
    ]


def test_holding_period_per_redemption_and_quartiles() -> None:
    per = _rows(an.redemption_holding_periods(_ledger(), _funds(), MARCH))
    days = {r["customer_id"]: r["holding_days"] for r in per}
    assert days["C1"] == pytest.approx((1000 * 59 + 500 * 28) / 1500)  # 48.667, share-weighted
    assert days["C2"] == 54 and days["C3"] is None
    assert {r["customer_id"]: r["prehistory_shares"] for r in per}["C3"] == Decimal(100)
    summary = {r["fund_type"]: r for r in an.holding_period_summary(
        _con.to_pyarrow(an.redemption_holding_periods(_ledger(), _funds(), MARCH))).to_pylist()}
    everything = summary["all"]
    assert (everything["redemptions"], everything["unknown_age"]) == (3, 1)
    lo, hi = 146 / 3, 54.0  # linear interpolation between the two known values
    assert everything["median"] == pytest.approx((lo + hi) / 2)
    assert everything["p25"] == pytest.approx(lo + 0.25 * (hi - lo))
    assert everything["p75"] == pytest.approx(lo + 0.75 * (hi - lo))
    assert summary["bond"]["median"] is None and summary["bond"]["unknown_age"] == 1


def test_nav_series_and_drawdown() -> None:
    navs = ledger.nav_series(_ledger())
    dd = {r["fund_code"]: r for r in _rows(ledger.nav_drawdowns(navs, D(2025, 3, 31),
                                                            D(2025, 3, 31), 60))}
    # F1 in Jan 30 … Mar 31: 1.2 (Feb 1), 0.9 (Mar 1), 0.8 (Mar 5)
    assert dd["F1"]["peak_nav"] == Decimal("1.2") and dd["F1"]["last_nav"] == Decimal("0.8")
    assert dd["F1"]["max_drawdown"] == pytest.approx(1 - 0.8 / 1.2)
    assert dd["F1"]["current_drawdown"] == pytest.approx(1 - 0.8 / 1.2)
    assert dd["F2"]["max_drawdown"] == 0
    # a rise after the trough: max stays, current shrinks
    rebound = ibis.memtable({"fund_code": ["F"] * 4, "nav_date": [D(2025, 1, d) for d in
                                                                  (1, 2, 3, 4)],
                             "nav": [1.0, 2.0, 1.0, 1.5]})
    r = _rows(ledger.nav_drawdowns(rebound, D(2025, 1, 1), D(2025, 1, 4)))[0]
    assert (r["max_drawdown"], r["current_drawdown"]) == (pytest.approx(0.5),
                                                          pytest.approx(0.25))
    assert not any(r["conflicting"] for r in _rows(navs))


def test_open_lots_carry_the_remaining_paid_in_cost() -> None:
    lots = {(r["customer_id"], r["fund_code"], r["lot_type"]): r
            for r in _rows(ledger.open_lots(_ledger(), D(2025, 3, 31)))}
    assert lots[("C1", "F1", "purchase")]["remaining"] == Decimal(500)
    assert lots[("C1", "F1", "purchase")]["cost"] == Decimal(600)  # 1200 × 500/1000
    assert lots[("C2", "F1", "purchase")]["cost"] == Decimal(330)  # 550 × 300/500
    assert lots[("C2", "F2", "dividend")]["cost"] == 0  # reinvested income is not paid in
    pos = {(r["customer_id"], r["fund_code"]): r for r in _rows(ledger.holder_positions(
        _ledger(), _funds(), ibis.memtable({"customer_id": ["C1"], "advisor_id": ["A1"]}),
        D(2025, 3, 31)))}
    assert pos[("C1", "F1")]["value"] == Decimal("400.00")  # 500 × 0.8
    assert pos[("C1", "F1")]["held_days"] == 58  # Feb 1 → Mar 31
    assert pos[("C1", "F1")]["advisor_id"] == "A1" and pos[("C2", "F1")]["advisor_id"] is None
    assert pos[("C3", "F2")]["shares"] == Decimal(300)  # the opening 100 went in March


def test_exposed_holdings_flag_redemptions_and_position_features() -> None:
    rows = {(r["customer_id"], r["fund_code"]): r
            for r in _rows(effects.exposed_holdings(_ledger(), _funds(), MARCH))}
    assert set(rows) == {("C1", "F1"), ("C2", "F1"), ("C2", "F2"), ("C3", "F2")}
    assert [k for k, r in sorted(rows.items()) if r["redeemed"]] == [
        ("C1", "F1"), ("C2", "F1"), ("C3", "F2")]
    c1 = rows[("C1", "F1")]
    # Feb 28: 2000 shares at 1.2 (Feb 1 NAV) against 2200 paid
    assert c1["value_at_start"] == pytest.approx(2400.0)
    assert c1["return_at_start"] == pytest.approx(2400 / 2200 - 1)
    assert c1["held_days_at_start"] == pytest.approx((1000 * 58 + 1000 * 27) / 2000)
    assert c1["nav_max_drawdown"] == pytest.approx(1 - 0.8 / 1.2)
    assert c1["mgmt_fee_rate"] == pytest.approx(0.015)


# holdings partly or wholly older than the history, redeemed in March
PREHISTORY = [
    ("C4", "F1", D(2025, 1, 15), "purchase", "500.00", "500.00", "1.0000"),
    ("C5", "F1", D(2025, 2, 1), "purchase", "1200.00", "1000.00", "1.2000"),  # never redeems
    ("C4", "F1", D(2025, 3, 3), "redeem", "720.00", "800.00", "0.9000"),  # 300 beyond Jan 15
    ("C7", "F1", D(2025, 1, 5), "purchase", "100.00", "100.00", "1.0000"),
    ("C7", "F1", D(2025, 2, 10), "redeem", "120.00", "100.00", "1.2000"),
    ("C7", "F1", D(2025, 3, 10), "redeem", "45.00", "50.00", "0.9000"),  # 50 beyond Jan 5
]


def test_holdings_older_than_the_history_keep_their_value_at_the_start() -> None:
    rows = {(r["customer_id"], r["fund_code"]): r
            for r in _rows(effects.exposed_holdings(_ledger(PREHISTORY), _funds(), MARCH))}
    # C4 on Feb 28: the Jan 15 lot (500) and 300 shares held since before the history — known
    # only from the March redemption; 800 × 1.2. Their cost and age are unknown, so the
    # return and age are too (not the Jan 15 lot's 20% and 44 days).
    c4 = rows[("C4", "F1")]
    assert (c4["redeemed"], c4["value_at_start"]) == (True, pytest.approx(960.0))
    assert c4["prehistory_shares_at_start"] == Decimal(300)
    assert c4["return_at_start"] is None and c4["held_days_at_start"] is None
    # C7: the March redemption reveals 50 shares held before the history, which the Feb 10
    # redemption consumed first (FIFO), so 50 of the Jan 5 lot were still held on Feb 28:
    # 50 × 1.2 against 50 paid, bought 54 days before
    c7 = rows[("C7", "F1")]
    assert c7["value_at_start"] == pytest.approx(60.0)
    assert c7["return_at_start"] == pytest.approx(0.2)
    assert (c7["held_days_at_start"], c7["prehistory_shares_at_start"]) == (54, 0)
    c5 = rows[("C5", "F1")]
    assert (c5["value_at_start"], c5["return_at_start"], c5["held_days_at_start"]) == (
        pytest.approx(1200.0), pytest.approx(0.0), 27)
    # every holding is in the value comparison; the unknown age leaves C4 out of that one
    numeric = {r["feature"]: r for r in effects.compare_redeemed(_con.to_pyarrow(
        effects.exposed_holdings(_ledger(PREHISTORY), _funds(), MARCH))).to_pylist()
        if r["kind"] == "numeric"}
    assert (numeric["value_at_start"]["n"], numeric["value_at_start"]["redeemed"]) == (3, 2)
    assert (numeric["held_days_at_start"]["n"], numeric["held_days_at_start"]["redeemed"]) == (
        2, 1)


def test_a_holding_known_only_from_its_redemption_has_a_value_at_the_start() -> None:
    # C3 redeemed 100 shares of F2 on Mar 2, its only earlier trace: 100 × 1.0 (Feb 28 NAV)
    c3 = {(r["customer_id"], r["fund_code"]): r
          for r in _rows(effects.exposed_holdings(_ledger(), _funds(), MARCH))}[("C3", "F2")]
    assert (c3["redeemed"], c3["value_at_start"]) == (True, pytest.approx(100.0))
    assert c3["prehistory_shares_at_start"] == Decimal(100)
    assert c3["return_at_start"] is None and c3["held_days_at_start"] is None


def test_categorical_effect_risk_ratio_and_cramers_v() -> None:
    levels = ["a"] * 4 + ["b"] * 6
    redeemed = pa.array([True, True, True, False, True] + [False] * 5).to_numpy(
        zero_copy_only=False)
    rows, v, p = effects.categorical_effect(levels, redeemed)
    a, b = rows
    assert (a["n"], a["redeemed"], a["rate"]) == (4, 3, 0.75)
    assert a["risk_ratio"] == pytest.approx(0.75 / (1 / 6))  # 4.5
    assert b["risk_ratio"] == pytest.approx((1 / 6) / 0.75)
    assert v == pytest.approx(14 / 24)  # phi = (3·5 − 1·1) / √(4·6·4·6)
    assert 0 < p < 1
    _, v_one, _ = effects.categorical_effect(["a"] * 3, redeemed[:3])
    assert v_one is None


def test_the_effect_needs_only_the_counts_per_level() -> None:
    """What the value views compute from governed counts equals the effect over the rows."""
    levels = ["a"] * 4 + ["b"] * 6 + [None] * 5
    redeemed = pa.array([True, True, True, False, True] + [False] * 5
                        + [True, False, False, True, False]).to_numpy(zero_copy_only=False)
    rows, v, p = effects.categorical_effect(levels, redeemed)
    counted = effects.effect_of_counts([("(空)", 5, 2), ("a", 4, 3), ("b", 6, 1)])
    assert counted == (rows, v, p) and v is not None and 0 < v < 1
    assert [r["level"] for r in rows] == ["(空)", "a", "b"]
    assert rows[1]["risk_ratio"] == pytest.approx(0.75 / (3 / 11))


def test_rank_biserial_counts_pairs() -> None:
    r, p = effects.rank_biserial(pa.array([3.0, 5, 7]).to_numpy(), pa.array([1.0, 2, 4, 6]).to_numpy())
    assert r == pytest.approx(2 * 9 / 12 - 1)  # 9 of 12 pairs favour the redeemed
    assert 0 < p <= 1
    assert effects.rank_biserial(pa.array([1.0]).to_numpy(), pa.array([], pa.float64()).to_numpy()
                            ) == (None, None)


def test_compare_redeemed_rows() -> None:
    t = pa.table({"redeemed": [True, True, True, False, True, False, False, False, False, False],
                  "fund_type": ["a"] * 4 + ["b"] * 6,
                  "value_at_start": [3.0, 5, 7, 1, None, 2, 4, 6, None, None]})
    out = effects.compare_redeemed(t, categorical=["fund_type"], numeric=["value_at_start"])
    rows = out.to_pylist()
    assert [(r["feature"], r["level"]) for r in rows] == [
        ("fund_type", "a"), ("fund_type", "b"), ("value_at_start", None)]
    num = rows[2]
    assert (num["n"], num["redeemed"]) == (7, 3)
    assert num["effect"] == pytest.approx(0.5) and num["effect_size"] == "rank_biserial"
    assert (num["median_redeemed"], num["median_rest"]) == (5.0, 3.0)


def _daily(counts: list[int], start: date) -> pa.Table:
    days = [date.fromordinal(start.toordinal() + i) for i in range(len(counts))]
    return pa.table({"txn_date": pa.array(days, pa.date32()), "redemptions": counts})


def test_redemption_wave_found_against_the_median_window() -> None:
    start = D(2025, 1, 1)
    counts = [1] * 60
    counts[30:33] = [10, 10, 10]
    end = date.fromordinal(start.toordinal() + 59)
    waves = rs.redemption_waves(_daily(counts, start), start, end).to_pylist()
    # full 10-day windows: 10 (39 of them), 19, 28, 37 (8) → median 10, threshold 30:
    # windows ending on days 32–39 are high, so the wave is days 23 … 39
    assert waves == [{"wave_start": D(2025, 1, 24), "wave_end": D(2025, 2, 9),
                      "redemptions": 44, "peak_window": 37, "baseline": 10.0}]
    assert rs.redemption_waves(_daily(counts, start), start, end, factor=4.0).num_rows == 0
    steady = rs.redemption_waves(_daily([1] * 60, start), start, end, minimum=0)
    assert steady.num_rows == 0  # every window at the baseline: a steady flow is no wave


def _positions() -> pa.Table:
    return pa.table({
        "customer_id": ["C1", "C2", "C3"], "fund_code": ["F1", "F2", "F2"],
        "name": ["权益一号", "债券二号", "债券二号"], "advisor_id": ["A1", "A2", None],
        "value": pa.array([Decimal("400.00"), Decimal("404.00"), Decimal("300.00")], MONEY),
        "cost": pa.array([Decimal("600.00"), Decimal("400.00"), Decimal("300.00")], MONEY),
        "drawdown": [1 - 0.8 / 1.2, 0.0, None]})


def _reassure(rules: rs.ReassuranceRules | None = None, current_from: date | None = None
              ) -> list[dict]:
    redemptions = pa.table({"customer_id": ["C2", "C3", "C9"], "fund_code": ["F1", "F2", "F1"],
                            "txn_date": pa.array([D(2025, 3, 5), D(2025, 1, 15), D(2025, 3, 6)],
                                                 pa.date32())})
    waves = pa.table({"wave_start": pa.array([D(2025, 3, 1)], pa.date32()),
                      "wave_end": pa.array([D(2025, 3, 10)], pa.date32())})
    tags = pa.table({"customer_id": ["C3", "C1", "C2"],
                     "tag_id": ["intent_redeem", "recent_loss", "dormant"]})
    return rs.reassurance_list(_positions(), redemptions, waves, tags, rules,
                               {"intent_redeem": "想赎回"}, current_from).to_pylist()


def test_reassurance_scores_reasons_and_breaks_ties_transparently() -> None:
    rows = _reassure()
    # C1: drawdown 1 + loss 1 (a 33% fall, 400 against 600 paid, and the loss tag) = 2;
    # C2: redeemed in the wave = 2; C3: intent in chat = 2. C1 has 3 pieces of evidence,
    # C2 and C3 one each; C2's 404 yuan come before C3's 300. C9 holds nothing: not listed.
    assert [(r["rank"], r["customer_id"], r["score"], r["evidence_count"]) for r in rows] == [
        (1, "C1", 2, 3), (2, "C2", 2, 1), (3, "C3", 2, 1)]
    c1, c2, c3 = rows
    assert c1["reason_codes"] == "fund_drawdown,recent_loss"
    assert "F1 权益一号 净值较60日高点回撤33.3%" in c1["reasons"] and "浮亏33.3%" in c1["reasons"]
    assert (c2["reason_codes"], c2["advisor_id"]) == ("resembles_redeemers", "A2")
    assert "2025-03-05 赎回 F1" in c2["reasons"]
    assert (c3["reasons"], c3["advisor_id"]) == ("聊天中流露赎回意向或不满：标签「想赎回」", None)
    evidence = json.loads(c1["reasons_json"])
    assert [(e["code"], e["points"], len(e["evidence"])) for e in evidence] == [
        ("fund_drawdown", 1, 1), ("recent_loss", 1, 2)]
    assert evidence[0]["evidence"][0] == {"fund_code": "F1", "drawdown": 0.3333}


def test_reassurance_points_and_thresholds_are_the_rules() -> None:
    points = {"fund_drawdown": 1, "resembles_redeemers": 5, "recent_loss": 1, "chat_signal": 2}
    rows = _reassure(rs.ReassuranceRules(points=points))
    assert [(r["customer_id"], r["score"]) for r in rows] == [("C2", 5), ("C1", 2), ("C3", 2)]
    strict = _reassure(rs.ReassuranceRules(drawdown=0.4, loss=0.4, loss_tags=()))
    assert [r["customer_id"] for r in strict] == ["C2", "C3"]  # C1's reasons are below them


def test_a_redemption_in_the_current_wave_counts_and_the_reason_says_so() -> None:
    # the history window runs to the list's date, so C2's Mar 5 redemption counts whether the
    # Mar 1 … 10 wave is the analysed period's (本轮) or an earlier one (往期)
    for period_start, when, current in ((D(2025, 3, 1), "本轮", True),
                                        (D(2025, 4, 1), "往期", False)):
        c2 = next(r for r in _reassure(current_from=period_start) if r["customer_id"] == "C2")
        assert c2["score"] == 2
        assert c2["reasons"] == (f"在本轮或往期赎回高峰中赎回过：2025-03-05 赎回 F1"
                                 f"（{when}赎回高峰 2025-03-01～2025-03-10）")
        (item,) = json.loads(c2["reasons_json"])
        assert item["evidence"] == [{"fund_code": "F1", "redeem_date": "2025-03-05",
                                     "wave": ["2025-03-01", "2025-03-10"],
                                     "current_wave": current}]
