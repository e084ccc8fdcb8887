"""The per-customer summary the CLV models read, built from a raw transaction log.

A *transaction* here is one customer-day with at least one revenue event (docs/clv.md says
which broker events count): several trades on one day are one transaction, with their amounts
summed. Counting days rather than rows keeps an algorithmic trader's 300 fills from looking
like 300 visits, and is what the published CDNOW summary does (Fader, Hardie & Lee 2005 count
distinct purchase days and measure time in fractional weeks, days / 7).

For each customer whose first transaction falls on or before ``calibration_end``:

    frequency  x    repeat transactions: distinct days after the first, up to calibration_end
    recency    t_x  time from the first to the last transaction day
    T               time from the first transaction day to calibration_end (inclusive date)
    monetary_value  mean amount of the repeat transaction days (0 when x = 0) — the first
                    day is left out because it is the acquisition, not repeat behaviour
    frequency_holdout  distinct days in (calibration_end, holdout_end], if a holdout is given

Times are in the chosen unit: ``day`` (whole days) or ``week`` (days / 7, fractional).
Customers first seen in the holdout are not part of the calibration cohort and are left out
(counted in ``CustomerSummary.first_seen_in_holdout``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.core.errors import CaifuError

TimeUnit = Literal["day", "week"]
DAYS_PER_UNIT: dict[str, int] = {"day": 1, "week": 7}


class ClvError(CaifuError):
    """Customer-lifetime-value input or estimation cannot go on."""

    code = "clv"
    http_status = 422


class ClvInputError(ClvError, ValueError):
    """The transactions or summary handed to a CLV function are not usable as they are."""

    code = "clv.input"


def _days_per_unit(time_unit: str) -> int:
    try:
        return DAYS_PER_UNIT[time_unit]
    except KeyError:
        raise ClvInputError(f"time_unit must be 'day' or 'week', not {time_unit!r}") from None


@dataclass(frozen=True)
class CustomerSummary:
    """Frequency, recency, age and monetary value per customer (one row each)."""

    customer_id: np.ndarray
    frequency: np.ndarray  # int64, repeat transaction days
    recency: np.ndarray  # float64, time units
    T: np.ndarray  # float64, time units (the literature's name)
    monetary_value: np.ndarray | None = None  # float64, mean repeat-day amount
    frequency_holdout: np.ndarray | None = None  # int64
    duration_holdout: float | None = None  # time units
    time_unit: TimeUnit = "week"
    first_seen_in_holdout: int = 0

    def __len__(self) -> int:
        return len(self.frequency)

    def to_arrow(self) -> pa.Table:
        columns: dict[str, Any] = {
            "customer_id": self.customer_id,
            "frequency": self.frequency,
            "recency": self.recency,
            "T": self.T,
        }
        if self.monetary_value is not None:
            columns["monetary_value"] = self.monetary_value
        if self.frequency_holdout is not None:
            columns["frequency_holdout"] = self.frequency_holdout
        return pa.table(columns)

    @classmethod
    def from_table(
        cls,
        table: pa.Table | Mapping[str, Any],
        *,
        time_unit: TimeUnit = "week",
        customer_id: str = "customer_id",
        frequency: str = "frequency",
        recency: str = "recency",
        T: str = "T",
        monetary_value: str | None = "monetary_value",
    ) -> CustomerSummary:
        """Read an existing summary table (Arrow or a mapping of arrays) and check it."""
        _days_per_unit(time_unit)
        names = _column_names(table)
        for name in (frequency, recency, T):
            if name not in names:
                raise ClvInputError(f"summary table has no column {name!r}; it has {names}")
        x, t_x, age = check_summary(_numpy(table[frequency]), _numpy(table[recency]),
                                    _numpy(table[T]))
        ids = _numpy(table[customer_id]) if customer_id in names else np.arange(len(x))
        money = None
        if monetary_value is not None and monetary_value in names:
            money = _finite_float(_numpy(table[monetary_value]), monetary_value)
        return cls(ids, x, t_x, age, money, time_unit=time_unit)


def check_summary(
    frequency: Any, recency: Any, T: Any, *, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) as int64/float64/float64 arrays, or a ClvInputError saying what is wrong."""
    x = np.asarray(frequency)
    t_x = _finite_float(np.asarray(recency), "recency")
    age = _finite_float(np.asarray(T), "T")
    x_f = _finite_float(x, "frequency")
    if not (x_f.shape == t_x.shape == age.shape) or x_f.ndim != 1:
        raise ClvInputError(
            f"frequency, recency and T must be 1-D and of one length; got shapes "
            f"{x_f.shape}, {t_x.shape}, {age.shape}")
    if not allow_empty and x_f.size == 0:
        raise ClvInputError("no customers: the summary is empty")
    _refuse(x_f < 0, "frequency is negative", x_f)
    _refuse(x_f != np.round(x_f), "frequency is not a whole number", x_f)
    _refuse(t_x < 0, "recency is negative", t_x)
    _refuse(age < 0, "T is negative", age)
    _refuse(t_x > age, "recency exceeds T (last transaction after the calibration end)", t_x)
    _refuse((x_f == 0) & (t_x != 0), "recency is not 0 for a customer with frequency 0", t_x)
    return x_f.astype(np.int64), t_x, age


def summary_from_transactions(
    transactions: pa.Table | Mapping[str, Any],
    *,
    calibration_end: dt.date | str | int | np.datetime64,
    holdout_end: dt.date | str | int | np.datetime64 | None = None,
    time_unit: TimeUnit = "week",
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
) -> CustomerSummary:
    """Summarise a transaction log (one row per customer event) for the CLV models.

    ``transactions`` is an Arrow table, a pandas DataFrame or a mapping of equal-length
    arrays. Dates may be dates, timestamps, ISO strings or yyyymmdd strings or integers (other
    numbers are refused as ambiguous); a zone-aware timestamp (Arrow, pandas or datetime)
    counts on its own local date, a naive one is truncated to its date (convert UTC to the
    tenant's zone first). Customer ids may not be missing (None, NaN, pd.NA). Amounts must
    be finite and non-negative. Every date must be on or before ``holdout_end`` (or
    ``calibration_end`` without a holdout): filter the log to the observation window first.
    """
    unit_days = _days_per_unit(time_unit)
    names = _column_names(transactions)
    for name in (customer, date) + ((amount,) if amount else ()):
        if name not in names:
            raise ClvInputError(f"transaction log has no column {name!r}; it has {names}")
    ids = _not_null(transactions[customer], customer, ids=True)
    days = _to_days(transactions[date], date)
    if days.size == 0:
        raise ClvInputError("the transaction log is empty")
    money = None
    if amount:
        money = _finite_float(_not_null(transactions[amount], amount), amount)
        _refuse(money < 0, f"{amount} is negative (refunds and withdrawals are not "
                           "transactions; net them out or drop them before summarising)",
                money)
    cal = _as_day(calibration_end, "calibration_end")
    end = cal if holdout_end is None else _as_day(holdout_end, "holdout_end")
    if end < cal:
        raise ClvInputError(f"holdout_end {_iso(end)} is before calibration_end {_iso(cal)}")
    late = days > end
    if late.any():
        i = int(np.flatnonzero(late)[0])
        bound = "holdout_end" if holdout_end is not None else "calibration_end"
        raise ClvInputError(
            f"{int(late.sum())} transactions are dated after {bound} {_iso(end)} (first: "
            f"customer {ids[i]!r} on {_iso(int(days[i]))}); filter the log to the observation "
            "window, or pass holdout_end to score a holdout period")
    try:
        uniq_ids, code = np.unique(ids, return_inverse=True)
    except TypeError:
        raise ClvInputError(f"{customer} mixes value types; use one type of id") from None

    # One entry per customer-day, in (customer, day) order, amounts of a day summed.
    first_day = int(days.min())
    span = end - first_day + 1
    key = code.astype(np.int64) * span + (days - first_day)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    occ_customer = key[starts] // span
    occ_day = key[starts] % span + first_day
    occ_amount = np.add.reduceat(money[order], starts) if money is not None else None

    in_cal = occ_day <= cal
    c_customer, c_day = occ_customer[in_cal], occ_day[in_cal]
    firsts = np.flatnonzero(np.concatenate(([True], c_customer[1:] != c_customer[:-1])))
    lasts = np.append(firsts[1:], len(c_customer)) - 1
    customers = c_customer[firsts]
    frequency = (lasts - firsts).astype(np.int64)
    recency = (c_day[lasts] - c_day[firsts]) / unit_days
    age = (cal - c_day[firsts]) / unit_days

    monetary = None
    if occ_amount is not None:
        repeat = occ_amount[in_cal].copy()
        repeat[firsts] = 0.0  # the acquisition day is not repeat spend
        totals = np.add.reduceat(repeat, firsts) if len(firsts) else repeat[:0]
        monetary = np.divide(totals, frequency, out=np.zeros(len(totals)), where=frequency > 0)

    holdout = None
    duration = None
    if holdout_end is not None:
        counts = np.bincount(occ_customer[~in_cal], minlength=len(uniq_ids))
        holdout = counts[customers].astype(np.int64)
        duration = (end - cal) / unit_days
    n_cohort = len(customers)
    return CustomerSummary(
        customer_id=uniq_ids[customers], frequency=frequency, recency=recency, T=age,
        monetary_value=monetary, frequency_holdout=holdout, duration_holdout=duration,
        time_unit=time_unit, first_seen_in_holdout=len(uniq_ids) - n_cohort)


# --- conversions and checks -------------------------------------------------------------------


def _column_names(table: pa.Table | Mapping[str, Any]) -> list[str]:
    return list(table.column_names) if isinstance(table, pa.Table) else list(table.keys())


def _numpy(values: Any) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return np.asarray(values)


def _not_null(values: Any, name: str, *, ids: bool = False) -> np.ndarray:
    """The values as numpy, or a ClvInputError naming the rows that are missing.

    For ``ids`` NaN counts as missing too: pandas stores a missing numeric id as NaN (or
    pd.NA), and np.unique would merge every such row into one made-up customer. (A NaN
    amount is left to the finiteness check, which says so.)
    """
    out = _numpy(values)
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


def _finite_float(values: np.ndarray, name: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ClvInputError(f"{name} is not numeric (dtype {values.dtype})") from None
    _refuse(~np.isfinite(out), f"{name} is missing or not finite", out)
    return out


def _refuse(bad: np.ndarray, what: str, values: np.ndarray) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ClvInputError(f"{what} in {int(bad.sum())} rows (first: row {i}, value "
                            f"{values[i]!r})")


def _to_days(values: Any, name: str) -> np.ndarray:
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


def _as_day(value: Any, name: str) -> int:
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


def _iso(day: int) -> str:
    return str(np.datetime64(day, "D"))
