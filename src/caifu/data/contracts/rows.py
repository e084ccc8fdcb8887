"""Check one record against its contract — the per-event twin of the staging checks.

Files are checked in bulk by ``pipelines/staging.py``; events that arrive one at a time (the
real-time path) are checked here with the same rules and the same ``column:RULE`` reason
codes: unknown columns, required, type and decimal scale (never rounded), enums and sets
(``members_of``), length,
pattern, ranges, identifier validators and not-in-future. References to master data need
the system of record and are checked by the caller.

Timestamps may be ISO 8601 with an offset (converted to UTC), ISO without one (read as the
tenant's local time, like the broker exports), or integer epoch milliseconds (as WeCom sends
``msgtime``); they are stored as naive UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from caifu.core.ids import VALIDATORS, normalise_code
from caifu.data.contracts import Column, Table, members_of

FUTURE_SLACK = dt.timedelta(minutes=5)  # clocks of the sending systems drift


def _timestamp(value: Any, utc_offset: dt.timedelta) -> dt.datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not 0 <= value < 10**14:
            return None
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=value)
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed - utc_offset
    return parsed.astimezone(dt.UTC).replace(tzinfo=None)


def _convert(col: Column, value: Any, utc_offset: dt.timedelta) -> tuple[Any, str | None]:
    """(typed value, reason) for one present, non-null value."""
    match col.kind:
        case "string":
            if not isinstance(value, str):
                return None, "NOT_TEXT"
            return value, None
        case "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return None, "NOT_INTEGER"
            return value, None
        case "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None, "NOT_NUMBER"
            return float(value), None
        case "bool":
            if not isinstance(value, bool):
                return None, "NOT_BOOL"
            return value, None
        case "decimal":
            if isinstance(value, bool) or not isinstance(value, int | str):
                # floats are refused: 0.1 as a float is not 0.1
                return None, "NOT_DECIMAL"
            try:
                d = Decimal(str(value))
            except InvalidOperation:
                return None, "NOT_DECIMAL"
            if not d.is_finite():
                return None, "NOT_DECIMAL"
            exponent = d.as_tuple().exponent
            assert isinstance(exponent, int)
            if -exponent > col.scale:
                return None, "DECIMAL_SCALE"
            if d.adjusted() >= col.precision - col.scale:
                return None, "DECIMAL_RANGE"
            return d, None
        case "date":
            if not isinstance(value, str) or len(value) != 10:
                return None, "NOT_DATE"
            try:
                return dt.date.fromisoformat(value), None
            except ValueError:
                return None, "NOT_DATE"
        case "timestamp":
            ts = _timestamp(value, utc_offset)
            return (ts, None) if ts is not None else (None, "NOT_TIMESTAMP")
    raise AssertionError(col.kind)


def check_record(contract: Table, record: Mapping[str, Any], *, utc_offset: dt.timedelta,
                 now: dt.datetime) -> tuple[dict[str, Any], list[str]]:
    """The typed row (every contract column, missing ones None) and its reason codes."""
    reasons: list[str] = []
    for name in record:
        if name not in contract:
            reasons.append(f"{name}:UNKNOWN_COLUMN")
    row: dict[str, Any] = {}
    for col in contract.columns:
        value = record.get(col.name)
        if isinstance(value, str) and col.kind != "string":
            value = value.strip() or None
        # Whitespace-only text (a tab, full-width spaces) is missing, as in the file checks.
        if value is None or (col.kind == "string" and isinstance(value, str)
                             and not value.strip()):
            row[col.name] = None
            if col.required:
                reasons.append(f"{col.name}:REQUIRED")
            continue
        if col.normalise and isinstance(value, str):
            value = normalise_code(value, upper=col.normalise == "nfkc_upper").strip()
        typed, reason = _convert(col, value, utc_offset)
        if col.members and reason is None:
            typed = members_of(col, typed)
            reason = None if typed is not None else "ENUM"
        if reason:
            reasons.append(f"{col.name}:{reason}")
            row[col.name] = None
            continue
        row[col.name] = typed
        reasons += [f"{col.name}:{r}" for r in _rules(col, typed, now)]
    return row, reasons


def _rules(col: Column, value: Any, now: dt.datetime) -> list[str]:
    out: list[str] = []
    if isinstance(value, str) and "\x00" in value:  # no database stores it in text
        return ["NUL_CHARACTER"]
    if col.enum is not None and value not in col.enum:
        out.append("ENUM")
    if col.max_length is not None and isinstance(value, str) and len(value) > col.max_length:
        out.append("TOO_LONG")
    if col.pattern is not None and isinstance(value, str) and not re.fullmatch(col.pattern, value):
        out.append("PATTERN")
    if col.check is not None and isinstance(value, str):
        problem = VALIDATORS[col.check](value)
        if problem:
            out.append(problem)
    if col.min is not None and value < col.min:
        out.append("BELOW_MIN")
    if col.max is not None and value > col.max:
        out.append("ABOVE_MAX")
    if col.not_future:
        if isinstance(value, dt.datetime) and value > now + FUTURE_SLACK:
            out.append("IN_FUTURE")
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime) \
                and value > (now + dt.timedelta(hours=14)).date():
            out.append("IN_FUTURE")
    return out
