"""The clock seam: a clock put in the container is the time services store."""

from __future__ import annotations

import datetime as dt

from caifu.core.clock import FixedClock, SystemClock, aware_utc
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.jobs import Jobs

AT = dt.datetime(2031, 2, 3, 4, 5, 6, 789)


def test_an_injected_clock_is_the_time_stored(sqlite_workspace: Container) -> None:
    c = sqlite_workspace
    c.clock = FixedClock(AT)
    stored = audit.append(c, "acme", "ops1", "key_revoke", reason="k1 revoked")
    assert stored.entry.at == AT
    assert audit.verify(c, "acme").ok  # the chain hashes the injected time and checks out
    job = Jobs(c).submit("acme", "ingest", {"paths": ["x.csv"]}, actor="ops1")
    assert job["submitted_at"] == "2031-02-03T04:05:06.000789Z"
    c.clock.advance(dt.timedelta(days=1))
    assert audit.append(c, "acme", "ops1", "key_revoke", reason="k2 revoked").entry.at == \
        AT + dt.timedelta(days=1)


def test_the_system_clock_is_naive_utc() -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    now = SystemClock().now()
    assert now.tzinfo is None and before <= now <= before + dt.timedelta(seconds=5)


def test_a_fixed_clock_keeps_one_convention() -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert FixedClock(dt.datetime(2031, 2, 3, 12, tzinfo=shanghai)).now() == \
        dt.datetime(2031, 2, 3, 4)
    assert aware_utc(dt.datetime(2031, 2, 3, 4)).timestamp() == \
        dt.datetime(2031, 2, 3, 12, tzinfo=shanghai).timestamp()
