"""Client-side pacing for WeCom's per-API limits (2000 calls a minute and 30000 an hour, per
corp and per API path): better to wait here than to be answered 45009 and back off blindly.

Each (corp, API) has one token bucket per window, sized so that no window of that length —
sliding or fixed, we do not know how WeCom counts — ever holds more than the limit: a burst
of a tenth of it, refilled at the other nine tenths per window. A caller takes a token even
when the bucket is empty — the balance goes negative — and sleeps for the time the debt
takes to refill, so concurrent callers queue up in order without polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

WECOM_LIMITS: tuple[tuple[int, float], ...] = ((2000, 60.0), (30000, 3600.0))


class RateLimiter:
    """Token buckets per key; ``limits`` is a list of (calls, per seconds) windows, each
    never exceeded in any window of that length."""

    def __init__(self, limits: Sequence[tuple[int, float]] = WECOM_LIMITS, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if any(calls < 2 or per <= 0 for calls, per in limits):
            raise ValueError("each limit needs at least 2 calls over a positive period")
        self._limits = tuple(limits)
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str, int], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def reserve(self, key: tuple[str, str]) -> float:
        """Take one call for ``key``; the seconds to wait before making it (0.0 if none)."""
        wait = 0.0
        with self._lock:
            now = self._clock()
            for i, (calls, per) in enumerate(self._limits):
                burst = max(1.0, calls // 10)
                rate = (calls - burst) / per  # burst + rate·per = calls in any window
                tokens, last = self._buckets.get((*key, i), (burst, now))
                tokens = min(burst, tokens + (now - last) * rate) - 1.0
                self._buckets[(*key, i)] = (tokens, now)
                if tokens < 0:
                    wait = max(wait, -tokens / rate)
        return wait

    def acquire(self, key: tuple[str, str]) -> float:
        """Take one call for ``key``, sleeping (outside the lock) until it may be made;
        returns the seconds slept."""
        wait = self.reserve(key)
        if wait > 0:
            self._sleep(wait)
        return wait
