"""The metric compiler on small hand-made tables whose answers are worked out by hand in each
test: local dates, snapshots, stocks, derived metrics, grouped datasets, joins, NULLs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from caifu.adapters.engines.session import DuckDBSession
from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.pipelines.metrics import compile as mc
from caifu.pipelines.metrics.spec import Catalog, build_catalog

D = dt.date
T = dt.datetime

DATASETS = {
    "datasets": [
        {"name": "customers", "time": "opened_on"},
        {"name": "branches"},
        {"name": "cash_flows", "time": "flow_time"},
        {"name": "positions", "time": "snapshot_date", "snapshot": True},
        {"name": "first_deposits", "from": "cash_flows", "filter": "direction = 'in'",
         "group_by": ["customer_id"], "aggregates": {"first_at": "MIN(flow_time)"},
         "time": "first_at"},
    ],
    "relationships": [{"name": "c_first", "from": "customers", "to": "first_deposits",
                       "from_columns": ["customer_id"], "to_columns": ["customer_id"]}],
    "dimensions": [
        {"name": "branch", "dataset": "customers", "expr": "branch_id",
         "label": {"en": "Branch"}},
        {"name": "province", "dataset": "branches", "label": {"en": "Province"}},
    ],
}


def metric(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "version": 1, "owner": "t", "label": {"en": name},
            "description": {"en": name}, **kw}


METRICS = {"metrics": [
    metric("net_inflow", dataset="cash_flows",
           measure="SUM(CASE WHEN direction = 'in' THEN amount ELSE -amount END)"),
    metric("inflow", dataset="cash_flows", measure="SUM(amount)", filter="direction = 'in'"),
    metric("outflow", dataset="cash_flows", measure="SUM(amount)", filter="direction = 'out'"),
    metric("out_share", kind="derived", expr="outflow / inflow"),
    metric("aum", dataset="positions", measure="SUM(market_value)"),
    metric("customers_total", kind="stock", dataset="customers", valid_from="opened_on",
           valid_to="closed_on", measure="COUNT(*)"),
    metric("funded", dataset="first_deposits", measure="COUNT(*)"),
    metric("funded_share", dataset="customers",
           measure="SUM(CASE WHEN first_deposits.first_at IS NOT NULL THEN 1 ELSE 0 END) "
                   "/ COUNT(*)"),
    metric("not_in_bj", dataset="customers", measure="COUNT(*)",
           filter="NOT (branches.province = 'BJ')"),
    metric("opened_after_start", kind="stock", dataset="customers", valid_from="opened_on",
           measure="COUNT(*)", filter="opened_on >= period_start"),
]}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog([("datasets", DATASETS), ("metrics", METRICS)], registry())


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = contract_schema(registry()[name])
    full = [{f.name: r.get(f.name) for f in schema} for r in rows]
    return pa.Table.from_pylist(full, schema=schema)


def customer(cid: str, branch: str, opened: dt.date, closed: dt.date | None = None
             ) -> dict[str, Any]:
    return {"customer_id": cid, "branch_id": branch, "opened_on": opened, "closed_on": closed,
            "name": "x", "customer_type": "individual", "id_type": "passport",
            "id_number": "x", "channel": "app", "status": "normal"}


def flow(fid: str, cid: str, at: dt.datetime, direction: str, amount: str) -> dict[str, Any]:
    return {"flow_id": fid, "customer_id": cid, "fund_account": "A" + cid, "flow_time": at,
            "direction": direction, "amount": Decimal(amount)}


def position(cid: str, day: dt.date, value: str) -> dict[str, Any]:
    return {"snapshot_date": day, "fund_account": "A" + cid, "customer_id": cid,
            "security_code": "600519", "quantity": 1, "cost": Decimal("1"),
            "market_value": Decimal(value)}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = DuckDBSession(tmp_path_factory.mktemp("metrics"), "512MB", 1)
    yield s
    s.close()


@pytest.fixture(scope="module")
def tables(session: DuckDBSession) -> dict[str, Any]:
    data = {
        "customers": table("customers", [
            customer("c1", "B1", D(2026, 1, 5)),
            customer("c2", "B2", D(2026, 1, 20), closed=D(2026, 2, 10)),
            customer("c3", "B1", D(2026, 2, 28)),
        ]),
        "branches": table("branches", [
            {"branch_id": "B1", "name": "一", "province": "SH"},
            {"branch_id": "B2", "name": "二", "province": "BJ"},
        ]),
        "cash_flows": table("cash_flows", [
            # 2026-01-31 17:00 UTC is 2026-02-01 01:00 in Shanghai: February's
            flow("f1", "c1", T(2026, 1, 31, 17), "in", "100.00"),
            flow("f2", "c1", T(2026, 1, 10, 2), "in", "50.00"),
            flow("f3", "c2", T(2026, 1, 21, 3), "out", "30.00"),
            flow("f4", "c3", T(2026, 3, 2, 3), "in", "7.50"),
        ]),
        "positions": table("positions", [
            position("c1", D(2026, 1, 15), "10"), position("c1", D(2026, 1, 31), "20"),
            position("c3", D(2026, 1, 31), "5"), position("c3", D(2026, 2, 27), "9"),
        ]),
    }
    return {name: session.from_arrow(name, t) for name, t in data.items()}


def run(catalog: Catalog, tables: dict[str, Any], name: str, start: dt.date, end: dt.date,
        grain: str = "month", by: tuple[str, ...] = (), scope: mc.Scope | None = None
        ) -> list[dict[str, Any]]:
    q = mc.Query(name, start, end, by, grain, 8)
    out = mc.query(catalog, q, tables, scope).order_by("period", *by).to_pyarrow()
    return out.to_pylist()


def test_timestamps_count_on_the_local_date(catalog: Catalog, tables: dict[str, Any]) -> None:
    rows = run(catalog, tables, "net_inflow", D(2026, 1, 1), D(2026, 3, 31))
    assert [(r["period"], r["value"], r["customers"]) for r in rows] == [
        (D(2026, 1, 1), Decimal("20.00"), 2),   # 50 in (c1) − 30 out (c2)
        (D(2026, 2, 1), Decimal("100.00"), 1),  # the 17:00 UTC flow of 31 January
        (D(2026, 3, 1), Decimal("7.50"), 1)]


def test_the_range_cuts_rows_not_periods(catalog: Catalog, tables: dict[str, Any]) -> None:
    rows = run(catalog, tables, "inflow", D(2026, 1, 11), D(2026, 2, 28), grain="all")
    assert [(r["period"], r["value"]) for r in rows] == [(D(2026, 1, 11), Decimal("100.00"))]


def test_a_snapshot_counts_its_last_day_in_the_period(catalog: Catalog,
                                                      tables: dict[str, Any]) -> None:
    rows = run(catalog, tables, "aum", D(2026, 1, 1), D(2026, 2, 28))
    # January: the 31st (20 + 5), not 15th + 31st; February: the 27th
    assert [(r["period"], r["value"]) for r in rows] == [
        (D(2026, 1, 1), Decimal("25.00")), (D(2026, 2, 1), Decimal("9.00"))]
    q = run(catalog, tables, "aum", D(2026, 1, 1), D(2026, 3, 31), grain="quarter")
    assert [(r["period"], r["value"]) for r in q] == [(D(2026, 1, 1), Decimal("9.00"))]


def test_a_stock_is_what_is_alive_at_each_period_end(catalog: Catalog,
                                                     tables: dict[str, Any]) -> None:
    rows = run(catalog, tables, "customers_total", D(2025, 12, 1), D(2026, 3, 31))
    # c2 opened 20 Jan and closed 10 Feb; c3 opened 28 Feb; December has nobody (no row)
    assert [(r["period"], r["value"]) for r in rows] == [
        (D(2026, 1, 1), 2), (D(2026, 2, 1), 2), (D(2026, 3, 1), 2)]
    by_branch = run(catalog, tables, "customers_total", D(2026, 1, 1), D(2026, 1, 31),
                    by=("branch",))
    assert [(r["branch"], r["value"]) for r in by_branch] == [("B1", 1), ("B2", 1)]
    fresh = run(catalog, tables, "opened_after_start", D(2026, 1, 1), D(2026, 2, 28))
    assert [(r["period"], r["value"]) for r in fresh] == [(D(2026, 1, 1), 2),
                                                          (D(2026, 2, 1), 1)]


def test_a_derived_metric_divides_and_a_zero_gives_no_value(catalog: Catalog,
                                                            tables: dict[str, Any]) -> None:
    rows = run(catalog, tables, "out_share", D(2026, 1, 1), D(2026, 3, 31))
    got = {r["period"]: r["value"] for r in rows}
    assert got[D(2026, 1, 1)] == pytest.approx(30 / 50)
    assert got[D(2026, 2, 1)] is None  # no outflow: NULL / 100
    assert got[D(2026, 3, 1)] is None


def test_grouped_datasets_and_columns_of_related_datasets(catalog: Catalog,
                                                          tables: dict[str, Any]) -> None:
    funded = run(catalog, tables, "funded", D(2026, 1, 1), D(2026, 3, 31))
    # first deposits: c1 on 10 Jan (not the 31 Jan one), c3 on 2 Mar; c2 never deposited
    assert [(r["period"], r["value"]) for r in funded] == [(D(2026, 1, 1), 1),
                                                           (D(2026, 3, 1), 1)]
    share = run(catalog, tables, "funded_share", D(2026, 1, 1), D(2026, 2, 28), grain="all")
    assert share[0]["value"] == pytest.approx(2 / 3)
    # NOT (province = 'BJ') keeps a customer whose branch has no province row? all have one:
    # c1 and c3 are in SH
    assert run(catalog, tables, "not_in_bj", D(2026, 1, 1), D(2026, 2, 28),
               grain="all")[0]["value"] == 2
    by_province = run(catalog, tables, "net_inflow", D(2026, 1, 1), D(2026, 1, 31),
                      by=("province",))
    assert [(r["province"], r["value"]) for r in by_province] == [
        ("BJ", Decimal("-30.00")), ("SH", Decimal("50.00"))]


def test_scope_keeps_and_drops_customers(catalog: Catalog, tables: dict[str, Any],
                                         session: DuckDBSession) -> None:
    ids = session.from_arrow("ids", pa.table({"customer_id": ["c1"]}))
    start, end = D(2026, 1, 1), D(2026, 3, 31)
    kept = run(catalog, tables, "inflow", start, end, grain="all", scope=mc.Scope(keep=ids))
    dropped = run(catalog, tables, "inflow", start, end, grain="all", scope=mc.Scope(drop=ids))
    assert kept[0]["value"] == Decimal("150.00") and dropped[0]["value"] == Decimal("7.50")


def test_periods_cover_the_range() -> None:
    assert mc.periods(D(2026, 1, 15), D(2026, 3, 2), "month") == [
        (D(2026, 1, 1), D(2026, 1, 15), D(2026, 1, 31)),
        (D(2026, 2, 1), D(2026, 2, 1), D(2026, 2, 28)),
        (D(2026, 3, 1), D(2026, 3, 1), D(2026, 3, 2))]
    assert [p for p, _, _ in mc.periods(D(2026, 1, 1), D(2026, 1, 14), "week")] == [
        D(2025, 12, 29), D(2026, 1, 5), D(2026, 1, 12)]
    assert mc.periods(D(2025, 11, 5), D(2026, 2, 1), "quarter")[1][0] == D(2026, 1, 1)
    assert mc.periods(D(2025, 11, 5), D(2026, 2, 1), "year")[1] == (D(2026, 1, 1),
                                                                  D(2026, 1, 1), D(2026, 2, 1))


def test_a_query_is_checked_before_it_runs(catalog: Catalog, tables: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="ends .* before it starts"):
        run(catalog, tables, "aum", D(2026, 2, 1), D(2026, 1, 1))
    with pytest.raises(ConfigError, match="named twice"):
        run(catalog, tables, "aum", D(2026, 1, 1), D(2026, 2, 1), by=("branch", "branch"))


def test_where_keeps_the_rows_its_dimensions_allow(catalog: Catalog,
                                                   tables: dict[str, Any]) -> None:
    q = mc.Query("net_inflow", D(2026, 1, 1), D(2026, 3, 31), (), "all", 8,
                 where="province = 'SH'")
    rows = mc.query(catalog, q, tables).to_pyarrow().to_pylist()
    # SH is branch B1: c1 (+50, +100) and c3 (+7.50); c2's −30 is BJ
    assert [(r["value"], r["customers"]) for r in rows] == [(Decimal("157.50"), 2)]
    stock = mc.Query("customers_total", D(2026, 1, 1), D(2026, 1, 31), ("branch",), "month", 8,
                     where="NOT (branch = 'B1')")
    assert [(r["branch"], r["value"]) for r in
            mc.query(catalog, stock, tables).to_pyarrow().to_pylist()] == [("B2", 1)]
    with pytest.raises(ConfigError, match="names dimensions, not customers.branch_id"):
        mc.Query("aum", D(2026, 1, 1), D(2026, 2, 1), where="customers.branch_id = 'B1'"
                 ).check(catalog)
    with pytest.raises(ConfigError, match="not an aggregate"):
        mc.Query("aum", D(2026, 1, 1), D(2026, 2, 1), where="COUNT(*) > 1").check(catalog)
    with pytest.raises(ConfigError, match="unknown dimension 'provnce'"):
        mc.Query("aum", D(2026, 1, 1), D(2026, 2, 1), where="provnce = 'SH'").check(catalog)


@pytest.mark.parametrize(("where", "message"), [
    ("province > 5", "compares number with text"),
    ("province IN (1, 'SH')", "compares number with text"),
    ("province BETWEEN 1 AND 'Z'", "compares number with text"),
    ("province LIKE branch", "LIKE matches text against a written pattern"),
    ("province", "is not a condition"),
    ("NOT province", "is not a condition"),
    ("province + 1 = 2", "arithmetic is on numbers"),
    ("CAST(province AS DATE) > DATE '2020-01-01'", "only a written date"),
    ("province = NULL", "write IS NULL or IS NOT NULL"),
    ("DATE '2026-02-30' < DATE '2026-03-01'", "not a date YYYY-MM-DD"),
    ("COALESCE(province, 1) = 'SH'", "COALESCE(province, 1)"),
])
def test_a_badly_typed_condition_is_refused_before_any_engine_runs(
        catalog: Catalog, tables: dict[str, Any], where: str, message: str) -> None:
    q = mc.Query("net_inflow", D(2026, 1, 1), D(2026, 3, 31), (), "all", 8, where=where)
    with pytest.raises(ConfigError) as e:
        mc.query(catalog, q, tables)
    assert message in str(e.value)


def test_a_query_is_bounded(catalog: Catalog) -> None:
    # a stock metric joins every row to every period: a century of days is refused up front
    with pytest.raises(ConfigError, match="36,890 day periods; at most 1,200"):
        mc.Query("customers_total", D(1926, 1, 1), D(2026, 12, 31), grain="day").check(catalog)
    mc.Query("customers_total", D(1927, 1, 1), D(2026, 12, 31), grain="month").check(catalog)
    from caifu.services.metrics.catalog import shipped

    with pytest.raises(ConfigError, match="at most 4 dimensions"):
        mc.Query("turnover", D(2026, 1, 1), D(2026, 2, 1),
                 by=("branch", "province", "board", "side", "trade_channel")).check(shipped())
