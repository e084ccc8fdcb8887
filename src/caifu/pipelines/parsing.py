"""Parsing a contract column from what a source file holds: text, or a native Parquet type.

Each parse gives the typed value and its findings (``column:CODE`` where the value is not of
the column's type); ``caifu.pipelines.staging`` checks the typed values against the rest of
the contract and decides each row's fate. Every expression here is engine-agnostic Ibis, and
runs on DuckDB and Spark alike: the fast paths are plain SQL, the regular expressions RE2- and
Java-compatible.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import reduce

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir

from caifu.data.contracts import SEPARATORS, SPACES, Column

_TRUE = ("true", "1", "y", "yes", "t", "是")
_FALSE = ("false", "0", "n", "no", "f", "否")


# A finding is (condition, reason text): the row breaks a rule where the condition holds.
Finding = tuple[ir.BooleanValue, ir.StringValue]


def finding(cond: ir.BooleanValue, col: str, code: str) -> Finding:
    return cond.fill_null(False), ibis.literal(f"{col}:{code};")


@ibis.udf.scalar.builtin(name="trim")
def _trim(s: str, chars: str) -> str:  # type: ignore[empty-body]
    """SQL TRIM(s, chars).

    Ibis's ``strip()`` compiles to TRIM with six whitespace characters, which DuckDB ran
    about 1.5x slower than TRIM of spaces alone; on a 20M-row file that was most of the
    staging time. Exports pad with spaces; a value that is only other whitespace (a tab,
    full-width spaces) is missing (``_blank``), and one with content keeps the rest.
    """


# What str.isspace() calls whitespace (Python's str.strip() removes exactly these), as a
# character class that RE2 (DuckDB) and Java (Spark) both read.
_WHITESPACE = (r"\t\n\x{0B}\x{0C}\r\x{1C}-\x{1F} \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}"
               r"\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}")
# Ranges of first characters of such a value (plus some others, such as quotes): a string
# comparison reads the inline prefix, so only these values pay for the regular expression.
_BLANK_STARTS = (("\x85", "\xa1"), ("\u1680", "\u1681"), ("\u2000", "\u2060"),
                 ("\u3000", "\u3001"))


def _blank(t: ir.StringValue) -> ir.BooleanValue:
    """The (space-trimmed, non-empty) value is all Unicode whitespace."""
    maybe = reduce(lambda a, b: a | b, ((t >= lo) & (t < hi) for lo, hi in _BLANK_STARTS),
                   t < "!")
    return ibis.cases((maybe, t.re_search(f"^[{_WHITESPACE}]+$")), else_=False)


def text_value(v: ir.Value) -> ir.StringValue:
    """The value as text, surrounding spaces removed, '' and whitespace-only values as NULL.

    TRIM copies every string, padded or not: 0.5 CPU-s per 5M values, about 2 CPU-s per
    text column of a 20M-row file. Only values that start or end with a space go through
    it; LIKE on the first and last byte costs a fifth of that. Same result for every value.
    """
    t = v.cast("string")
    t = ibis.ifelse(t.like(" %") | t.like("% "), _trim(t, " "), t).nullif("")
    return ibis.ifelse(_blank(t), ibis.null().cast("string"), t)


def sql_type(col: Column) -> dtypes.DataType:
    return {
        "string": dtypes.string,
        "int": dtypes.int64,
        "float": dtypes.float64,
        "date": dtypes.date,
        "timestamp": dtypes.timestamp,
        "bool": dtypes.boolean,
    }.get(col.kind) or dtypes.Decimal(col.precision, col.scale)


def _printed_back(s: ir.StringValue, target: dtypes.DataType | str) -> tuple[ir.Value, ir.BooleanValue]:
    """(``TRY_CAST(s)``, whether DuckDB prints that value back as exactly ``s``).

    A value its own canonical print is in a plain shape (digits, '-', one '.', the ISO
    layout), so the regular expressions below, which cost 2.5× the CPU of a cast, need only
    run for the other values: rejects and shapes like '+5', '007' or '12.5' for DECIMAL(18,2).
    Each caller guards what a canonical print allows beyond its shapes (length, year 0).
    """
    v = s.try_cast(target)
    return v, (v.cast("string") == s).fill_null(False)


def _plain_or(fast: ir.BooleanValue, slow: ir.BooleanValue) -> ir.BooleanValue:
    """``fast OR slow``, as a CASE so that DuckDB evaluates ``slow`` only where ``fast`` fails."""
    return ibis.cases((fast, True), else_=slow)


def parse_text(col: Column, s: ir.StringValue) -> tuple[ir.Value, list[Finding]]:
    """(typed value or NULL, findings) for a non-null text value.

    The accepted shapes are those of the regular expressions; ``_printed_back`` is a cheaper
    proof of the same for the common case and never accepts more (tests/unit/test_parse_text).
    """
    n = col.name
    match col.kind:
        case "string":
            return members(col, s) if col.members else (s, [])
        case "int":
            v, plain = _printed_back(s, "int64")
            # a canonical BIGINT may have 19 digits; the contract allows 18
            ok = _plain_or(plain & (s.length() <= 18), s.re_search(r"^[+-]?[0-9]{1,18}$"))
            return ibis.ifelse(ok, v, ibis.null()), [finding(~ok, n, _NOT["int"])]
        case "float":
            v = s.try_cast("float64")
            return v, [finding(v.isnull(), n, "NOT_NUMBER")]
        case "decimal":
            whole = col.precision - col.scale
            # DECIMAL(p,s) prints as [-]digits[.s digits], at most p - s whole digits
            v, plain = _printed_back(s, sql_type(col))
            ok = _plain_or(plain, s.re_search(
                rf"^[+-]?[0-9]{{1,{whole}}}(\.[0-9]{{0,{col.scale}}})?$"))
            # CASE, not ~ok & …: which reason is only worked out for the invalid values
            too_fine = ibis.cases((ok, False), else_=s.re_search(
                rf"^[+-]?[0-9]+\.[0-9]{{{col.scale + 1},}}$"))
            return ibis.ifelse(ok, v, ibis.null()), [
                finding(too_fine, n, "DECIMAL_SCALE"),
                finding(~ok & ~too_fine, n, "NOT_DECIMAL"),
            ]
        case "date":
            iso = ibis.ifelse(s.length() == 8,
                              s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2), s)
            fast, plain = _printed_back(iso, "date")
            # length 10 excludes years past 9999 and BC dates; year 0000 is 1 BC in DuckDB
            plain = plain & (iso.length() == 10) & (fast >= _FIRST_DAY).fill_null(False)
            v = ibis.cases((plain, fast), else_=_date_by_regex(s))
            return v, [finding(v.isnull(), n, "NOT_DATE")]
        case "timestamp":
            norm = ibis.ifelse(s.length() == 14, _from_14_digits(s), s.replace("T", " "))
            fast, plain = _printed_back(norm, "timestamp")
            # length 19 is YYYY-MM-DD HH:MM:SS: no fraction, no year past 9999, no BC suffix
            plain = plain & (norm.length() == 19) & (fast >= _FIRST_INSTANT).fill_null(False)
            v = ibis.cases((plain, fast), else_=_timestamp_by_regex(s))
            return v, [finding(v.isnull(), n, "NOT_TIMESTAMP")]
        case "bool":
            low = s.lower()
            v = ibis.cases((low.isin(_TRUE), True), (low.isin(_FALSE), False),
                           else_=ibis.null().cast("boolean"))
            return v, [finding(v.isnull(), n, "NOT_BOOLEAN")]
    raise AssertionError(col.kind)


def members(col: Column, s: ir.StringValue) -> tuple[ir.StringValue, list[Finding]]:
    """A set column's stored form (``caifu.data.contracts.members_of``, the same rule): the
    separators become ",", so the value framed by commas holds ``,<spelling>,`` for each
    member present, and is valid when it is nothing but known spellings between commas."""
    spellings = col.spellings
    framed = "," + s.lower().re_replace(f"^[{SPACES}]+|[{SPACES}]+$", "").re_replace(
        SEPARATORS, ",") + ","
    known = "|".join(re.escape(k) for k in sorted(spellings, key=len, reverse=True))
    ok = framed.re_search(f"^,(({known}),)+$")
    present = [ibis.ifelse(reduce(lambda a, b: a | b, (framed.contains(f",{k},")
                                                      for k, m in spellings.items() if m == member)),
                           member, ibis.null().cast("string"))
               for member in col.members or ()]
    stored = ibis.literal(",").join(present)
    return ibis.ifelse(ok, stored, ibis.null().cast("string")), [
        finding(~ok, col.name, "ENUM")]


_FIRST_DAY = ibis.literal(dt.date(1, 1, 1))
_FIRST_INSTANT = ibis.literal(dt.datetime(1, 1, 1))


def _from_14_digits(s: ir.StringValue) -> ir.StringValue:
    return (s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2) + " "
            + s.substr(8, 2) + ":" + s.substr(10, 2) + ":" + s.substr(12, 2))


def _date_by_regex(s: ir.StringValue) -> ir.DateValue:
    iso = ibis.cases(
        (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), s),
        (s.re_search(r"^[0-9]{8}$"),
         s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2)),
        else_=ibis.null().cast("string"),
    )
    # DuckDB reads year 0000 as 1 BC; no broker record is that old, and Python can't hold it.
    return ibis.ifelse(iso.startswith("0000"), ibis.null().cast("date"), iso.try_cast("date"))


def _timestamp_by_regex(s: ir.StringValue) -> ir.TimestampValue:
    norm = ibis.cases(
        (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"),
         s.replace("T", " ")),
        (s.re_search(r"^[0-9]{14}$"), _from_14_digits(s)),
        else_=ibis.null().cast("string"),
    )
    return ibis.ifelse(norm.startswith("0000"), ibis.null().cast("timestamp"),
                       norm.try_cast("timestamp"))


_NOT = {"string": "NOT_TEXT", "int": "NOT_INTEGER", "float": "NOT_NUMBER", "decimal": "NOT_DECIMAL",
        "date": "NOT_DATE", "timestamp": "NOT_TIMESTAMP", "bool": "NOT_BOOLEAN"}


def parse_native(col: Column, v: ir.Value) -> tuple[ir.Value, list[Finding]]:
    """(typed value, findings) for a non-null value that arrived typed (Parquet).

    A conversion that changes the value is a finding, never a silent rounding: 100.6 is not
    an integer, 12.345 does not fit DECIMAL(18,2), a timestamp is not a date.
    """
    n = col.name
    target = sql_type(col)
    out = v.try_cast(target)
    if v.type() == target:
        return out, []
    if col.kind == "decimal" and v.type().is_numeric():
        exact = v.try_cast("decimal(38,10)") == out.cast("decimal(38,10)")
        return out, [finding(out.isnull(), n, "NOT_DECIMAL"),
                     finding(out.notnull() & ~exact, n, "DECIMAL_SCALE")]
    if col.kind == "string":
        found = [finding(out.isnull(), n, _NOT["string"])]
        if col.members:
            out, more = members(col, out)
            found += more
        return out, found
    exact = out.try_cast(v.type()) == v
    return out, [finding(out.isnull() | ~exact, n, _NOT[col.kind])]
