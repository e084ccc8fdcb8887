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

from caifu.analytics.clv_checks import (
    ClvInputError,
    as_day,
    as_numpy,
    column_names_of,
    finite_float,
    iso_day,
    not_null,
    refuse,
    to_days,
)

TimeUnit = Literal["day", "week"]
DAYS_PER_UNIT: dict[str, int] = {"day": 1, "week": 7}


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
        names = column_names_of(table)
        for name in (frequency, recency, T):
            if name not in names:
                raise ClvInputError(f"summary table has no column {name!r}; it has {names}")
        x, t_x, age = check_summary(as_numpy(table[frequency]), as_numpy(table[recency]),
                                    as_numpy(table[T]))
        ids = as_numpy(table[customer_id]) if customer_id in names else np.arange(len(x))
        money = None
        if monetary_value is not None and monetary_value in names:
            money = finite_float(as_numpy(table[monetary_value]), monetary_value)
        return cls(ids, x, t_x, age, money, time_unit=time_unit)


def check_summary(
    frequency: Any, recency: Any, T: Any, *, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) as int64/float64/float64 arrays, or a ClvInputError saying what is wrong."""
    x = np.asarray(frequency)
    t_x = finite_float(np.asarray(recency), "recency")
    age = finite_float(np.asarray(T), "T")
    x_f = finite_float(x, "frequency")
    if not (x_f.shape == t_x.shape == age.shape) or x_f.ndim != 1:
        raise ClvInputError(
            f"frequency, recency and T must be 1-D and of one length; got shapes "
            f"{x_f.shape}, {t_x.shape}, {age.shape}")
    if not allow_empty and x_f.size == 0:
        raise ClvInputError("no customers: the summary is empty")
    refuse(x_f < 0, "frequency is negative", x_f)
    refuse(x_f != np.round(x_f), "frequency is not a whole number", x_f)
    refuse(t_x < 0, "recency is negative", t_x)
    refuse(age < 0, "T is negative", age)
    refuse(t_x > age, "recency exceeds T (last transaction after the calibration end)", t_x)
    refuse((x_f == 0) & (t_x != 0), "recency is not 0 for a customer with frequency 0", t_x)
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
    names = column_names_of(transactions)
    for name in (customer, date) + ((amount,) if amount else ()):
        if name not in names:
            raise ClvInputError(f"transaction log has no column {name!r}; it has {names}")
    ids = not_null(transactions[customer], customer, ids=True)
    days = to_days(transactions[date], date)
    if days.size == 0:
        raise ClvInputError("the transaction log is empty")
    money = None
    if amount:
        money = finite_float(not_null(transactions[amount], amount), amount)
        refuse(money < 0, f"{amount} is negative (refunds and withdrawals are not "
                           "transactions; net them out or drop them before summarising)",
                money)
    cal = as_day(calibration_end, "calibration_end")
    end = cal if holdout_end is None else as_day(holdout_end, "holdout_end")
    if end < cal:
        raise ClvInputError(f"holdout_end {iso_day(end)} is before calibration_end {iso_day(cal)}")
    late = days > end
    if late.any():
        i = int(np.flatnonzero(late)[0])
        bound = "holdout_end" if holdout_end is not None else "calibration_end"
        raise ClvInputError(
            f"{int(late.sum())} transactions are dated after {bound} {iso_day(end)} (first: "
            f"customer {ids[i]!r} on {iso_day(int(days[i]))}); filter the log to the observation "
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
