"""Staging: from raw source rows to typed rows, each with its fate and reasons.

``check_rows`` parses every contract column from what the file holds (text or a native
Parquet type) and checks it against the contract: required, type, scale, enum, range,
pattern, length, identifier checksums, not in the future. ``check_references`` adds unknown
references. ``classify`` decides each row's fate against the rows already stored:

    insert     a key not seen before
    update     a stored key with different content (system-of-record tables only)
    duplicate  the same key and content as a stored row or an earlier row in the file
    reject     failed a check, or a key repeated with different content (facts never change)

Reasons are ``column:CODE`` joined by ``;`` so a row rejected for several reasons says all of
them. Every expression here is engine-agnostic Ibis; nothing opens a connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import reduce

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir

from caifu.data.contracts import Column, Table
from caifu.pipelines import checks

REASONS = "_reasons"
ROW = "_row"
FATE = "_fate"
_TRUE = ("true", "1", "y", "yes", "t", "是")
_FALSE = ("false", "0", "n", "no", "f", "否")


@dataclass(frozen=True)
class StagingOptions:
    today: dt.date  # the tenant's calendar date: dates after it are in the future
    now_utc: dt.datetime  # timestamps after it (plus clock skew) are in the future
    utc_offset_hours: int = 0  # source timestamps are local time at this offset
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)


def _reason(cond: ir.BooleanValue, col: str, code: str) -> ir.StringValue:
    return ibis.ifelse(cond.fill_null(False), ibis.literal(f"{col}:{code};"), ibis.literal(""))


def _text(v: ir.Value) -> ir.StringValue:
    s = v.cast("string").strip()
    return ibis.ifelse(s == "", ibis.null().cast("string"), s)


def _sql_type(col: Column) -> dtypes.DataType:
    return {
        "string": dtypes.string,
        "int": dtypes.int64,
        "float": dtypes.float64,
        "date": dtypes.date,
        "timestamp": dtypes.timestamp,
        "bool": dtypes.boolean,
    }.get(col.kind) or dtypes.Decimal(col.precision, col.scale)


def _parse_text(col: Column, s: ir.StringValue) -> tuple[ir.Value, ir.StringValue]:
    """(typed value or NULL, reason) for a text column."""
    n = col.name
    match col.kind:
        case "string":
            return s, ibis.literal("")
        case "int":
            ok = s.re_search(r"^[+-]?[0-9]{1,18}$")
            return ibis.ifelse(ok, s.try_cast("int64"), ibis.null()), _reason(~ok, n, "NOT_INTEGER")
        case "float":
            v = s.try_cast("float64")
            return v, _reason(v.isnull(), n, "NOT_NUMBER")
        case "decimal":
            whole = col.precision - col.scale
            pattern = rf"^[+-]?[0-9]{{1,{whole}}}(\.[0-9]{{0,{col.scale}}})?$"
            ok = s.re_search(pattern)
            too_fine = s.re_search(rf"^[+-]?[0-9]+\.[0-9]{{{col.scale + 1},}}$")
            reason = ibis.cases(
                (ok, ""),
                (too_fine, f"{n}:DECIMAL_SCALE;"),
                else_=f"{n}:NOT_DECIMAL;",
            )
            return ibis.ifelse(ok, s.try_cast(_sql_type(col)), ibis.null()), reason
        case "date":
            iso = ibis.cases(
                (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), s),
                (s.re_search(r"^[0-9]{8}$"),
                 s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2)),
                else_=ibis.null().cast("string"),
            )
            # DuckDB reads year 0000 as 1 BC; no broker record is that old, and Python can't hold it.
            v = ibis.ifelse(iso.startswith("0000"), ibis.null().cast("date"), iso.try_cast("date"))
            return v, _reason(v.isnull(), n, "NOT_DATE")
        case "timestamp":
            norm = ibis.cases(
                (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"),
                 s.replace("T", " ")),
                (s.re_search(r"^[0-9]{14}$"),
                 s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2) + " "
                 + s.substr(8, 2) + ":" + s.substr(10, 2) + ":" + s.substr(12, 2)),
                else_=ibis.null().cast("string"),
            )
            v = ibis.ifelse(norm.startswith("0000"), ibis.null().cast("timestamp"),
                            norm.try_cast("timestamp"))
            return v, _reason(v.isnull(), n, "NOT_TIMESTAMP")
        case "bool":
            low = s.lower()
            v = ibis.cases((low.isin(_TRUE), True), (low.isin(_FALSE), False),
                           else_=ibis.null().cast("boolean"))
            return v, _reason(v.isnull(), n, "NOT_BOOLEAN")
    raise AssertionError(col.kind)


def _parse_native(col: Column, v: ir.Value) -> tuple[ir.Value, ir.StringValue]:
    """(typed value, reason) for a column that arrived typed (Parquet)."""
    n = col.name
    target = _sql_type(col)
    if col.kind == "decimal" and v.type().is_numeric():
        out = v.try_cast(target)
        exact = (v.cast("decimal(38,10)") == out.cast("decimal(38,10)")) | out.isnull()
        return out, ibis.cases((v.notnull() & out.isnull(), f"{n}:NOT_DECIMAL;"),
                               (~exact, f"{n}:DECIMAL_SCALE;"), else_="")
    out = v.try_cast(target)
    return out, _reason(v.notnull() & out.isnull(), n, f"NOT_{col.kind.upper()}")


def check_rows(raw: ir.Table, contract: Table, opts: StagingOptions) -> ir.Table:
    """Typed contract columns plus ``_row`` and ``_reasons`` ('' when the row passes)."""
    typed: dict[str, ir.Value] = {}
    reasons: list[ir.StringValue] = []
    texts: dict[str, ir.StringValue] = {}
    for col in contract.columns:
        if col.name not in raw.columns:
            typed[col.name] = ibis.null().cast(_sql_type(col))
            if col.required:
                reasons.append(ibis.literal(f"{col.name}:REQUIRED;"))
            continue
        value = raw[col.name]
        if value.type().is_string() or value.type().is_null():
            s = _text(value)
            texts[col.name] = s
            out, reason = _parse_text(col, s)
            present = s.notnull()
        else:
            out, reason = _parse_native(col, value)
            present = value.notnull()
            if col.kind == "string":
                texts[col.name] = out
        if col.kind == "timestamp" and opts.utc_offset_hours:
            out = out - ibis.interval(hours=opts.utc_offset_hours)
        typed[col.name] = out
        reasons.append(ibis.ifelse(present, reason, ibis.literal("")))
        if col.required:
            reasons.append(_reason(~present, col.name, "REQUIRED"))
        reasons.extend(_value_rules(col, out, opts))
    for col in contract.columns:
        s = texts.get(col.name)
        if s is None:
            continue
        if col.check:
            code = checks.check(col.check, s, opts.today)
            reasons.append(ibis.ifelse(s.notnull() & code.notnull(),
                                       col.name + ":" + code + ";", ""))
        for name, other, when in col.checks_when:
            code = checks.check(name, s, opts.today)
            applies = typed[other] == when
            reasons.append(ibis.ifelse(applies.fill_null(False) & s.notnull() & code.notnull(),
                                       col.name + ":" + code + ";", ""))
    row = raw[ROW] if ROW in raw.columns else ibis.row_number() + 1
    all_reasons = reduce(lambda a, b: a.concat(b), reasons, ibis.literal(""))
    return raw.select(**{ROW: row.cast("int64")}, **typed, **{REASONS: all_reasons})


def _value_rules(col: Column, v: ir.Value, opts: StagingOptions) -> list[ir.StringValue]:
    n = col.name
    out: list[ir.StringValue] = []
    if col.enum is not None:
        out.append(_reason(v.notnull() & ~v.isin(col.enum), n, "ENUM"))
    if col.min is not None:
        out.append(_reason(v < ibis.literal(col.min, type=_sql_type(col)), n, "BELOW_MIN"))
    if col.max is not None:
        out.append(_reason(v > ibis.literal(col.max, type=_sql_type(col)), n, "ABOVE_MAX"))
    if col.pattern is not None:
        out.append(_reason(~v.re_search(col.pattern), n, "PATTERN"))
    if col.max_length is not None:
        out.append(_reason(v.length() > col.max_length, n, "TOO_LONG"))
    if col.not_future and col.kind == "date":
        out.append(_reason(v > opts.today, n, "FUTURE"))
    if col.not_future and col.kind == "timestamp":
        out.append(_reason(v > opts.now_utc + opts.clock_skew, n, "FUTURE"))
    return out


def check_references(checked: ir.Table, contract: Table,
                     keys: dict[str, ir.Table]) -> ir.Table:
    """Flag values that refer to a row that does not exist.

    ``keys`` maps a referenced table name to a one-column table ``key`` of its stored keys.
    """
    reasons: list[ir.StringValue] = []
    for col, ref_table, _ in contract.refs:
        if ref_table not in keys:
            continue
        known = keys[ref_table]["key"]
        value = checked[col.name]
        reasons.append(_reason(value.notnull() & ~value.isin(known), col.name, "UNKNOWN_REF"))
    if not reasons:
        return checked
    combined = reduce(lambda a, b: a.concat(b), reasons, checked[REASONS])
    return checked.mutate(**{REASONS: combined})


def _same(left: ir.Table, right: ir.Table, columns: list[str], prefix: str) -> ir.BooleanValue:
    parts = [left[c].identical_to(right[prefix + c]) for c in columns]
    return reduce(lambda a, b: a & b, parts, ibis.literal(True))


def classify(checked: ir.Table, contract: Table, stored: ir.Table | None) -> ir.Table:
    """Every input row once, with ``_fate`` and, for rejects, ``_reasons``.

    ``stored`` holds the table's current rows (contract columns) or is None when empty.
    """
    key = list(contract.key)
    content = [c for c in contract.column_names if c not in contract.key]
    cols = [ROW, *contract.column_names, REASONS]
    bad = checked.filter(checked[REASONS] != "").mutate(**{FATE: ibis.literal("reject")})
    valid = checked.filter(checked[REASONS] == "")

    first_rows = valid.group_by(key).aggregate(_first=valid[ROW].min())
    marked = valid.join(first_rows, key).mutate(_is_first=lambda t: t[ROW] == t["_first"])
    firsts = marked.filter(marked["_is_first"]).select(cols)
    later = marked.filter(~marked["_is_first"]).select(cols)

    f = "_f_"
    ref = firsts.select(*key, **{f + c: firsts[c] for c in content})
    later_j = later.join(ref, key)
    later_same = _same(later_j, later_j, content, f)
    later_out = later_j.select(*[c for c in cols if c != REASONS], **{
        REASONS: ibis.ifelse(later_same, "", "key:CONFLICT_IN_FILE;"),
        FATE: ibis.ifelse(later_same, "duplicate", "reject"),
    })

    if stored is None:
        first_out = firsts.mutate(**{FATE: ibis.literal("insert")})
    else:
        s = "_s_"
        stored_r = stored.select(*key, _stored=ibis.literal(True),
                                 **{s + c: stored[c] for c in content})
        j = firsts.left_join(stored_r, key).select(cols + ["_stored"] + [s + c for c in content])
        same = _same(j, j, content, s)
        new = j["_stored"].isnull()
        if contract.store == "sor":
            fate = ibis.cases((new, "insert"), (same, "duplicate"), else_="update")
            reason = ibis.literal("")
        else:  # facts never change: a stored key with other content is a conflict
            fate = ibis.cases((new, "insert"), (same, "duplicate"), else_="reject")
            reason = ibis.ifelse(new | same, "", "key:CONFLICT_WITH_STORED;")
        first_out = j.select(*[c for c in cols if c != REASONS], **{REASONS: reason, FATE: fate})
    out_cols = [*cols, FATE]
    return ibis.union(bad.select(out_cols), later_out.select(out_cols), first_out.select(out_cols))
