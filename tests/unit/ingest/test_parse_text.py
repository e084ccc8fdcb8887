"""Parsing text values (CSV, JSON Lines) into contract types: what is accepted, exactly.

A text value is accepted only in the plain shapes an export writes: ``[+-]digits`` for
integers (at most 18 digits), ``[+-]digits[.digits]`` within the column's precision and scale
for decimals, ``YYYY-MM-DD`` or ``YYYYMMDD`` for dates, ``YYYY-MM-DD[ T]HH:MM[:SS[.f…]]`` or
``YYYYMMDDHHMMSS`` for timestamps. DuckDB's own casts accept more (inner whitespace, ``1e3``,
``1_000``, ``2024-1-5``, ``2024/01/05``…); none of that may slip through. Surrounding spaces
are padding and are trimmed before parsing; any other whitespace makes the value invalid.

The second test compares staging against the rules written as regular expressions (how
staging parsed text before it had a cast-and-compare fast path) on generated strings.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from caifu.adapters.engines.duckdb import connect
from caifu.data.contracts import Column, Table
from caifu.pipelines.staging import REASONS, ROW, StagingOptions, check_rows

T = Table("parsed", "解析", "lake", ("k",), (
    Column("k", "string", "键", required=True),
    Column("i", "int", "整数"),
    Column("d", "decimal", "金额", precision=18, scale=2),
    Column("d0", "decimal", "整金额", precision=10, scale=0),
    Column("day", "date", "日期"),
    Column("ts", "timestamp", "时间"),
    Column("name", "string", "名称"),
))
OPTS = StagingOptions(today=dt.date(2100, 1, 1), now_utc=dt.datetime(2100, 1, 1))
COLS = ("i", "d", "d0", "day", "ts", "name")

_con = connect()


_RAW = "raw_values"
_SCHEMA = pa.schema([*((c, pa.string()) for c in COLS), ("k", pa.string()), (ROW, pa.int64())])
_con.con.register(_RAW, _SCHEMA.empty_table())
# staging's SQL for a table of this shape, compiled once: Ibis compiles an expression of every
# check in ~0.5 s, and the generated cases would pay it per example — the values change, the
# query does not
_SQL = str(_con.compile(check_rows(_con.table(_RAW), T, OPTS).order_by(ROW)))


def _parse(column: str, values: list[str]) -> list[tuple[Any, str]]:
    """(typed value, reasons) for each text value of ``column``."""
    data = {c: pa.array([None] * len(values), pa.string()) for c in COLS}
    data["k"] = pa.array(["k"] * len(values), pa.string())
    data[column] = pa.array(values, pa.string())
    data[ROW] = pa.array(range(1, len(values) + 1), pa.int64())
    _con.con.register(_RAW, pa.table(data, schema=_SCHEMA))
    out = _con.con.sql(_SQL).to_arrow_table().to_pydict()
    return list(zip(out[column], out[REASONS], strict=True))


def _bad(column: str, code: str) -> tuple[None, str]:
    return None, f"{column}:{code};"


INT = {
    "12": 12, "+12": 12, "-12": -12, "-0": 0, "007": 7, " 12 ": 12,
    "123456789012345678": 123456789012345678, "-123456789012345678": -123456789012345678,
    "1234567890123456789": None, "1e3": None, "12.0": None, "1_000": None, "0x1F": None,
    "0b1": None, "\t12": None, "12\n": None, "1 2": None, "１２": None, "+": None, "-": None,
    "--1": None, "+-1": None, "1-": None, "inf": None, "abc": None,
}
DEC = {
    "12.30": Decimal("12.30"), "12.3": Decimal("12.30"), "12": Decimal("12.00"),
    "12.": Decimal("12.00"), "+1.5": Decimal("1.50"), "-0.50": Decimal("-0.50"),
    "0012.5": Decimal("12.50"), "-12.34": Decimal("-12.34"), "0": Decimal("0.00"),
    "1234567890123456.78": Decimal("1234567890123456.78"),
    ".5": None, "-.5": None, "1e3": None, "1E3": None, "1,000.00": None, "1_0.5": None,
    "\t1.5": None, "1.5\n": None, "1. 5": None, "12345678901234567.8": None, "+-1": None,
    "1.2.3": None, "NaN": None, "0x10": None, "１.５": None,
    "12.345": "DECIMAL_SCALE", "-12.345": "DECIMAL_SCALE", "0.001": "DECIMAL_SCALE",
}
DEC0 = {"12": Decimal(12), "-7": Decimal(-7), "12.": Decimal(12), "1234567890": Decimal(1234567890),
        "12.5": "DECIMAL_SCALE", "12345678901": None, "1e2": None}
DAY = {
    "2024-01-05": dt.date(2024, 1, 5), "20240105": dt.date(2024, 1, 5),
    " 2024-01-05 ": dt.date(2024, 1, 5), "0999-12-31": dt.date(999, 12, 31),
    "2024-02-29": dt.date(2024, 2, 29), "0001-01-01": dt.date(1, 1, 1),
    "2024-1-5": None, "2024-01-5": None, "2024/01/05": None, "2024.01.05": None,
    "2024 01 05": None, "2023-02-29": None, "2024-13-01": None, "0000-01-01": None,
    "00000101": None, "24-01-05": None, "2024-01-05T00:00": None, "2024-01-05 00:00:00": None,
    "2024-01-05\n": None, "２０２４-01-05": None, "+2024-01-05": None, "-2024-01-05": None,
    "2024010": None, "202401055": None, "20241301": None, "2024-01-05 (BC)": None,
    "12024-01-05": None, "2024-001-05": None, "2024-01-005": None,
}
TS = {
    "2024-01-05 09:30:00": dt.datetime(2024, 1, 5, 9, 30),
    "2024-01-05T09:30:00": dt.datetime(2024, 1, 5, 9, 30),
    "2024-01-05 09:30": dt.datetime(2024, 1, 5, 9, 30),
    "2024-01-05T09:30": dt.datetime(2024, 1, 5, 9, 30),
    "2024-01-05 09:30:07.5": dt.datetime(2024, 1, 5, 9, 30, 7, 500000),
    "2024-01-05 09:30:07.500": dt.datetime(2024, 1, 5, 9, 30, 7, 500000),
    "2024-01-05 09:30:07.123456": dt.datetime(2024, 1, 5, 9, 30, 7, 123456),
    "2024-01-05 09:30:07.000000": dt.datetime(2024, 1, 5, 9, 30, 7),
    "20240105093007": dt.datetime(2024, 1, 5, 9, 30, 7),
    "0999-12-31 23:59:59": dt.datetime(999, 12, 31, 23, 59, 59),
    "2024-01-05 09:30:07.1234567": None, "2024-01-05 09:30:07.": None,
    "2024-01-05 9:30:00": None, "2024-01-05  09:30:00": None, "2024-01-05 09:30:00+08": None,
    "2024-01-05 09:30:00Z": None, "2024-01-05t09:30:00": None, "2024-01-05": None,
    "2024-1-5 09:30:00": None, "2024/01/05 09:30:00": None, "0000-01-01 00:00:00": None,
    "00000101000000": None, "2024-01-05 25:00:00": None, "2024-01-05 09:60:00": None,
    "2024-01-05 09:30:0": None, "2024-01-05 09:3:00": None, "2024-01-05\t09:30:00": None,
    "2024-01-05T09:30:00T": None, "2024-01-05 09:30:00\n": None, "202401050930": None,
    "2024010509300": None, "20241305093000": None, "2024-01-05 09:30:07,5": None,
    "2024-01-05 09:30:07.5 ": dt.datetime(2024, 1, 5, 9, 30, 7, 500000),
}


def _expected(column: str, table: dict[str, Any], code: str) -> list[tuple[Any, str]]:
    out: list[tuple[Any, str]] = []
    for want in table.values():
        if want is None:
            out.append(_bad(column, code))
        elif want == "DECIMAL_SCALE":
            out.append(_bad(column, "DECIMAL_SCALE"))
        else:
            out.append((want, ""))
    return out


def test_text_loses_surrounding_spaces_only() -> None:
    values = ["a", " a", "a ", "  a b  ", "\ta", "a\t", "\u3000a", " ", "   ", " \t ", "%", "_ _"]
    assert _parse("name", values) == [
        ("a", ""), ("a", ""), ("a", ""), ("a b", ""), ("\ta", ""), ("a\t", ""),
        # whitespace-only text is missing, whatever the whitespace (issue 13)
        ("\u3000a", ""), (None, ""), (None, ""), (None, ""), ("%", ""), ("_ _", "")]


def test_integers() -> None:
    assert _parse("i", list(INT)) == _expected("i", INT, "NOT_INTEGER")


def test_decimals() -> None:
    assert _parse("d", list(DEC)) == _expected("d", DEC, "NOT_DECIMAL")
    assert _parse("d0", list(DEC0)) == _expected("d0", DEC0, "NOT_DECIMAL")


def test_dates() -> None:
    assert _parse("day", list(DAY)) == _expected("day", DAY, "NOT_DATE")


def test_timestamps() -> None:
    assert _parse("ts", list(TS)) == _expected("ts", TS, "NOT_TIMESTAMP")


# --- the same rules as regular expressions, compared on generated strings ----------------------


def _regex_rules(column: str, s: ibis.StringValue) -> tuple[ibis.Value, ibis.BooleanValue]:
    """(typed value or NULL, valid) by the regular expressions staging used to apply."""
    if column == "i":
        ok = s.re_search(r"^[+-]?[0-9]{1,18}$")
        return ibis.ifelse(ok, s.try_cast("int64"), ibis.null()), ok
    if column in ("d", "d0"):
        whole, scale = (16, 2) if column == "d" else (10, 0)
        ok = s.re_search(rf"^[+-]?[0-9]{{1,{whole}}}(\.[0-9]{{0,{scale}}})?$")
        v = s.try_cast(f"decimal({18 if column == 'd' else 10},{scale})")
        return ibis.ifelse(ok, v, ibis.null()), ok
    if column == "day":
        iso = ibis.cases(
            (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), s),
            (s.re_search(r"^[0-9]{8}$"),
             s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2)),
            else_=ibis.null().cast("string"))
        v = ibis.ifelse(iso.startswith("0000"), ibis.null().cast("date"), iso.try_cast("date"))
        return v, v.notnull()
    norm = ibis.cases(
        (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"),
         s.replace("T", " ")),
        (s.re_search(r"^[0-9]{14}$"),
         s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2) + " "
         + s.substr(8, 2) + ":" + s.substr(10, 2) + ":" + s.substr(12, 2)),
        else_=ibis.null().cast("string"))
    v = ibis.ifelse(norm.startswith("0000"), ibis.null().cast("timestamp"),
                    norm.try_cast("timestamp"))
    return v, v.notnull()


def _by_regex(column: str, values: list[str]) -> list[tuple[Any, str]]:
    t = ibis.memtable(pa.table({ROW: pa.array(range(1, len(values) + 1), pa.int64()),
                                "s": pa.array(values, pa.string())}))
    v, ok = _regex_rules(column, t.s)  # generated without surrounding spaces: nothing to trim
    out = _con.to_pyarrow(t.select(ROW, v=v, ok=ok).order_by(ROW)).to_pydict()
    return list(zip(out["v"], out["ok"], strict=True))


_PIECES = st.sampled_from([
    "0", "1", "2", "9", "00", "12", "2024", "0000", "0999", "20240105", "093007", "-", "+",
    ".", ":", " ", "T", "t", "e", "E", "_", "x", "/", ",", "\t", "\n", "１", "Z", "01", "13",
    "29", "30", "31", "60", "24", "1234567", "99999999999", "-01-", "-02-29", " 09:30",
    ":07", ".5", ".123456", "0x",
])
# whitespace-only text is missing (test_text_loses_surrounding_spaces_only and the ingest
# probes pin that rule), so the regular expressions are compared on everything else
_SHAPED = st.lists(_PIECES, min_size=1, max_size=8).map("".join).filter(
    lambda x: x == x.strip(" ") and x.strip() != "")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(COLS[:-1]), st.lists(_SHAPED, min_size=1, max_size=40))
@example("ts", ["2024-01-05 09:30:07.5", "2024-01-05T09:30", "20240105093007",
                "2024-01-05 09:30:07.", "0000-01-01 00:00"])
@example("day", ["2024-01-05", "20240105", "0000-01-05", "2024-1-5", "2024/01/05"])
@example("d", ["12.", "12.345", ".5", "1e3", "+0", "1234567890123456"])
@example("i", ["1e3", "+0", "-123456789012345678", "1234567890123456789", "1_0"])
def test_same_as_the_regular_expressions(column: str, values: list[str]) -> None:
    got = _parse(column, values)
    want = _by_regex(column, values)
    assert [(v, r == "") for v, r in got] == [(v, ok) for v, ok in want]
