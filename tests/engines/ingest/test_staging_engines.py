"""Staging rules that depend on text functions give the same answer on DuckDB and Spark."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from caifu.adapters.engines.session import EngineSession
from caifu.data.contracts import Column, Table
from caifu.pipelines.staging import REASONS, ROW, StagingOptions, check_rows

OPTS = StagingOptions(today=dt.date(2025, 6, 1), now_utc=dt.datetime(2025, 6, 1, 4))


def _check(engine: EngineSession, contract: Table, columns: dict[str, list[str | None]]
           ) -> list[dict[str, object]]:
    n = len(next(iter(columns.values())))
    raw = engine.from_arrow("staging_raw", pa.table(
        {ROW: pa.array(range(1, n + 1), pa.int64()),
         **{k: pa.array(v, pa.string()) for k, v in columns.items()}}))
    out = engine.to_arrow(check_rows(raw, contract, OPTS)).to_pylist()
    return sorted(out, key=lambda r: r[ROW])  # type: ignore[arg-type, return-value]


BLANK_NAMES = Table("people", "测试", "sor", ("k",), (
    Column("k", "string", "键", required=True),
    Column("name", "string", "姓名", required=True),
    Column("note", "string", "备注"),
    Column("born", "date", "生日", required=True),
))


def test_whitespace_only_text_is_missing_on_every_engine(engine: EngineSession) -> None:
    # every character str.strip() removes, alone and mixed; then values with content
    blanks = ["\t", "\u3000\u3000", " \u3000 ", "\u00a0", "\r\n", "\x1c\x85\u1680\u2000\u200a",
              "\u2028\u2029\u202f\u205f", "\x0b\x0c"]
    names = [*blanks, "张三", "\u3000张三", "a\tb", "\u200b"]  # U+200B is no whitespace
    rows = _check(engine, BLANK_NAMES, {
        "k": [f"k{i}" for i in range(len(names))], "name": names, "note": names,
        "born": ["\u3000"] * len(blanks) + ["2000-01-01"] * (len(names) - len(blanks))})
    assert [r[REASONS] for r in rows] == (
        ["name:REQUIRED;born:REQUIRED;"] * len(blanks) + [""] * (len(names) - len(blanks)))
    # a blank optional value is missing too, as an empty one is; content is kept as it came
    assert [r["note"] for r in rows] == [None] * len(blanks) + names[len(blanks):]
    for value in names:
        assert (value.strip() == "") == (value in blanks)


SETS = Table("answers", "测试", "sor", ("k",), (
    Column("k", "string", "键", required=True),
    Column("v", "string", "品种", members=("cash", "fixed_income", "equity"),
           aliases=(("现金管理", "cash"), ("固定收益", "fixed_income"), ("权益类", "equity"))),
))


def test_a_set_column_reads_alike_on_every_engine(engine: EngineSession) -> None:
    # separators of every kind, full-width spaces, case, repeats; then what is not a member
    values = ["权益类、现金管理", " CASH ；固定收益 ", "\u3000equity\u3000,cash", "cash,cash",
              "cash,,equity", "cash;黄金", "fixed-income", None]
    rows = _check(engine, SETS, {"k": [f"k{i}" for i in range(len(values))], "v": values})
    assert [(r["v"], r[REASONS]) for r in rows] == [
        ("cash,equity", ""), ("cash,fixed_income", ""), ("cash,equity", ""), ("cash", ""),
        (None, "v:ENUM;"), (None, "v:ENUM;"), (None, "v:ENUM;"), (None, "")]
