"""The profile figures on the metric layer (src/caifu/data/metrics/profiles.yaml) against
hand-written SQL on the demo broker (600 customers, seed 3), built, sized, staged and planned.

Every oracle is plain DuckDB SQL over the system of record's rows and the lake's Parquet
files, written from the metric's description: tag holders (assignments in force at the end of
the tenant's today), segment sizes (members on the newest build date), customers per
lifecycle stage and per stage flow (from the transition history, not from the tables the
metrics read), preference-group plans and the ingest totals. Then the surfaces that show them:
``caifu tags list``, ``segment list``, ``groups plan``/``list`` and the scope an advisor gets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import func, insert, select, update
from typer.testing import CliRunner

from caifu.adapters.sor.metadata import metadata
from caifu.adapters.sor.models import CONTRACT_TABLES, restricted_customers, tag_assignments
from caifu.cli import app
from caifu.core.errors import PermissionDeniedError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.demo.broker import ingest_totals
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.query import answer, answers
from caifu.services.profiles import figures
from caifu.services.profiles.build import Build
from caifu.services.profiles.lifecycle import Lifecycle, LifecycleResult
from caifu.services.profiles.segments import Segments
from caifu.services.scrm import pref_groups
from tests.conftest import Broker

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

T = "acme"
OPS = Principal(T, "figures.test", "ops")
SEGMENTS = (("active_traders", "活跃交易", "trades_90d >= 1"),
            ("rich", "高净值", "tag:high_net_worth"),
            ("nobody", "无人", "aum < 0"))  # sized, with no member
runner = CliRunner(env={"COLUMNS": "220"})


def _local_today(c: Container) -> dt.date:
    return (c.clock.now() + dt.timedelta(hours=8)).date()  # acme: Asia/Shanghai, UTC+8


def _midnight_utc(day: dt.date) -> dt.datetime:
    """Local midnight starting ``day``, as stored (naive UTC)."""
    return dt.datetime.combine(day, dt.time()) - dt.timedelta(hours=8)


@pytest.fixture(scope="module")
def ws(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[Container, LifecycleResult]]:
    c = small_broker.copy(tmp_path_factory.mktemp("figures") / "ws")
    for segment_id, name, expression in SEGMENTS:
        Segments(c).save(T, segment_id, name, expression)
    Build(c).build(T)
    Segments(c).save(T, "later", "后建", "aum > 0")  # after the build: not sized yet
    result = Lifecycle(c).run(T)
    pref_groups.seed_demo_groups(c, T)
    for g in pref_groups.list_groups(c, T):
        pref_groups.plan(c, T, g["group_id"])
    # lapsed and lapsing assignments of a rule tag (rule tags without valid_days never lapse)
    today = _local_today(c)
    a = tag_assignments
    with c.engine.begin() as conn:
        dormant = sorted(r[0] for r in conn.execute(select(a.c.customer_id).where(
            a.c.tenant_id == T, a.c.tag_id == "dormant")))
        assert len(dormant) > 10
        for cid, expires in ((dormant[0], _midnight_utc(today - dt.timedelta(days=3))),
                             (dormant[1], _midnight_utc(today)),  # lapsed this morning
                             (dormant[2], _midnight_utc(today + dt.timedelta(days=1)))):
            conn.execute(update(a).where(a.c.tenant_id == T, a.c.customer_id == cid,
                                         a.c.tag_id == "dormant").values(expires_at=expires))
    yield c, result
    c.close()


@pytest.fixture(scope="module")
def sql(ws: tuple[Container, LifecycleResult]) -> Iterator[duckdb.DuckDBPyConnection]:
    """The oracle's DuckDB: SoR tables as Arrow, lake tables as views over their files."""
    c, _ = ws
    con = duckdb.connect()
    with c.engine.connect() as conn:
        for name in ("tag_assignments", "preference_group_members", "ingest_log"):
            t = metadata.tables[name]
            con.register(name, pa.Table.from_pylist(
                [dict(r._mapping) for r in conn.execute(select(t).where(t.c.tenant_id == T))]))
        for name in ("customers", "wecom_follows"):
            t = CONTRACT_TABLES[name]
            con.register(name, pa.Table.from_pylist(
                [dict(r._mapping) for r in conn.execute(select(t).where(t.c.tenant_id == T))]))
    for name in ("segment_members", "lifecycle_stages", "lifecycle_transitions"):
        files = [str(f) for f in c.lake.files(T, name)]
        con.read_parquet(files).create_view(name)
    yield con
    con.close()


def _oracle(con: duckdb.DuckDBPyConnection, query: str) -> dict[Any, int]:
    return {(r[0] if len(r) == 2 else tuple(r[:-1])): r[-1]
            for r in con.execute(query).fetchall()}


def _held_sql(today: dt.date, extra: str = "") -> str:
    return f"""SELECT tag_id, count(DISTINCT customer_id) FROM tag_assignments
        WHERE CAST(gained_at + INTERVAL 8 HOUR AS DATE) <= DATE '{today}'
          AND (expires_at IS NULL OR CAST(expires_at + INTERVAL 8 HOUR AS DATE) > DATE '{today}')
          {extra} GROUP BY 1"""


# --- tag holders ---------------------------------------------------------------------------


def test_tag_holders_are_the_assignments_in_force_today(ws: Any, sql: Any) -> None:
    c, _ = ws
    today = _local_today(c)
    expected = _oracle(sql, _held_sql(today))
    got = figures.tag_holders(c, OPS)
    assert len(expected) > 5 and got.values == expected
    # the two lapsed dormant assignments no longer count, the one lapsing tomorrow does
    stored = sql.execute("SELECT count(*) FROM tag_assignments WHERE tag_id = 'dormant'"
                         ).fetchone()[0]
    assert got.values["dormant"] == stored - 2
    assert got.metrics == [{"metric": "tag_holders", "version": 1,
                            "definition_hash": shipped().definition_hash("tag_holders")}]
    # the same figure as the holders the preference groups read (not lapsed at this moment)
    a = tag_assignments
    with c.engine.connect() as conn:
        now = c.clock.now()
        in_force = conn.execute(select(func.count()).where(
            a.c.tenant_id == T, a.c.tag_id == "dormant",
            (a.c.expires_at.is_(None)) | (a.c.expires_at > now))).scalar_one()
    assert got.values["dormant"] == in_force


def test_an_advisor_sees_his_customers_tags(ws: Any, sql: Any) -> None:
    c, _ = ws
    advisor = sql.execute("SELECT advisor_id FROM customers WHERE advisor_id IS NOT NULL "
                          "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
    mine = f"""AND customer_id IN (SELECT customer_id FROM customers WHERE advisor_id = '{advisor}'
        UNION SELECT customer_id FROM wecom_follows WHERE advisor_id = '{advisor}'
                                                    AND status = 'active')"""
    expected = _oracle(sql, _held_sql(_local_today(c), mine))
    got = figures.tag_holders(c, Principal(T, "adv", "advisor", advisor_id=advisor))
    every = figures.tag_holders(c, OPS)
    assert expected and got.values == expected
    assert sum(expected.values()) < sum(v or 0 for v in every.values.values())


def test_storage_only_customers_hold_no_tag_for_anyone(ws: Any, sql: Any) -> None:
    c, _ = ws
    cid = sql.execute("SELECT customer_id FROM tag_assignments WHERE tag_id = 'dormant' "
                      "AND expires_at IS NULL ORDER BY 1 LIMIT 1").fetchone()[0]
    before = figures.tag_holders(c, OPS).get("dormant")
    with c.engine.begin() as conn:
        conn.execute(insert(restricted_customers).values(
            tenant_id=T, customer_id=cid, since=dt.datetime(2026, 11, 1), request_id="r1",
            legal_basis="test"))
    try:
        assert figures.tag_holders(c, OPS).get("dormant") == before - 1
    finally:
        with c.engine.begin() as conn:
            conn.execute(restricted_customers.delete())


def test_the_tags_cli_shows_the_holders(ws: Any, sql: Any) -> None:
    c, _ = ws
    expected = _oracle(sql, _held_sql(_local_today(c)))
    out = runner.invoke(app, ["tags", "list", "-t", T, "-w", str(c.root)])
    assert out.exit_code == 0, out.output
    for tag in ("dormant", "high_net_worth"):
        line = next(x for x in out.output.splitlines() if f" {tag} " in x)
        assert re.search(rf"\b{expected[tag]:,}\b", line), line
    assert f"tag_holders v1 #{shipped().definition_hash('tag_holders')}" in \
        out.output.replace("\n", "")


# --- segment sizes -------------------------------------------------------------------------


def test_segment_sizes_are_the_members_on_the_newest_build_date(ws: Any, sql: Any) -> None:
    c, _ = ws
    newest = sql.execute("SELECT max(as_of) FROM segment_members").fetchone()[0]
    expected = _oracle(sql, f"""SELECT segment_id, count(DISTINCT customer_id)
        FROM segment_members WHERE as_of = DATE '{newest}' GROUP BY 1""")
    day, got, sized = figures.segment_sizes(c, OPS)
    assert day == newest and got.values == expected
    assert sized == {"active_traders", "rich", "nobody"}  # not "later", created since
    assert got.get("nobody") == 0 and "nobody" not in got.values
    # the same members as evaluating each expression again
    for segment_id in ("active_traders", "rich"):
        _, members = Segments(c).members(T, segment_id, day)
        assert got.values[segment_id] == members.num_rows > 0


def test_segment_list_cli(ws: Any, sql: Any) -> None:
    c, _ = ws
    n = sql.execute("SELECT count(DISTINCT customer_id) FROM segment_members WHERE "
                    "segment_id = 'active_traders'").fetchone()[0]
    out = runner.invoke(app, ["segment", "list", "-t", T, "-w", str(c.root)])
    assert out.exit_code == 0, out.output
    rows = {x.split()[1]: x for x in out.output.splitlines() if x.startswith("│")
            and len(x.split()) > 2}
    assert f"{n:,}" in rows["active_traders"] and " 0 " in rows["nobody"]
    assert "–" in rows["later"]
    assert "segment_size v1" in out.output


# --- lifecycle ----------------------------------------------------------------------------


STAGE_ON = """WITH ranked AS (
    SELECT customer_id, to_stage, row_number() OVER (PARTITION BY customer_id
           ORDER BY date DESC, seq DESC) AS rn
    FROM lifecycle_transitions WHERE as_of = DATE '{as_of}' AND date <= DATE '{day}')
  SELECT customer_id, to_stage FROM ranked WHERE rn = 1"""


def test_customers_per_stage_and_flows_come_from_the_history(ws: Any, sql: Any) -> None:
    c, r = ws
    # from the transition history (a row holds from its date until the customer's next row)
    on_end = STAGE_ON.format(as_of=r.as_of, day=r.as_of)
    on_start = STAGE_ON.format(as_of=r.as_of, day=r.flow_start)
    stages = _oracle(sql, f"SELECT to_stage, count(*) FROM ({on_end}) GROUP BY 1")
    flows = _oracle(sql, f"""SELECT coalesce(s.to_stage, 'new'), e.to_stage, count(*)
        FROM ({on_end}) e LEFT JOIN ({on_start}) s USING (customer_id) GROUP BY 1, 2""")
    got = figures.lifecycle(c, OPS, r.as_of)
    assert got.stages.values == stages and sum(stages.values()) == 600
    assert got.flows.values == flows and sum(flows.values()) == 600
    assert {k: v for k, v in r.counts.items() if v} == stages  # the run's own counting
    assert r.flow_start == r.as_of - dt.timedelta(days=91)
    assert any(a != b for a, b in flows) and any(a == "new" for a, _ in flows)
    assert [m["metric"] for m in got.stages.metrics + got.flows.metrics] == [
        "lifecycle_customers", "lifecycle_flow_customers"]


def test_lifecycle_customers_by_month_is_the_months_last_run(ws: Any) -> None:
    c, r = ws
    start = r.as_of.replace(day=1)
    a = answer(c, OPS, "lifecycle_customers", grain="month", start=start, end=r.as_of)
    assert [(x["period"], x["value"]) for x in a.rows] == [(start, 600)]


# --- preference groups and ingest ------------------------------------------------------------


def test_preference_group_plans(ws: Any, sql: Any) -> None:
    c, _ = ws
    expected = _oracle(sql, "SELECT group_id, status, count(DISTINCT customer_id) "
                            "FROM preference_group_members GROUP BY 1, 2")
    got = pref_groups.plan_sizes(c, OPS)
    assert got.values == expected and sum(expected.values()) > 0
    out = runner.invoke(app, ["groups", "plan", "fund_sip", "-t", T, "-w", str(c.root)])
    assert out.exit_code == 0, out.output
    expected = _oracle(sql, "SELECT group_id, status, count(*) FROM preference_group_members "
                            "GROUP BY 1, 2")  # the plan just made again: same rows
    counts = ", ".join(f"{s} {expected.get(('fund_sip', s), 0):,}"
                       for s in ("member", "invite", "left", "excluded"))
    assert counts in out.output.replace("\n", "")
    assert "preference_group_customers v1" in out.output
    listed = runner.invoke(app, ["groups", "list", "-t", T, "-w", str(c.root)])
    assert listed.exit_code == 0 and "preference_group_customers v1" in listed.output


def test_ingest_totals(ws: Any, sql: Any) -> None:
    c, _ = ws
    first = sql.execute("SELECT min(CAST(started_at + INTERVAL 8 HOUR AS DATE)) FROM ingest_log"
                        ).fetchone()[0]
    expected = sql.execute("SELECT sum(rows_in), sum(loaded), sum(quarantined), "
                           "sum(duplicates) FROM ingest_log").fetchone()
    got = ingest_totals(c, first, T)
    assert [got.rows[m] for m in ("rows_read", "rows_loaded", "rows_quarantined",
                                  "duplicate_rows")] == list(expected)
    assert expected[0] == expected[1] + expected[2] + expected[3] and expected[2] > 0
    assert {m["metric"] for m in got.metrics} == {"rows_read", "rows_loaded",
                                                 "rows_quarantined", "duplicate_rows"}
    # a scoped caller does not get a tenant-wide figure, but does get his tags
    adv = Principal(T, "adv", "advisor", advisor_id="nobody")
    with pytest.raises(PermissionDeniedError, match="tenant-wide"):
        answers(c, adv, ["rows_read"])
