"""Credentials for WeCom calls: the access-token/ticket cache, the sidebar's JS-SDK signature,
and keeping secrets out of logs.

WeCom hands out one ``access_token`` per app (7200 s) and throttles ``gettoken`` itself, so a
token is fetched once per process and shared: every ``WeComClient`` for the same corp and app
should be given the same ``TokenCache`` (``services/container.py`` owns that one instance).
The same cache holds the agent-config jsapi ticket, which has the same lifetime and limits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CacheKey = tuple[str, str, str]  # (corp_id, sha256 of the secret, what: token or ticket kind)
Fetch = Callable[[], tuple[str, float]]  # → (value, expires_in seconds)

_SECRET_PARAMS = re.compile(r"(access_token|corpsecret|ticket)=[^&\s\"']+")


@dataclass
class _Entry:
    value: str
    refresh_at: float


class TokenCache:
    """Thread-safe cache of access tokens and tickets, refreshed ``margin`` seconds before
    they expire so a call never leaves with a token that dies in flight.

    Keys hold a hash of the secret, never the secret: a cache dump or a repr shows nothing
    usable. One lock per key makes concurrent callers wait for a single ``gettoken`` instead
    of each fetching its own (WeCom limits ``gettoken`` too)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 margin: float = 300.0) -> None:
        self._clock = clock
        self._margin = margin
        self._entries: dict[CacheKey, _Entry] = {}
        self._locks: dict[CacheKey, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def key(corp_id: str, secret: str, kind: str = "access_token") -> CacheKey:
        return (corp_id, hashlib.sha256(secret.encode()).hexdigest(), kind)

    def _fresh(self, key: CacheKey) -> str | None:
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.refresh_at:
            return entry.value
        return None

    def get(self, key: CacheKey, fetch: Fetch) -> str:
        """The cached value, or a new one from ``fetch`` when it is missing or near expiry."""
        value = self._fresh(key)
        if value is not None:
            return value
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            value = self._fresh(key)  # another thread may have refreshed while we waited
            if value is not None:
                return value
            value, expires_in = fetch()
            # WeCom may hand back a token that is already part-way through its life; never
            # cache it for a negative time, or every call would refetch it
            ttl = max(expires_in - self._margin, expires_in / 2)
            self._entries[key] = _Entry(value, self._clock() + ttl)
            return value

    def peek(self, key: CacheKey) -> str | None:
        """The cached value, fresh or not, without fetching (to scrub it from messages)."""
        entry = self._entries.get(key)
        return entry.value if entry else None

    def invalidate(self, key: CacheKey, stale: str) -> None:
        """Forget ``stale`` after WeCom rejected it; a value another thread has already
        replaced it with is kept (no refresh storm when many calls fail at once)."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is not None and entry.value == stale:
                del self._entries[key]


def jsapi_signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """WeCom JS-SDK signature: sha1 of ``jsapi_ticket=T&noncestr=N&timestamp=TS&url=URL``,
    the URL taken without its ``#fragment`` (the browser never sends it)."""
    url = url.split("#", 1)[0]
    text = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(text.encode()).hexdigest()


def redact(text: str) -> str:
    """``text`` with access tokens, secrets and tickets in query strings replaced by ***."""
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=***", text)


class _RedactQuerySecrets(logging.Filter):
    """httpx logs every request URL at INFO, and WeCom puts the token (and, for
    ``gettoken``, the secret) in the query string: rewrite them before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def _redact_arg(arg: Any) -> Any:
    text = str(arg)
    return redact(text) if _SECRET_PARAMS.search(text) else arg


_installed = threading.Lock()


def install_log_redaction() -> None:
    """Attach the redacting filter to the httpx and httpcore loggers, once per process."""
    with _installed:
        for name in ("httpx", "httpcore"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _RedactQuerySecrets) for f in logger.filters):
                logger.addFilter(_RedactQuerySecrets())
