"""Conversions and checks for the CLV inputs: ids, amounts and dates as the transaction log
holds them (Arrow, numpy, Python; ISO text, dates, datetimes or yyyymmdd integers), turned
into numpy arrays or refused with :class:`ClvInputError` naming the column and a bad value.

A missing id or date is refused rather than dropped: a dropped row would silently lower a
customer's frequency and so their CLV.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.core.errors import CaifuError


class ClvError(CaifuError):
    """Customer-lifetime-value input or estimation cannot go on."""

    code = "clv"
    http_status = 422


class ClvInputError(ClvError, ValueError):
    """The transactions or summary handed to a CLV function are not usable as they are."""

    code = "clv.input"


def column_names_of(table: pa.Table | Mapping[str, Any]) -> list[str]:
    return list(table.column_names) if isinstance(table, pa.Table) else list(table.keys())


def as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return np.asarray(values)


def not_null(values: Any, name: str, *, ids: bool = False) -> np.ndarray:
    """The values as numpy, or a ClvInputError naming the rows that are missing.

    For ``ids`` NaN counts as missing too: pandas stores a missing numeric id as NaN (or
    pd.NA), and np.unique would merge every such row into one made-up customer. (A NaN
    amount is left to the finiteness check, which says so.)
    """
    out = as_numpy(values)
    if isinstance(values, pa.ChunkedArray | pa.Array):
        missing = pc.is_null(values, nan_is_null=ids)
        bad = np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)
    elif ids:
        bad = _missing_mask(out)
    else:
        bad = (np.fromiter((v is None for v in out), bool, len(out)) if out.dtype == object
               else np.zeros(out.shape, dtype=bool))
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(i) for i in rows[:10]) + (", …" if len(rows) > 10 else "")
        why = (" (rows without a customer would be summarised as one made-up customer; drop "
               "or fix them first)" if ids else "")
        raise ClvInputError(f"{name} has missing values in {len(rows)} rows: {shown}{why}")
    return out


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are not equal to themselves
    except (TypeError, ValueError):
        return True  # pd.NA: its comparisons are themselves missing


def _missing_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values), dtype=bool)
    if values.dtype.kind in "mM":
        return np.asarray(np.isnat(values), dtype=bool)
    if values.dtype == object:
        return np.fromiter((_is_missing(v) for v in values), bool, len(values))
    return np.zeros(values.shape, dtype=bool)


def finite_float(values: np.ndarray, name: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ClvInputError(f"{name} is not numeric (dtype {values.dtype})") from None
    refuse(~np.isfinite(out), f"{name} is missing or not finite", out)
    return out


def refuse(bad: np.ndarray, what: str, values: np.ndarray) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ClvInputError(f"{what} in {int(bad.sum())} rows (first: row {i}, value "
                            f"{values[i]!r})")


def to_days(values: Any, name: str) -> np.ndarray:
    """Days since 1970-01-01 (int64) of dates, timestamps, ISO strings or yyyymmdd numbers.

    A zone-aware timestamp counts on its own local calendar day (a trade at 00:30 in Shanghai
    is that day's, not the previous UTC day's). Numbers are read only as yyyymmdd (CDNOW's
    raw log and many broker exports write dates so); any other number is refused rather than
    taken as a day count or a year.
    """
    if getattr(getattr(values, "dtype", None), "tz", None) is not None:
        values = pa.array(values)  # a zoned pandas column: Arrow keeps its zone
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if values.null_count:
            raise ClvInputError(f"{name} has {values.null_count} missing values")
        if pa.types.is_timestamp(values.type) and values.type.tz is not None:
            values = pc.local_timestamp(values)  # the customer's calendar day, not UTC's
        if pa.types.is_timestamp(values.type) or pa.types.is_date64(values.type):
            values = pc.cast(pc.floor_temporal(values, unit="day"), pa.date32())
        if pa.types.is_date32(values.type):
            return np.asarray(values.cast(pa.int32()).to_numpy(zero_copy_only=False), np.int64)
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
                or pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise ClvInputError(f"{name} must be a date or timestamp column, not {values.type}")
        values = values.to_numpy(zero_copy_only=False)
    array = np.asarray(values)
    if array.dtype.kind == "M":
        if np.isnat(array).any():
            raise ClvInputError(f"{name} has missing dates")
        return array.astype("datetime64[D]").astype(np.int64)
    if array.dtype.kind in "iuf":
        if _missing_mask(array).any():
            raise ClvInputError(f"{name} has missing dates")
        return _yyyymmdd(array, array, name)
    if array.dtype == object:
        if _missing_mask(array).any():
            raise ClvInputError(f"{name} has missing dates")
        array = np.array([_plain_date(v) for v in array], dtype=object)
        if all(isinstance(v, dt.date) for v in array):
            return np.array(array, dtype="datetime64[D]").astype(np.int64)
        array = np.array([v.isoformat() if isinstance(v, dt.date) else str(v) for v in array])
    if array.dtype.kind not in "US":
        raise ClvInputError(f"{name} is not a date column (dtype {array.dtype})")
    text = np.char.strip(array.astype(str))
    compact = np.char.isdigit(text) & (np.char.str_len(text) == 8)
    days = np.zeros(len(text), dtype=np.int64)
    if compact.any():
        days[compact] = _yyyymmdd(text[compact].astype(np.int64), array, name,
                                  np.flatnonzero(compact))
    if (~compact).any():
        try:
            days[~compact] = text[~compact].astype("datetime64[D]").astype(np.int64)
        except (TypeError, ValueError):
            raise ClvInputError(f"{name} is not a date column (dtype {array.dtype})") from None
    return days


def _plain_date(value: Any) -> Any:
    """A datetime's own local calendar date (a zoned one's included); other values as is."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").astype(dt.date)
    if isinstance(value, int | np.integer | float | np.floating) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


YYYYMMDD_RANGE = (10000101, 99991231)


def _show(value: Any) -> str:
    """repr of a value as the user wrote it: 19970132, not np.int64(19970132)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _yyyymmdd(numbers: np.ndarray, originals: np.ndarray, name: str,
              rows: np.ndarray | None = None) -> np.ndarray:
    """Days since 1970-01-01 of yyyymmdd numbers; an error names the first bad row."""
    rows = np.arange(len(numbers)) if rows is None else rows
    v = np.asarray(numbers, dtype=np.float64)
    eight = (v == np.round(v)) & (v >= YYYYMMDD_RANGE[0]) & (v <= YYYYMMDD_RANGE[1])
    if not eight.all():
        i = int(np.flatnonzero(~eight)[0])
        raise ClvInputError(
            f"{name} holds numbers that are not yyyymmdd dates (first: row {rows[i]}, value "
            f"{_show(originals[rows[i]])}); numeric dates are ambiguous (days since 1970? a year?), "
            "so pass dates, timestamps, ISO strings or yyyymmdd numbers")
    n = v.astype(np.int64)
    year, month, day = n // 10000, n // 100 % 100, n % 100
    first = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
    days = first.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    bad = ((month < 1) | (month > 12) | (day < 1)
           | (days.astype("datetime64[M]") != first))  # day 31 of a 30-day month
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ClvInputError(f"{name} is not a yyyymmdd date in {int(bad.sum())} rows (first: "
                            f"row {rows[i]}, value {_show(originals[rows[i]])})")
    return np.asarray(days, dtype="datetime64[D]").astype(np.int64)


def as_day(value: Any, name: str) -> int:
    """One date given as a date, a datetime (its local day), ISO text or yyyymmdd."""
    if isinstance(value, dt.datetime):
        value = value.date()
    text = str(value).strip() if isinstance(value, str | int | np.integer) else ""
    if text.isdigit() and len(text) == 8 and not isinstance(value, bool):
        try:
            return int(_yyyymmdd(np.array([int(text)]), np.array([value], dtype=object),
                                 name)[0])
        except ClvInputError:
            raise ClvInputError(f"{name} is not a date: {value!r}") from None
    if isinstance(value, int | np.integer | float) or text.isdigit():
        raise ClvInputError(f"{name} is not a date: {value!r} (give a date, ISO text or "
                            "yyyymmdd)")
    try:
        return int(np.datetime64(value, "D").astype(np.int64))
    except (TypeError, ValueError):
        raise ClvInputError(f"{name} is not a date: {value!r}") from None


def iso_day(day: int) -> str:
    return str(np.datetime64(day, "D"))
