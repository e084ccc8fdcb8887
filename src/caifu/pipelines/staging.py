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


# A finding is (condition, reason text): the row breaks a rule where the condition holds.
Finding = tuple[ir.BooleanValue, ir.StringValue]


def _finding(cond: ir.BooleanValue, col: str, code: str) -> Finding:
    return cond.fill_null(False), ibis.literal(f"{col}:{code};")


def _reasons_of(findings: list[Finding]) -> ir.StringValue:
    """'' for a clean row; otherwise every broken rule.

    The reason text is only assembled for rows that break something: the cheap OR decides,
    and DuckDB evaluates the CASE branch for those rows alone.
    """
    if not findings:
        return ibis.literal("")
    bad = reduce(lambda a, b: a | b, (c for c, _ in findings))
    text = reduce(lambda a, b: a.concat(b),
                  (ibis.ifelse(c, t, ibis.literal("")) for c, t in findings))
    return ibis.ifelse(bad, text, ibis.literal(""))


@ibis.udf.scalar.builtin(name="trim")
def _trim(s: str, chars: str) -> str:  # type: ignore[empty-body]
    """SQL TRIM(s, chars).

    Ibis's ``strip()`` compiles to TRIM with six whitespace characters, which DuckDB ran
    about 1.5x slower than TRIM of spaces alone; on a 20M-row file that was most of the
    staging time. Exports pad with spaces; a tab or a full-width space is kept and then
    fails the column's own checks, visibly.
    """


def _text(v: ir.Value) -> ir.StringValue:
    """The value as text, surrounding spaces removed, '' as NULL."""
    return _trim(v.cast("string"), " ").nullif("")


def _sql_type(col: Column) -> dtypes.DataType:
    return {
        "string": dtypes.string,
        "int": dtypes.int64,
        "float": dtypes.float64,
        "date": dtypes.date,
        "timestamp": dtypes.timestamp,
        "bool": dtypes.boolean,
    }.get(col.kind) or dtypes.Decimal(col.precision, col.scale)


def _parse_text(col: Column, s: ir.StringValue) -> tuple[ir.Value, list[Finding]]:
    """(typed value or NULL, findings) for a non-null text value."""
    n = col.name
    match col.kind:
        case "string":
            return s, []
        case "int":
            ok = s.re_search(r"^[+-]?[0-9]{1,18}$")
            return ibis.ifelse(ok, s.try_cast("int64"), ibis.null()), [_finding(~ok, n, _NOT["int"])]
        case "float":
            v = s.try_cast("float64")
            return v, [_finding(v.isnull(), n, "NOT_NUMBER")]
        case "decimal":
            whole = col.precision - col.scale
            ok = s.re_search(rf"^[+-]?[0-9]{{1,{whole}}}(\.[0-9]{{0,{col.scale}}})?$")
            too_fine = s.re_search(rf"^[+-]?[0-9]+\.[0-9]{{{col.scale + 1},}}$")
            return ibis.ifelse(ok, s.try_cast(_sql_type(col)), ibis.null()), [
                _finding(~ok & too_fine, n, "DECIMAL_SCALE"),
                _finding(~ok & ~too_fine, n, "NOT_DECIMAL"),
            ]
        case "date":
            iso = ibis.cases(
                (s.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), s),
                (s.re_search(r"^[0-9]{8}$"),
                 s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2)),
                else_=ibis.null().cast("string"),
            )
            # DuckDB reads year 0000 as 1 BC; no broker record is that old, and Python can't hold it.
            v = ibis.ifelse(iso.startswith("0000"), ibis.null().cast("date"), iso.try_cast("date"))
            return v, [_finding(v.isnull(), n, "NOT_DATE")]
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
            return v, [_finding(v.isnull(), n, "NOT_TIMESTAMP")]
        case "bool":
            low = s.lower()
            v = ibis.cases((low.isin(_TRUE), True), (low.isin(_FALSE), False),
                           else_=ibis.null().cast("boolean"))
            return v, [_finding(v.isnull(), n, "NOT_BOOLEAN")]
    raise AssertionError(col.kind)


_NOT = {"string": "NOT_TEXT", "int": "NOT_INTEGER", "float": "NOT_NUMBER", "decimal": "NOT_DECIMAL",
        "date": "NOT_DATE", "timestamp": "NOT_TIMESTAMP", "bool": "NOT_BOOLEAN"}


def _parse_native(col: Column, v: ir.Value) -> tuple[ir.Value, list[Finding]]:
    """(typed value, findings) for a non-null value that arrived typed (Parquet).

    A conversion that changes the value is a finding, never a silent rounding: 100.6 is not
    an integer, 12.345 does not fit DECIMAL(18,2), a timestamp is not a date.
    """
    n = col.name
    target = _sql_type(col)
    out = v.try_cast(target)
    if v.type() == target:
        return out, []
    if col.kind == "decimal" and v.type().is_numeric():
        exact = v.try_cast("decimal(38,10)") == out.cast("decimal(38,10)")
        return out, [_finding(out.isnull(), n, "NOT_DECIMAL"),
                     _finding(out.notnull() & ~exact, n, "DECIMAL_SCALE")]
    if col.kind == "string":
        return out, [_finding(out.isnull(), n, _NOT["string"])]
    exact = out.try_cast(v.type()) == v
    return out, [_finding(out.isnull() | ~exact, n, _NOT[col.kind])]


def check_rows(raw: ir.Table, contract: Table, opts: StagingOptions) -> ir.Table:
    """Typed contract columns plus ``_row`` and ``_reasons`` ('' when the row passes)."""
    typed: dict[str, ir.Value] = {}
    findings: list[Finding] = []
    texts: dict[str, ir.StringValue] = {}
    for col in contract.columns:
        if col.name not in raw.columns:
            typed[col.name] = ibis.null().cast(_sql_type(col))
            if col.required:
                findings.append((ibis.literal(True), ibis.literal(f"{col.name}:REQUIRED;")))
            continue
        value = raw[col.name]
        if value.type().is_string() or value.type().is_null():
            s = _text(value)
            texts[col.name] = s
            out, parsed = _parse_text(col, s)
            present = s.notnull()
        else:
            out, parsed = _parse_native(col, value)
            present = value.notnull()
            if col.kind == "string":
                texts[col.name] = out
        if col.kind == "timestamp" and opts.utc_offset_hours:
            out = out - ibis.interval(hours=opts.utc_offset_hours)
        typed[col.name] = out
        findings.extend((present & c, t) for c, t in parsed)
        if col.required:
            findings.append(_finding(~present, col.name, "REQUIRED"))
        findings.extend(_value_rules(col, out, opts))
    for col in contract.columns:
        s = texts.get(col.name)
        if s is None:
            continue
        if col.check:
            code = checks.check(col.check, s, opts.today)
            findings.append((s.notnull() & code.notnull(), col.name + ":" + code + ";"))
        for name, other, when in col.checks_when:
            code = checks.check(name, s, opts.today)
            applies = (typed[other] == when).fill_null(False)
            findings.append((applies & s.notnull() & code.notnull(), col.name + ":" + code + ";"))
    row = raw[ROW] if ROW in raw.columns else ibis.row_number() + 1
    return raw.select(**{ROW: row.cast("int64")}, **typed, **{REASONS: _reasons_of(findings)})


def _value_rules(col: Column, v: ir.Value, opts: StagingOptions) -> list[Finding]:
    n = col.name
    out: list[Finding] = []
    if col.enum is not None:
        out.append(_finding(v.notnull() & ~v.isin(col.enum), n, "ENUM"))
    if col.min is not None:
        out.append(_finding(v < ibis.literal(col.min, type=_sql_type(col)), n, "BELOW_MIN"))
    if col.max is not None:
        out.append(_finding(v > ibis.literal(col.max, type=_sql_type(col)), n, "ABOVE_MAX"))
    if col.pattern is not None:
        out.append(_finding(~v.re_search(col.pattern), n, "PATTERN"))
    if col.max_length is not None:
        out.append(_finding(v.length() > col.max_length, n, "TOO_LONG"))
    if col.not_future and col.kind == "date":
        out.append(_finding(v > opts.today, n, "FUTURE"))
    if col.not_future and col.kind == "timestamp":
        out.append(_finding(v > opts.now_utc + opts.clock_skew, n, "FUTURE"))
    return out


def check_references(checked: ir.Table, contract: Table,
                     keys: dict[str, ir.Table]) -> ir.Table:
    """Flag values that refer to a row that does not exist.

    ``keys`` maps a referenced table name to a one-column table ``key`` of its stored keys.
    """
    findings: list[Finding] = []
    for col, ref_table, _ in contract.refs:
        if ref_table not in keys:
            continue
        known = keys[ref_table]["key"]
        value = checked[col.name]
        findings.append(_finding(value.notnull() & ~value.isin(known), col.name, "UNKNOWN_REF"))
    if not findings:
        return checked
    return checked.mutate(**{REASONS: checked[REASONS].concat(_reasons_of(findings))})


def _same(left: ir.Table, right: ir.Table, columns: list[str], prefix: str) -> ir.BooleanValue:
    parts = [left[c].identical_to(right[prefix + c]) for c in columns]
    return reduce(lambda a, b: a & b, parts, ibis.literal(True))


def key_collisions(checked: ir.Table, contract: Table,
                   stored: ir.Table | None) -> list[ir.IntegerScalar]:
    """Counts of valid rows whose key repeats within the file, or is already stored.

    Zero is the common case (a new daily export); then ``classify_fresh`` gives the same
    answer as ``classify`` without its joins.
    """
    key = list(contract.key)
    valid = checked.filter(checked[REASONS] == "")
    repeated = valid.group_by(key).aggregate(_n=valid.count())
    in_file = repeated.filter(repeated["_n"] > 1)["_n"].sum().fill_null(0)
    if stored is None:
        return [in_file]
    return [in_file, valid.semi_join(stored.select(key), key).count()]


def classify_fresh(checked: ir.Table) -> ir.Table:
    """``classify`` for a batch with no key collisions: every row is an insert or a reject."""
    fate = ibis.ifelse(checked[REASONS] == "", "insert", "reject")
    return checked.mutate(**{FATE: fate})


def classify(checked: ir.Table, contract: Table, stored: ir.Table | None,
             provided: list[str] | None = None) -> ir.Table:
    """Every input row once, with ``_fate`` and, for rejects, ``_reasons``.

    ``stored`` holds the table's current rows (contract columns) or is None when empty.
    Content is compared on the ``provided`` columns (default: all): a column the file does
    not have cannot make a row differ from what is stored.
    """
    key = list(contract.key)
    content = [c for c in (provided or contract.column_names) if c not in contract.key]
    cols = [ROW, *contract.column_names, REASONS]
    bad = checked.filter(checked[REASONS] != "").mutate(**{FATE: ibis.literal("reject")})
    valid = checked.filter(checked[REASONS] == "")

    # Keys repeated within the file are rare: find them with one aggregate, then only those
    # rows take the join that decides which occurrence came first.
    repeated = (valid.group_by(key).aggregate(_n=valid.count(), _first=valid[ROW].min())
                .filter(lambda t: t["_n"] > 1).drop("_n"))
    singles = valid.anti_join(repeated, key).select(cols)
    marked = valid.join(repeated, key)
    firsts = ibis.union(singles, marked.filter(marked[ROW] == marked["_first"]).select(cols))
    later = marked.filter(marked[ROW] != marked["_first"]).select(cols)

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
