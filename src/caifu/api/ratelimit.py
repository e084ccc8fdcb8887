"""Per-key quotas as token buckets: ``quota`` requests a minute, refilled continuously, a
burst of at most ``quota``; and the throttle of failed sign-ins. One process owns the
workspace, so both live in memory (a restart forgets them)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
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


class LoginThrottle:
    """Failed sign-ins counted per user id and per client address in a sliding window.

    Past ``per_user`` failures for a user id, or ``per_address`` from one address, sign-in is
    refused (429, ``Retry-After``) until the oldest counted failure leaves the window — even
    with the right password, or the refusal would tell a guesser when he was right. The
    check comes before the password hash, so a flood costs no hashing. A success clears its
    user id's failures; an address's only age out (else one valid account would reset the
    count of an address guessing others' passwords).
    """

    MAX_KEYS = 100_000  # a flood of invented user ids cannot grow memory without bound

    def __init__(self, per_user: int, per_address: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = {"user": per_user, "address": per_address}
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait(self, user_id: str, address: str) -> float | None:
        """None if a sign-in may be tried, else the seconds until one may."""
        with self._lock:
            now = self._clock()
            waits = []
            for kind, value in (("user", user_id), ("address", address)):
                times = self._recent((kind, value), now)
                if len(times) >= self.limits[kind]:
                    waits.append(times[-self.limits[kind]] + self.window - now)
            return max(waits) if waits else None

    def failed(self, user_id: str, address: str) -> None:
        with self._lock:
            now = self._clock()
            if len(self._failures) >= self.MAX_KEYS:
                for key in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[key]
                if len(self._failures) >= self.MAX_KEYS:  # all recent: drop the oldest half
                    oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
                    for key in oldest[:self.MAX_KEYS // 2]:
                        del self._failures[key]
            for key in (("user", user_id), ("address", address)):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times

    def succeeded(self, user_id: str) -> None:
        with self._lock:
            self._failures.pop(("user", user_id), None)
