"""The column-wise alert rows of ``services/risk/exposure`` say what the per-row definition
says: each route's JSON is ``json.dumps(_route_plain(row))`` to the byte, and the routes of
a (customer, security) are grouped and ordered as ``group_routes`` orders them, and each
holder's columns (via, value at risk, the direct position's fields, the funds) are what its
``Exposure`` says."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa

from caifu.pipelines.risk_exposure import COLUMNS
from caifu.services.risk.exposure import _Held, _route_plain, group_routes

D = Decimal
DAY, REPORT = dt.date(2026, 12, 7), dt.date(2026, 9, 30)


def _row(cid: str, code: str, via: str, var: str, **kw: object) -> dict[str, object]:
    fund = via.removeprefix("fund:") if via != "position" else None
    row: dict[str, object] = dict.fromkeys(COLUMNS)
    row.update(customer_id=cid, security_code=code, via=via, fund_code=fund,
               snapshot_date=DAY, value_at_risk=D(var),
               report_date=REPORT if fund else None)
    row.update(kw)
    return row


ROWS = [
    _row("C2", "000046", "position", "0.00", quantity=D("0"), market_value=D("0.00"),
         cost=D("10.00"), unrealised_pnl=D("-10.00")),
    _row("C1", "000046", "fund:960001", "12.30", nav_pct=D("9.5000"), shares=D("100.00"),
         market_value=D("129.47"), cost=None, unrealised_pnl=None),
    _row("C1", "000046", "position", "3492.47", quantity=D("4900"),
         market_value=D("3492.47"), cost=D("3000.10"), unrealised_pnl=D("492.37")),
    _row("C1", "000046", "fund:960002", "99.99", nav_pct=D("0.0100"), shares=D("1.00"),
         market_value=D("1.50"), cost=D("1.20"), unrealised_pnl=D("0.30")),
    _row("C1", "000001", "fund:960003", "5.00", nav_pct=D("1.2345"), shares=D("2.50"),
         market_value=D("7.77"), cost=D("8.00"), unrealised_pnl=D("-0.23")),
]
TYPES = pa.schema([
    ("customer_id", pa.string()), ("security_code", pa.string()), ("via", pa.string()),
    ("fund_code", pa.string()), ("snapshot_date", pa.date32()), ("report_date", pa.date32()),
    ("nav_pct", pa.decimal128(7, 4)), ("quantity", pa.decimal128(20, 0)),
    ("shares", pa.decimal128(20, 2)), ("market_value", pa.decimal128(18, 2)),
    ("cost", pa.decimal128(18, 2)), ("unrealised_pnl", pa.decimal128(18, 2)),
    ("value_at_risk", pa.decimal128(18, 2))])
# a name needing JSON escapes, one not in the product list (null in the JSON)
NAMES = {"960001": '基准"混合"\\1号', "960003": "稳健\n债券"}


def _held(rows: list[dict[str, object]]) -> _Held:
    return _Held(pa.Table.from_pylist(rows, TYPES), NAMES)


def test_routes_json_is_json_dumps_of_each_plain_route_in_group_order() -> None:
    held = _held(ROWS)
    want = {(e.customer_id, e.security_code): "[" + ", ".join(
        json.dumps(_route_plain(r, NAMES), ensure_ascii=False) for r in e.routes) + "]"
        for e in group_routes([dict(r) for r in ROWS])}
    got = dict(zip(zip(held.customer_id, held.security_code, strict=True), held.routes_json,
                   strict=True))
    assert got == want
    for text in got.values():
        json.loads(text)  # and it is JSON
    # the three routes of C1's 000046: the position, then funds by value at risk
    assert [r["via"] for r in json.loads(got[("C1", "000046")])] == [
        "position", "fund:960002", "fund:960001"]


def test_holders_as_group_routes_says() -> None:
    held = _held(ROWS)
    exposures = group_routes([dict(r) for r in ROWS])
    assert [(e.customer_id, e.security_code) for e in exposures] == list(zip(
        held.customer_id, held.security_code, strict=True)) == [
        ("C1", "000001"), ("C1", "000046"), ("C2", "000046")]
    for j, e in enumerate(exposures):
        d = e.direct
        assert held.direct[j] is (d is not None)
        assert held.via[j] == e.via
        assert held.value_at_risk[j].as_py() == e.value_at_risk
        assert held.snapshot_date[j].as_py() == e.routes[0]["snapshot_date"]
        assert held.funds[j] == tuple(r["fund_code"] for r in e.routes if r is not d)
        for name in ("quantity", "market_value", "cost", "unrealised_pnl"):
            assert getattr(held, name)[j].as_py() == (None if d is None else d[name])
    assert held.via == ["fund:960003", "position+fund:960002+fund:960001", "position"]
    assert held.value_at_risk.to_pylist() == [D("5.00"), D("3604.76"), D("0.00")]
    assert held.value_at_risk.type == pa.decimal128(18, 2)
    assert held.funds == [("960003",), ("960002", "960001"), ()]
    assert held.quantity.to_pylist() == [None, D("4900"), D("0")]


def test_a_holder_of_funds_only_has_no_direct_position() -> None:
    held = _held([r for r in ROWS if r["via"] != "position"])
    assert held.direct == [False, False]
    assert held.via == ["fund:960003", "fund:960002+fund:960001"]
    assert held.value_at_risk.to_pylist() == [D("5.00"), D("112.29")]
    assert held.market_value.to_pylist() == held.cost.to_pylist() == [None, None]
    assert held.quantity.to_pylist() == [None, None]
    assert held.funds == [("960003",), ("960002", "960001")]


def test_no_rows_no_holders() -> None:
    held = _held([])
    assert held.n == 0 and held.routes_json == [] and held.customer_id == []
    assert len(held.value_at_risk) == 0


def test_one_row_one_holder() -> None:
    held = _held(ROWS[:1])
    assert held.n == 1 and held.via == ["position"] and held.direct == [True]


def test_arrow_columns_bind_on_sqlite_as_their_python_values_do() -> None:
    """``bulk_insert`` converts an Arrow decimal or date column itself on SQLite: the same
    values SQLAlchemy's processors make of the Decimals and dates."""
    from sqlalchemy import Date, Numeric
    from sqlalchemy.dialects import sqlite

    from caifu.adapters.sor.repos.profiles import _sqlite_arrow

    dialect = sqlite.dialect()
    money = [D("3492.47"), D("-0.01"), None, D("0.00"), D("-123456789012.35"), D("0.10"),
             D("9999999999999999.99"), D("0.07"), D("1.15"), D("2.675")]
    for values, arrow_type, sa_type in (
            (money[:-1], pa.decimal128(18, 2), Numeric(18, 2)),
            ([D("4900"), D("0"), None, D("12345678901234567890")], pa.decimal128(20, 0),
             Numeric(20, 0)),
            ([D("9.5000"), D("0.0001"), D("2.675")], pa.decimal128(7, 4), Numeric(7, 4)),
            ([DAY, REPORT, None, dt.date(1, 1, 1)], pa.date32(), Date())):
        process = sa_type.dialect_impl(dialect).bind_processor(dialect)
        want = [process(v) for v in values]
        got = _sqlite_arrow(pa.array(values, arrow_type), sa_type)
        assert got == want and [type(v) for v in got] == [type(v) for v in want]
    # another target type: left to the processor
    assert _sqlite_arrow(pa.array([DAY]), Numeric(18, 2)) is None
