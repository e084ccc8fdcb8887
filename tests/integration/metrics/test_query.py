"""The metric layer against hand-written SQL on the demo broker (600 customers, seed 3).

Every oracle here is plain DuckDB SQL (or Python) over the lake's Parquet files and the
system of record's rows — written from the metric's description, not from the compiler — so
a compiler bug cannot hide behind itself. Also: the caller's scope, storage-only customers,
small-group suppression and its audited unmasking, tenant-wide refusals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import func, insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES, audit_log, restricted_customers
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.core.errors import ConfigError, PermissionDeniedError
from caifu.core.identity import Principal
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.metrics.board import board
from caifu.services.metrics.query import answer, answers
from tests.conftest import Broker

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

START, END = dt.date(2025, 11, 1), dt.date(2026, 10, 31)
OPS = Principal("acme", "metrics.test", "ops")


@pytest.fixture(scope="module")
def ws(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = small_broker.copy(tmp_path_factory.mktemp("metrics") / "ws")
    yield c
    c.close()


@pytest.fixture(scope="module")
def sql(ws: Container) -> Iterator[duckdb.DuckDBPyConnection]:
    """The oracle's DuckDB: lake tables as views over their Parquet files, SoR tables as
    Arrow."""
    con = duckdb.connect()
    for name in ("trades", "positions", "cash_flows", "fund_transactions", "app_events"):
        files = [str(f) for f in ws.lake.files("acme", name)]
        con.read_parquet(files, union_by_name=True).create_view(name)
    with ws.engine.connect() as conn:
        for name in ("customers", "accounts", "securities", "fund_products", "branches"):
            data = ingest_repo.rows(conn, "acme", registry()[name])
            assert data is not None
            con.register(name, data)
    yield con
    con.close()


def _rows(a: Any, *keys: str) -> dict[tuple[Any, ...], Any]:
    return {tuple(r[k] for k in ("period", *keys)): r["value"] for r in a.rows}


def _oracle(con: duckdb.DuckDBPyConnection, query: str) -> dict[tuple[Any, ...], Any]:
    return {tuple(r[:-1]): r[-1] for r in con.execute(query).fetchall()}


def test_active_traders_and_turnover_by_month(ws: Container, sql: Any) -> None:
    where = f"trade_date BETWEEN DATE '{START}' AND DATE '{END}'"
    expected = _oracle(sql, "SELECT CAST(date_trunc('month', trade_date) AS DATE), "
                            f"count(DISTINCT customer_id) FROM trades WHERE {where} GROUP BY 1")
    got = _rows(answer(ws, OPS, "active_traders", start=START, end=END))
    assert len(expected) == 12 and got == expected
    turnover = _oracle(sql, "SELECT CAST(date_trunc('month', trade_date) AS DATE), sum(amount) "
                            f"FROM trades WHERE {where} GROUP BY 1")
    assert _rows(answer(ws, OPS, "turnover", start=START, end=END)) == turnover
    assert all(isinstance(v, Decimal) for v in turnover.values())


def test_net_inflow_by_branch_uses_local_dates(ws: Container, sql: Any) -> None:
    # flows are stored in UTC and the demo tenant is Asia/Shanghai (UTC+8); the demo's flows
    # all fall between 01:00 and 08:00 UTC, so tests/unit/metrics/test_compile.py holds the
    # shift itself (a flow at 17:00 UTC on the 31st belongs to the next month)
    expected = _oracle(sql, f"""
        WITH f AS (SELECT CAST(flow_time + INTERVAL 8 HOUR AS DATE) AS d, * FROM cash_flows)
        SELECT CAST(date_trunc('quarter', d) AS DATE), c.branch_id,
               sum(CASE WHEN direction = 'in' THEN amount ELSE -amount END)
        FROM f JOIN customers c USING (customer_id)
        WHERE d BETWEEN DATE '{START}' AND DATE '{END}' GROUP BY 1, 2""")
    a = answer(ws, OPS, "net_inflow", by=("branch",), grain="quarter", start=START, end=END,
               min_group_size=1)
    assert len(expected) > 20 and _rows(a, "branch") == expected


def test_aum_is_the_last_snapshot_of_each_quarter(ws: Container, sql: Any) -> None:
    # the demo snapshots positions at each month's end: a quarter holds three
    expected = _oracle(sql, f"""
        WITH p AS (SELECT *, CAST(date_trunc('quarter', snapshot_date) AS DATE) AS m FROM positions
                   WHERE snapshot_date BETWEEN DATE '{START}' AND DATE '{END}'),
             last AS (SELECT m, max(snapshot_date) AS d FROM p GROUP BY m)
        SELECT p.m, sum(market_value) FROM p JOIN last ON p.m = last.m AND p.snapshot_date = last.d
        GROUP BY 1""")
    got = _rows(answer(ws, OPS, "aum", grain="quarter", start=START, end=END))
    assert got and got == expected
    summed = _oracle(sql, f"""SELECT CAST(date_trunc('quarter', snapshot_date) AS DATE),
        sum(market_value) FROM positions
        WHERE snapshot_date BETWEEN DATE '{START}' AND DATE '{END}' GROUP BY 1""")
    assert any(summed[k] != v for k, v in expected.items())  # not a sum over snapshots


def test_customers_total_is_alive_at_each_period_end(ws: Container) -> None:
    with ws.engine.connect() as conn:
        rows = ingest_repo.rows(conn, "acme", registry()["customers"])
    assert rows is not None
    people = rows.select(["opened_on", "closed_on"]).to_pylist()
    ends = [dt.date(2026, 3, 31), dt.date(2026, 6, 30), dt.date(2026, 9, 30)]
    expected = {(dt.date(e.year, e.month - 2, 1),): sum(
        1 for p in people if p["opened_on"] <= e and (p["closed_on"] is None or p["closed_on"] > e))
        for e in ends}
    a = answer(ws, OPS, "customers_total", grain="quarter", start=dt.date(2026, 1, 1),
               end=dt.date(2026, 9, 30))
    assert _rows(a) == expected
    assert len(set(expected.values())) > 1  # it moves


def test_chinext_conversion_is_openings_over_those_without_it(ws: Container) -> None:
    with ws.engine.connect() as conn:
        rows = ingest_repo.rows(conn, "acme", registry()["accounts"])
    assert rows is not None
    accounts = rows.to_pylist()
    start, end = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
    opened = sum(1 for r in accounts if r["chinext_opened_on"] and
                 start <= r["chinext_opened_on"] <= end)
    base = sum(1 for r in accounts if r["opened_on"] <= end and (
        r["chinext_opened_on"] is None or r["chinext_opened_on"] >= start))
    a = answer(ws, OPS, "chinext_conversion", grain="all", start=start, end=end)
    assert opened > 0 and a.rows[0]["value"] == pytest.approx(opened / base, rel=1e-12)
    assert a.rows[0]["period"] == start


def test_first_funding_conversion_reads_the_first_deposit(ws: Container, sql: Any) -> None:
    expected = sql.execute(f"""
        WITH first AS (SELECT customer_id, min(flow_time) AS t FROM cash_flows
                       WHERE direction = 'in' GROUP BY 1)
        SELECT avg(CASE WHEN first.t IS NULL THEN 0 ELSE 1 END), count(*)
        FROM customers c LEFT JOIN first USING (customer_id)
        WHERE c.opened_on BETWEEN DATE '{START}' AND DATE '{END}'""").fetchone()
    a = answer(ws, OPS, "first_funding_conversion", grain="all", start=START, end=END)
    assert a.rows[0]["customers"] == expected[1]
    assert a.rows[0]["value"] == pytest.approx(expected[0], rel=1e-12)


def test_an_advisor_sees_his_customers_only(ws: Container, sql: Any) -> None:
    t = CONTRACT_TABLES["customers"]
    with ws.engine.connect() as conn:
        advisor = conn.execute(select(t.c.advisor_id).where(
            t.c.tenant_id == "acme", t.c.advisor_id.is_not(None)).group_by(t.c.advisor_id)
            .order_by(func.count().desc()).limit(1)).scalar_one()
    p = Principal("acme", "adv.user", "advisor", advisor_id=advisor)
    a = answer(ws, p, "turnover", grain="all", start=START, end=END, min_group_size=1)
    # his customers: assigned to him or following him on WeCom (an active follow)
    mine = sql.execute(f"""SELECT sum(amount) FROM trades WHERE trade_date BETWEEN DATE '{START}'
        AND DATE '{END}' AND customer_id IN (SELECT customer_id FROM customers
        WHERE advisor_id = '{advisor}')""").fetchone()[0]
    every = answer(ws, OPS, "turnover", grain="all", start=START, end=END).rows[0]["value"]
    assert a.scope == f"advisor {advisor}"
    assert mine <= a.rows[0]["value"] < every
    with pytest.raises(PermissionDeniedError, match="tenant-wide"):
        answer(ws, p, "rows_loaded", start=START, end=END)
    # the KPI board (value report, console home) says why instead of refusing them all
    b = board(ws, p, END, ("turnover", "rows_loaded", "customers_total"))
    assert [x.metric.name for x in b.answers] == ["turnover", "customers_total"]
    assert set(b.refused) == {"rows_loaded"} and "tenant-wide" in b.refused["rows_loaded"]
    assert (b.start, b.end) == (START, END)  # the 12 months to END
    assert b.answers[0].scope == f"advisor {advisor}" and len(b.answers[0].rows) == 12
    assert board(ws, OPS, END, ("rows_loaded",)).refused == {}


def test_small_groups_of_level_3_figures_are_withheld(ws: Container) -> None:
    a = answer(ws, OPS, "net_inflow", by=("branch",), grain="month", start=START, end=END)
    assert a.level == 3 and a.min_group_size == 10
    small = [r for r in a.rows if r["customers"] < 10]
    assert small and all(r["value"] is None and r["suppressed"] for r in small)
    assert all(r["value"] is not None for r in a.rows if r["customers"] >= 10)
    # a level-2 count is not withheld however small its group
    b = answer(ws, OPS, "new_customers", by=("branch",), start=START, end=END)
    assert b.level == 2 and any(r["customers"] < 10 for r in b.rows) and b.suppressed == 0


def test_unmasking_small_groups_is_for_compliance_and_audited(ws: Container) -> None:
    with pytest.raises(PermissionDeniedError):
        answer(ws, OPS, "net_inflow", by=("branch",), start=START, end=END, unmask=True,
               reason="x")
    auditor = Principal("acme", "auditor", "compliance")
    with pytest.raises(ConfigError, match="reason"):
        answer(ws, auditor, "net_inflow", by=("branch",), start=START, end=END, unmask=True)
    with ws.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    a = answer(ws, auditor, "net_inflow", by=("branch",), start=START, end=END, unmask=True,
               reason="branch review 2026-Q4")
    assert a.suppressed == 0 and all(r["value"] is not None for r in a.rows)
    with ws.engine.connect() as conn:
        last = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).one()
        after = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    assert after == before + 1 and last.action == "unmask" and last.actor == "auditor"
    assert "metric:net_inflow" in last.fields_json and last.reason == "branch review 2026-Q4"


def test_storage_only_customers_count_for_nobody(ws: Container, sql: Any) -> None:
    top = sql.execute(f"""SELECT customer_id, sum(amount) FROM trades WHERE trade_date
        BETWEEN DATE '{START}' AND DATE '{END}' GROUP BY 1 ORDER BY 2 DESC LIMIT 1""").fetchone()
    before = answer(ws, OPS, "turnover", grain="all", start=START, end=END).rows[0]["value"]
    with ws.engine.begin() as conn:
        conn.execute(insert(restricted_customers).values(
            tenant_id="acme", customer_id=top[0], since=dt.datetime(2026, 11, 1),
            request_id="r1", legal_basis="test"))
    try:
        after = answer(ws, OPS, "turnover", grain="all", start=START, end=END).rows[0]["value"]
        assert after == before - top[1]
    finally:
        with ws.engine.begin() as conn:
            conn.execute(restricted_customers.delete())


def test_every_answer_carries_its_identity(ws: Container) -> None:
    a = answer(ws, OPS, "commission_rate", by=("board",), start=START, end=END).plain()
    assert a["metric"] == "commission_rate" and a["version"] == 1
    assert len(a["definition_hash"]) == 16 and a["catalog_version"] == "2026.12"
    assert a["by"] == ["board"] and {r["board"] for r in a["rows"]} >= {"main", "chinext"}
    assert isinstance(pa.array([r["value"] for r in a["rows"]]), pa.Array)


def test_a_bad_cut_or_grain_says_what_is_allowed(ws: Container) -> None:
    with pytest.raises(ConfigError, match="cannot be cut by 'board'.*it can by branch"):
        answer(ws, OPS, "customers_total", by=("board",), start=START, end=END)
    with pytest.raises(ConfigError, match="did you mean branch"):
        answer(ws, OPS, "aum", by=("brnch",), start=START, end=END)
    with pytest.raises(ConfigError, match="grain 'fortnight'"):
        answer(ws, OPS, "aum", grain="fortnight", start=START, end=END)
    with pytest.raises(ConfigError, match="did you mean aum"):
        answer(ws, OPS, "aun", start=START, end=END)


def test_clv_totals_are_the_newest_value_run(ws: Container) -> None:
    from caifu.services.value.customer_value import VALUE_TABLE, CustomerValue

    result = CustomerValue(ws).run("acme")
    run = ws.lake.latest_snapshot("acme", VALUE_TABLE)
    assert run is not None and run.num_rows == result.customers > 500
    day = result.as_of
    got = {a.metric.name: a.rows[0]["value"] for a in answers(
        ws, OPS, ["clv_total", "efficiency_total", "negative_efficiency_share"], grain="all",
        start=day.replace(day=1), end=day)}
    assert got["clv_total"] == sum(run["clv"].to_pylist())
    assert got["efficiency_total"] == sum(run["efficiency"].to_pylist())
    negative = sum(1 for v in run["efficiency"].to_pylist() if v < 0) / run.num_rows
    assert got["negative_efficiency_share"] == pytest.approx(negative, rel=1e-12)


def test_where_on_a_dimension_is_the_metric_with_that_filter(ws: Container) -> None:
    # two definitions of one figure: turnover where the security's board is ChiNext, and the
    # shipped chinext_turnover (filter in its definition)
    where = answer(ws, OPS, "turnover", by=("branch",), start=START, end=END,
                   where="board = 'chinext'", min_group_size=1)
    shipped_ = answer(ws, OPS, "chinext_turnover", by=("branch",), start=START, end=END,
                      min_group_size=1)
    assert where.rows and _rows(where, "branch") == _rows(shipped_, "branch")
    assert where.plain()["where"] == "board = 'chinext'"
    with pytest.raises(ConfigError, match="cannot be filtered by 'board'"):
        answer(ws, OPS, "customers_total", start=START, end=END, where="board = 'star'")


def test_a_question_asked_again_runs_its_compiled_sql_with_the_same_answer(
        ws: Container) -> None:
    from caifu.services.metrics import query as mq

    names = ["aum", "chinext_conversion", "net_inflow", "customers_total"]
    advisor = Principal("acme", "adv.user", "advisor", advisor_id="TG00001")

    def ask(p: Principal) -> list[list[dict[str, Any]]]:
        return [a.rows for a in answers(ws, p, names, by=("branch",), grain="quarter",
                                        start=START, end=END, min_group_size=1)]

    mq._COMPILED.clear()
    first = ask(OPS)
    assert len(mq._COMPILED) == len(names)
    compiled = {k: v.sql for k, v in mq._COMPILED.items()}
    again = ask(OPS)
    assert again == first and {k: v.sql for k, v in mq._COMPILED.items()} == compiled
    # another scope is another question (its SQL reads the scope's customers) ...
    mine = ask(advisor)
    assert len(mq._COMPILED) == 2 * len(names) and mine != first
    # ... whose second asking answers from its own compiled SQL, not the tenant's
    assert ask(advisor) == mine
    # without the cache (Ibis runs the expression itself) the answers are the same
    with ws.job_session("duckdb", "metric-test") as s:
        scope = mq._scope(ws, s, OPS, "acme")
        tables = mq.Tables(ws, s, "acme", mq.catalog_of(ws, "acme"))
        for name, rows in zip(names, first, strict=True):
            q = mq.mc.Query(name, START, END, ("branch",), "quarter", 8)
            direct = s.to_arrow(mq.mc.query(tables.catalog, q, tables, scope)
                                .order_by("period", "branch"))
            assert mq._rows(direct, q, 0, 1, False) == rows, name


def test_compiled_sql_is_not_reused_over_a_table_of_other_columns(ws: Container) -> None:
    # a lake table without files is its contract's columns, with files also the batch
    # columns: SQL compiled over one may name columns the other lacks
    from caifu.services.metrics import query as mq

    q = mq.mc.Query("turnover", START, END, ("branch",), "quarter", 8)
    cat = mq.catalog_of(ws, "acme")
    with ws.job_session("duckdb", "metric-test") as s:
        full = mq._run(s, cat, q, mq.Tables(ws, s, "acme", cat), None, "acme")
    with ws.job_session("duckdb", "metric-test") as s:
        tables = mq.Tables(ws, s, "acme", cat)
        trades = s.to_arrow(tables["trades"])
        extra = [n for n in trades.column_names if n.startswith("_")]
        assert extra, "the lake's trades carry batch columns"
        tables._loaded["trades"] = s.from_arrow("m_acme_trades", trades.drop_columns(extra))
        assert mq._run(s, cat, q, tables, None, "acme") == full
