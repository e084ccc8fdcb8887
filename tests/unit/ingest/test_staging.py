"""Staging expressions on their own: every row's fate, against a plain-Python model."""

from __future__ import annotations

import ibis
from hypothesis import given, settings
from hypothesis import strategies as st

from caifu.adapters.engines.duckdb import connect
from caifu.data.contracts import Column, Table
from caifu.pipelines.staging import FATE, REASONS, ROW, classify, fate_overrides

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


def _stored(stored: dict[str, int]) -> ibis.Table | None:
    if not stored:
        return None
    return ibis.memtable({"k": list(stored), "v": list(stored.values())},
                         schema={"k": "string", "v": "int64"})


def _fates(expr: ibis.Table) -> list[tuple[int, str, str]]:
    df = _con.execute(expr.order_by(ROW))
    return list(zip(df[ROW], df[FATE], df[REASONS], strict=True))


def _model(rows: list[tuple[str, int, str]], stored: dict[str, int],
           master: bool) -> list[tuple[int, str, str]]:
    """The rules of DESIGN/ingest, written the obvious way."""
    out, first = [], {}
    for n, (k, v, reasons) in enumerate(rows, start=1):
        if reasons:
            out.append((n, "reject", reasons))
        elif k in first:
            same = first[k] == v
            out.append((n, "duplicate" if same else "reject",
                        "" if same else "key:CONFLICT_IN_FILE;"))
        else:
            first[k] = v
            if k not in stored:
                out.append((n, "insert", ""))
            elif stored[k] == v:
                out.append((n, "duplicate", ""))
            elif master:
                out.append((n, "update", ""))
            else:
                out.append((n, "reject", "key:CONFLICT_WITH_STORED;"))
    return out


def test_fates_for_facts_and_master_data() -> None:
    rows = [("a", 1, ""), ("b", 2, ""), ("a", 1, ""), ("b", 3, ""), ("c", 4, "v:ENUM;"),
            ("d", 5, ""), ("e", 6, "")]
    stored = {"d": 5, "e": 7}
    assert _fates(classify(_checked(rows), FACTS, _stored(stored))) == [
        (1, "insert", ""), (2, "insert", ""), (3, "duplicate", ""),
        (4, "reject", "key:CONFLICT_IN_FILE;"), (5, "reject", "v:ENUM;"),
        (6, "duplicate", ""), (7, "reject", "key:CONFLICT_WITH_STORED;")]
    assert _fates(classify(_checked(rows), MASTER, _stored(stored)))[6] == (7, "update", "")
    # only the rows that are not plain inserts or rejects are materialised
    overrides = _con.execute(fate_overrides(_checked(rows), FACTS, _stored(stored)))
    assert sorted(overrides[ROW]) == [3, 4, 6, 7]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 2),
                          st.sampled_from(["", "", "v:ENUM;"])), max_size=14),
       st.dictionaries(st.sampled_from("efghij"), st.integers(0, 2), max_size=4),
       st.booleans())
def test_fates_match_the_model(rows: list[tuple[str, int, str]], stored: dict[str, int],
                               master: bool) -> None:
    contract = MASTER if master else FACTS
    assert _fates(classify(_checked(rows), contract, _stored(stored))) == _model(rows, stored, master)
