"""Token buckets per key: a burst up to the quota, then one request per 60/quota seconds."""

from __future__ import annotations

import pytest

from caifu.api.ratelimit import RateLimiter, retry_after_header


def test_burst_then_steady_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.take("k1", 3) for _ in range(3)] == [None, None, None]
    wait = limiter.take("k1", 3)  # bucket empty: one token every 20 s
    assert wait == pytest.approx(20.0)
    assert limiter.take("k2", 3) is None  # another key has its own bucket
    now[0] += 10.0
    assert limiter.take("k1", 3) == pytest.approx(10.0)  # half a token refilled
    now[0] += 10.0
    assert limiter.take("k1", 3) is None
    now[0] += 3600.0  # a long pause refills to the quota, never beyond
    assert [limiter.take("k1", 3) is None for _ in range(4)] == [True, True, True, False]


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.2) == "1" and retry_after_header(19.01) == "20"
