"""What time it is, as a seam: services ask ``c.clock.now()`` instead of the system.

Times caifu stores are naive UTC (DESIGN: the database columns carry no zone; a tenant's
business day is derived from its time zone where a date is needed). ``SystemClock`` is the
production clock; a test injects ``FixedClock`` into the container to pin stored timestamps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, naive UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class FixedClock:
    """A clock that says ``at`` until told otherwise (``advance``); for tests and replays."""

    at: dt.datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is not None:  # one convention: naive UTC, as stored
            self.at = self.at.astimezone(dt.UTC).replace(tzinfo=None)

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, by: dt.timedelta) -> None:
        self.at += by


SYSTEM = SystemClock()


def aware_utc(t: dt.datetime) -> dt.datetime:
    """``t`` as an aware UTC datetime (naive means UTC here) — for ``.timestamp()``, which
    would read a naive value as local time."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
