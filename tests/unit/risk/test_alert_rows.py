"""The column-wise alert rows of ``services/risk/exposure`` say what the per-row definition
says: each route's JSON is ``json.dumps(_route_plain(row))`` to the byte, and the routes of
a (customer, security) are grouped and ordered as ``group_routes`` orders them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa

from caifu.pipelines.risk_exposure import COLUMNS
from caifu.services.risk.exposure import _route_plain, _Routes, group_routes

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


def test_route_json_is_json_dumps_of_the_plain_route() -> None:
    routes = _Routes(pa.Table.from_pylist(ROWS, TYPES), NAMES)
    by_via = {(routes.customer_id[i], routes.security_code[i], routes.via[i]): routes.json[i]
              for i in range(routes.n)}
    for r in ROWS:
        want = json.dumps(_route_plain(r, NAMES), ensure_ascii=False)
        assert by_via[(r["customer_id"], r["security_code"], r["via"])] == want
        json.loads(want)  # and it is JSON


def test_routes_grouped_and_ordered_as_group_routes() -> None:
    routes = _Routes(pa.Table.from_pylist(ROWS, TYPES), NAMES)
    got = [(cid, code, [routes.via[i] for i in idx]) for cid, code, idx in routes.grouped()]
    want = [(e.customer_id, e.security_code, [r["via"] for r in e.routes])
            for e in group_routes([dict(r) for r in ROWS])]
    assert got == want == [
        ("C1", "000001", ["fund:960003"]),
        ("C1", "000046", ["position", "fund:960002", "fund:960001"]),
        ("C2", "000046", ["position"])]
