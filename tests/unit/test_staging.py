"""Staging expressions on their own: classification of rows and its fast path."""

from __future__ import annotations

import ibis
from hypothesis import given, settings
from hypothesis import strategies as st

from caifu.adapters.engines.duckdb import connect
from caifu.data.contracts import Column, Table
from caifu.pipelines.staging import FATE, REASONS, ROW, classify, classify_fresh, key_collisions

FACTS = Table("facts", "测试事实", "lake", ("k",), (
    Column("k", "string", "键", required=True), Column("v", "int", "值")))
MASTER = Table("master", "测试主数据", "sor", ("k",), (
    Column("k", "string", "键", required=True), Column("v", "int", "值")))

_con = connect()


def _checked(rows: list[tuple[str, int, str]]) -> ibis.Table:
    return ibis.memtable({
        ROW: list(range(1, len(rows) + 1)), "k": [r[0] for r in rows],
        "v": [r[1] for r in rows], REASONS: [r[2] for r in rows]},
        schema={ROW: "int64", "k": "string", "v": "int64", REASONS: "string"})


def _fates(expr: ibis.Table) -> list[tuple[int, str, str]]:
    df = _con.execute(expr.order_by(ROW))
    return list(zip(df[ROW], df[FATE], df[REASONS], strict=True))


def test_fates_for_facts_and_master_data() -> None:
    rows = [("a", 1, ""), ("b", 2, ""), ("a", 1, ""), ("b", 3, ""), ("c", 4, "v:ENUM;"),
            ("d", 5, ""), ("e", 6, "")]
    stored = ibis.memtable({"k": ["d", "e"], "v": [5, 7]})
    assert _fates(classify(_checked(rows), FACTS, stored)) == [
        (1, "insert", ""), (2, "insert", ""), (3, "duplicate", ""),
        (4, "reject", "key:CONFLICT_IN_FILE;"), (5, "reject", "v:ENUM;"),
        (6, "duplicate", ""), (7, "reject", "key:CONFLICT_WITH_STORED;")]
    # master data: a stored key with other content is an update, not a conflict
    assert _fates(classify(_checked(rows), MASTER, stored))[6] == (7, "update", "")
    assert [int(_con.execute(n)) for n in key_collisions(_checked(rows), FACTS, stored)] == [4, 2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 2),
                          st.sampled_from(["", "", "v:ENUM;"])), max_size=12),
       st.lists(st.sampled_from("fghij"), unique=True, max_size=3))
def test_fast_path_agrees_whenever_there_are_no_collisions(
    rows: list[tuple[str, int, str]], stored_keys: list[str]
) -> None:
    checked = _checked(rows)
    stored = (ibis.memtable({"k": stored_keys, "v": [0] * len(stored_keys)},
                            schema={"k": "string", "v": "int64"}) if stored_keys else None)
    collisions = sum(int(_con.execute(n)) for n in key_collisions(checked, FACTS, stored))
    full = _fates(classify(checked, FACTS, stored))
    if collisions == 0:
        assert _fates(classify_fresh(checked)) == full
    else:
        assert any(f in ("duplicate", "update") or r.startswith("key:") for _, f, r in full)
