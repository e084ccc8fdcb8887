"""Profile features computed by hand for a tiny broker, checked on every engine.

The data exercises each definition's edge: window bounds (``as_of - 29``), a trade after
``as_of``, the UTC+8 day boundary for cash flows and logins, the latest snapshot on or before
a date, NAV from the latest fund transaction, average-price realised P&L, expired Level-2.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from caifu.adapters.engines.session import EngineSession
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.pipelines.profile import FEATURES, ProfileInputs, profile_features, restrict

AS_OF = dt.date(2026, 3, 31)
D = dt.date
T = dt.datetime


def M(s: str) -> Decimal:  # noqa: N802 - money literal
    return Decimal(s)


def _table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = contract_schema(registry()[name])
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows],
                                schema=schema)


def _trade(i: int, day: dt.date, side: str, code: str, qty: int, price: str, amount: str,
           fee: str) -> dict[str, Any]:
    return {"trade_id": f"T{i}", "customer_id": "C1", "fund_account": "A1", "trade_date": day,
            "trade_time": T(day.year, day.month, day.day, 2), "security_code": code,
            "side": side, "quantity": qty, "price": M(price), "amount": M(amount), "fee": M(fee)}


def _pos(day: dt.date, code: str, qty: int, cost: str, mv: str) -> dict[str, Any]:
    return {"snapshot_date": day, "fund_account": "A1", "security_code": code,
            "customer_id": "C1", "quantity": qty, "cost": M(cost), "market_value": M(mv)}


DATA = {
    "customers": [
        {"customer_id": "C1", "branch_id": "B1", "advisor_id": "V1", "channel": "app",
         "customer_type": "individual", "status": "normal", "opened_on": D(2025, 1, 1)},
        {"customer_id": "C2", "branch_id": "B1", "channel": "branch",
         "customer_type": "individual", "status": "normal", "opened_on": D(2026, 3, 31)},
        {"customer_id": "C3", "branch_id": "B1", "channel": "branch",
         "customer_type": "individual", "status": "normal", "opened_on": D(2026, 4, 1)},
        # C5's holdings are valued with market facts that belong to C1's rows: the latest
        # positions snapshot date (C5 is absent from it) and the fund's latest NAV
        {"customer_id": "C5", "branch_id": "B1", "channel": "app",
         "customer_type": "individual", "status": "normal", "opened_on": D(2025, 1, 1)},
    ],
    "accounts": [{"fund_account": "A1", "customer_id": "C1", "opened_on": D(2025, 1, 1),
                  "status": "normal", "chinext_opened_on": D(2025, 6, 1),
                  "level2_since": D(2026, 1, 1), "level2_until": D(2026, 3, 30)}],
    "securities": [
        {"security_code": "300750", "exchange": "SZ", "short_name": "宁德时代",
         "security_type": "stock", "board": "chinext"},
        {"security_code": "600519", "exchange": "SH", "short_name": "贵州茅台",
         "security_type": "stock", "board": "main"},
        {"security_code": "000001", "exchange": "SZ", "short_name": "平安银行",
         "security_type": "stock", "board": "main"},
    ],
    "fund_products": [{"fund_code": "F00001", "name": "示范纯债A", "fund_type": "bond",
                       "risk_level": "R2"}],
    "suitability_assessments": [
        {"assessment_id": "S1", "customer_id": "C1", "assessed_on": D(2025, 1, 1),
         "risk_level": "C3", "valid_until": D(2026, 1, 1), "no_loss_tolerance": False,
         "no_civil_capacity": False},
        {"assessment_id": "S2", "customer_id": "C1", "assessed_on": D(2026, 2, 1),
         "risk_level": "C4", "valid_until": D(2028, 2, 1), "no_loss_tolerance": False,
         "no_civil_capacity": False},
    ],
    "wecom_follows": [{"advisor_id": "V1", "external_userid": "wmX1", "customer_id": "C1",
                       "added_at": T(2025, 5, 1), "status": "deleted_by_customer",
                       "removed_at": T(2026, 3, 31, 18)}],  # 04-01 02:00 in Shanghai
    "trades": [
        _trade(1, D(2026, 3, 30), "B", "300750", 100, "10.00", "1000.00", "5.00"),
        _trade(2, D(2026, 3, 1), "S", "300750", 50, "12.00", "600.00", "3.00"),
        _trade(3, D(2025, 1, 10), "B", "600519", 100, "8.00", "800.00", "2.00"),
        _trade(4, D(2026, 4, 1), "B", "600519", 100, "9.00", "900.00", "2.00"),
        # 000001: bought 2 for 10.01, sold 4 for 12.01: 2 × (3.0025 − 5.005) = −4.005 exactly
        # on paper; rounded half away from zero on both engines → −4.01 (DuckDB's round() says
        # −4.00, Spark's −4.01)
        _trade(5, D(2024, 6, 3), "B", "000001", 2, "5.005", "10.01", "0.00"),
        _trade(6, D(2024, 6, 4), "S", "000001", 4, "3.003", "12.01", "0.00"),
    ],
    "positions": [
        _pos(D(2026, 3, 31), "300750", 50, "500.00", "450.00"),
        _pos(D(2026, 3, 31), "600519", 100, "800.00", "900.00"),
        _pos(D(2026, 2, 27), "600519", 100, "800.00", "850.00"),
        _pos(D(2025, 12, 31), "600519", 100, "800.00", "700.00"),
        {**_pos(D(2026, 2, 27), "600519", 10, "80.00", "85.00"), "customer_id": "C5",
         "fund_account": "A5"},
    ],
    "fund_transactions": [
        {"txn_id": "X1", "customer_id": "C1", "fund_account": "A1", "fund_code": "F00001",
         "txn_date": D(2026, 1, 10), "txn_type": "purchase", "amount": M("1000.00"),
         "shares": M("990.00"), "nav": Decimal("1.0000"), "fee": M("10.00")},
        {"txn_id": "X2", "customer_id": "C1", "fund_account": "A1", "fund_code": "F00001",
         "txn_date": D(2026, 3, 20), "txn_type": "redeem", "amount": M("500.00"),
         "shares": M("400.00"), "nav": Decimal("1.2500"), "fee": M("0.00")},
        {"txn_id": "X5", "customer_id": "C5", "fund_account": "A5", "fund_code": "F00001",
         "txn_date": D(2026, 1, 12), "txn_type": "purchase", "amount": M("100.00"),
         "shares": M("100.00"), "nav": Decimal("1.0000"), "fee": M("0.00")},
    ],
    "cash_flows": [
        {"flow_id": "K5", "customer_id": "C5", "fund_account": "A5",
         "flow_time": T(2026, 1, 5, 3), "direction": "in", "amount": M("100.00")},
        {"flow_id": "K1", "customer_id": "C1", "fund_account": "A1",
         "flow_time": T(2026, 3, 30, 20), "direction": "in", "amount": M("5000.00")},
        {"flow_id": "K2", "customer_id": "C1", "fund_account": "A1",
         "flow_time": T(2026, 3, 31, 17), "direction": "out", "amount": M("1000.00")},
        {"flow_id": "K3", "customer_id": "C1", "fund_account": "A1",
         "flow_time": T(2025, 6, 1, 3), "direction": "in", "amount": M("2000.00")},
    ],
    "app_events": [
        {"event_id": "E1", "customer_id": "C1", "event_time": T(2026, 3, 30, 1),
         "event_type": "login"},
        {"event_id": "E2", "customer_id": "C1", "event_time": T(2026, 3, 25, 2),
         "event_type": "login"},
        {"event_id": "E3", "customer_id": "C1", "event_time": T(2026, 3, 25, 5),
         "event_type": "login"},
        {"event_id": "E4", "customer_id": "C1", "event_time": T(2026, 3, 31, 16, 30),
         "event_type": "login"},
        {"event_id": "E5", "customer_id": "C1", "event_time": T(2026, 3, 29, 3),
         "event_type": "view_quote"},
    ],
}

EXPECTED_C1: dict[str, Any] = {
    "branch_id": "B1", "advisor_id": "V1", "channel": "app", "tenure_days": 454,
    "trades_30d": 1, "trades_90d": 2, "trades_365d": 2,
    "trade_amount_30d": M("1000.00"), "trade_amount_90d": M("1600.00"),
    "trade_amount_365d": M("1600.00"), "fees_365d": M("8.00"), "distinct_securities_365d": 1,
    "traded_main_365d": False, "traded_chinext_365d": True, "traded_star_365d": False,
    "first_trade_date": D(2024, 6, 3), "last_trade_date": D(2026, 3, 30),
    "days_since_last_trade": 1, "trading_stopped_on": None,
    "rfm_recency": 5, "rfm_frequency": 2, "rfm_monetary": 2,
    "positions_count": 2, "holdings_value": M("1350.00"), "unrealised_pnl": M("50.00"),
    "realised_pnl": M("95.99"),  # 100.00 on 300750 and −4.01 on 000001 "worst_security_code": "300750", "worst_security_pnl": M("-50.00"),
    "fund_value": M("737.50"), "fund_value_bond": M("737.50"), "fund_value_r2": M("737.50"),
    "fund_value_equity": M("0.00"), "fund_purchase_365d": M("1000.00"),
    "fund_redeem_365d": M("500.00"), "fund_redemption_ratio_365d": 0.5,
    "aum": M("2087.50"), "aum_30d_ago": M("1840.00"), "aum_90d_ago": M("700.00"),
    "aum_trend_30d": 247.5 / 1840, "aum_trend_90d": 1387.5 / 700,
    "net_inflow_30d": M("5000.00"), "net_inflow_90d": M("5000.00"),
    "net_inflow_365d": M("7000.00"), "deposits_30d": M("5000.00"),
    "withdrawals_30d": M("0.00"), "last_deposit_date": D(2026, 3, 31),
    "days_since_last_deposit": 0, "last_login_at": T(2026, 3, 30, 1),
    "days_since_last_login": 1, "login_days_30d": 2, "login_days_without_trade_30d": 1,
    "chinext_opened": True, "star_opened": False, "level2_active": False,
    "account_transferred_out": False, "follows_on_wecom": True, "c_level": "C4",
    "lowest_category": False, "assessment_valid_until": D(2028, 2, 1),
    "assessment_expired": False,
}


def _features(engine: EngineSession) -> dict[str, dict[str, Any]]:
    tables = {name: engine.from_arrow(f"t_{name}", _table(name, rows))
              for name, rows in DATA.items()}
    out = engine.to_arrow(profile_features(ProfileInputs(**tables), AS_OF, 8))
    assert out.column_names == [f.name for f in FEATURES]
    return {r["customer_id"]: r for r in out.to_pylist()}


def test_hand_computed_features(engine: EngineSession) -> None:
    rows = _features(engine)
    assert sorted(rows) == ["C1", "C2", "C5"]  # C3 opened after as_of
    c1 = rows["C1"]
    for name, want in EXPECTED_C1.items():
        got = c1[name]
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12), name
        else:
            assert got == want, name


def test_a_customer_with_no_activity_gets_zeros_not_nulls(engine: EngineSession) -> None:
    c2 = _features(engine)["C2"]
    assert c2["tenure_days"] == 0
    assert (c2["trades_365d"], c2["trade_amount_365d"], c2["aum"]) == (0, M("0.00"), M("0.00"))
    assert (c2["rfm_recency"], c2["rfm_frequency"], c2["rfm_monetary"]) == (1, 1, 1)
    assert c2["last_trade_date"] is None and c2["days_since_last_trade"] is None
    assert c2["aum_trend_30d"] is None  # no base to compare with
    assert c2["c_level"] is None and c2["assessment_expired"] is True
    assert c2["follows_on_wecom"] is False and c2["login_days_30d"] == 0


def test_missing_fact_tables_mean_no_activity(engine: EngineSession) -> None:
    masters = ("customers", "accounts", "securities", "fund_products",
               "suitability_assessments", "wecom_follows")
    tables = {name: engine.from_arrow(f"m_{name}", _table(name, DATA[name])) for name in masters}
    out = engine.to_arrow(profile_features(ProfileInputs(**tables), AS_OF, 8))
    c1 = {r["customer_id"]: r for r in out.to_pylist()}["C1"]
    assert (c1["trades_30d"], c1["aum"], c1["realised_pnl"]) == (0, M("0.00"), M("0.00"))
    assert c1["chinext_opened"] is True and c1["c_level"] == "C4"


def test_restricted_inputs_give_the_same_rows(engine: EngineSession) -> None:
    """The real-time path computes a few customers; market facts must stay whole."""
    tables = {name: engine.from_arrow(f"r_{name}", _table(name, rows))
              for name, rows in DATA.items()}
    full = ProfileInputs(**tables)
    everyone = {r["customer_id"]: r for r in
                engine.to_arrow(profile_features(full, AS_OF, 8)).to_pylist()}
    alone = engine.to_arrow(profile_features(restrict(full, ["C5"]), AS_OF, 8)).to_pylist()
    assert alone == [everyone["C5"]]
    c5 = alone[0]
    assert c5["holdings_value"] == M("0.00")  # not in the 03-31 snapshot, the tenant's latest
    assert c5["aum_30d_ago"] == M("185.00")  # 02-27 snapshot 85.00 + 100 shares × NAV 1.0000
    assert c5["fund_value"] == M("125.00")  # 100 shares × C1's 03-20 NAV 1.2500

