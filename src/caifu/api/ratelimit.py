"""Per-key quotas as token buckets: ``quota`` requests a minute, refilled continuously, a
burst of at most ``quota``. One process owns the workspace, so the buckets live in memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # subject → (tokens, last time)
        self._lock = threading.Lock()

    def take(self, subject: str, per_minute: int) -> float | None:
        """Take one request; None if allowed, else the seconds until one is (``Retry-After``)."""
        rate = per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(subject, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[subject] = (tokens - 1.0, now)
                return None
            self._buckets[subject] = (tokens, now)
            return (1.0 - tokens) / rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
