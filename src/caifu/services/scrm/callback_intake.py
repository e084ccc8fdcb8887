"""WeCom callbacks in: verify, decrypt, store, acknowledge — processing happens elsewhere.

    POST /wecom/{tenant}/callback ──► checks (scrm/callback) ──► wecom_callbacks (pending)
                                          │ rejected                    │ worker (wecom_events)
                                          ▼                             ▼
                             counted by tenant, day, reason      contacts, groups, tags

The request path does only what must happen before WeCom is told "success": the checks, one
insert. Retries of an event (WeCom resends when it saw no answer within 5 s) carry the same
decrypted XML, so its SHA-256 is the row's key and a retry is a no-op ``duplicate``. A
replayed request within the time window is the same XML again, so it too is a duplicate;
outside the window it is ``STALE_TIMESTAMP``.

Rejections are counted in memory and flushed to ``wecom_rejections`` by the worker: a flood
of forged requests costs a dictionary update each, not a database write each. Requests for a
tenant that does not exist or has no WeCom app are counted under ``UNKNOWN_TENANT`` /
``NO_APP`` by day for the process (``unattributed``: a platform_admin reads them through
``GET /v1/wecom/rejections``) and logged with their reason — never written to the database,
where they would be rows under a name an attacker chose.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from caifu.adapters.sor.scrm_models import wecom_callbacks, wecom_rejections
from caifu.core.errors import TenantError
from caifu.core.tenancy import check_tenant_id
from caifu.scrm.callback import (
    REPLAY_WINDOW_SECONDS,
    Event,
    envelope_encrypt,
    open_request,
    parse_event,
)
from caifu.scrm.crypto import CallbackRejected
from caifu.services.container import Container
from caifu.services.scrm.wecom_app import WeComApp, get_app

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    status: str  # accepted | duplicate
    digest: str
    event: str
    change_type: str


class RejectionCounter:
    """Rejections by (tenant, day, reason), kept in memory until ``flush``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, dt.date, str]] = Counter()
        self._last: dict[tuple[str, dt.date, str], dt.datetime] = {}
        # unknown tenants / no app, by (day, reason): kept for the process, never stored
        self.process_only: Counter[tuple[dt.date, str]] = Counter()

    def add(self, tenant: str | None, reason: str, at: dt.datetime) -> None:
        with self._lock:
            if tenant is None:
                self.process_only[(at.date(), reason)] += 1
                return
            key = (tenant, at.date(), reason)
            self._counts[key] += 1
            self._last[key] = at

    def unattributed(self, since: dt.date) -> list[dict[str, object]]:
        """Refusals no tenant owns (``UNKNOWN_TENANT``, ``NO_APP``) since the process began."""
        with self._lock:
            counts = dict(self.process_only)
        return [{"day": d.isoformat(), "reason": r, "count": n}
                for (d, r), n in sorted(counts.items()) if d >= since]

    def pending(self) -> dict[tuple[str, dt.date, str], int]:
        with self._lock:
            return dict(self._counts)

    def flush(self, c: Container) -> int:
        """Add the counts to ``wecom_rejections``; what fails to write stays for next time."""
        with self._lock:
            counts, last = self._counts, self._last
            self._counts, self._last = Counter(), {}
        if not counts:
            return 0
        try:
            with c.engine.begin() as conn:
                for (tenant, day, reason), n in counts.items():
                    key = ((wecom_rejections.c.tenant_id == tenant) & (wecom_rejections.c.day == day)
                           & (wecom_rejections.c.reason == reason))
                    done = conn.execute(update(wecom_rejections).where(key).values(
                        count=wecom_rejections.c.count + n,
                        last_at=last[(tenant, day, reason)])).rowcount
                    if not done:
                        conn.execute(insert(wecom_rejections).values(
                            tenant_id=tenant, day=day, reason=reason, count=n,
                            last_at=last[(tenant, day, reason)]))
        except Exception:
            with self._lock:
                self._counts.update(counts)
                for k, v in last.items():
                    self._last.setdefault(k, v)
            raise
        return sum(counts.values())


class Callbacks:
    def __init__(self, container: Container, counter: RejectionCounter | None = None,
                 window_seconds: int = REPLAY_WINDOW_SECONDS) -> None:
        self.c = container
        self.counter = counter or RejectionCounter()
        self.window = window_seconds
        self._write_lock: Any = (threading.Lock() if container.engine.dialect.name == "sqlite"
                                 else contextlib.nullcontext())

    def _app(self, tenant: str) -> WeComApp:
        try:
            check_tenant_id(tenant)
        except TenantError:
            raise CallbackRejected("UNKNOWN_TENANT") from None
        app = get_app(self.c, tenant)
        if app is None:
            raise CallbackRejected("NO_APP")
        return app

    def _reject(self, tenant: str, e: CallbackRejected, now: dt.datetime) -> CallbackRejected:
        known = e.reason not in {"UNKNOWN_TENANT", "NO_APP"}
        self.counter.add(tenant if known else None, e.reason, now)
        log.info("wecom callback rejected", extra={"tenant": tenant if known else "-",
                                                  "reason": e.reason})
        return e

    def refuse(self, tenant: str, reason: str) -> None:
        """Count and raise a rejection found outside these checks (an oversized body)."""
        try:
            self._app(tenant)
            e = CallbackRejected(reason)
        except CallbackRejected as unknown:
            e = unknown
        raise self._reject(tenant, e, self.c.clock.now())

    def verify_url(self, tenant: str, params: dict[str, str],
                   now: dt.datetime | None = None) -> str:
        """GET: the decrypted echostr, to be answered as the plain body."""
        now = now or self.c.clock.now()
        try:
            app = self._app(tenant)
            echostr = params.get("echostr", "")
            if not echostr:
                raise CallbackRejected("MISSING_PARAMETER", "echostr")
            return open_request(app.crypto(), params, echostr, now, self.window).decode()
        except CallbackRejected as e:
            raise self._reject(tenant, e, now) from None
        except UnicodeDecodeError:
            raise self._reject(tenant, CallbackRejected("BAD_ECHOSTR"), now) from None

    def receive(self, tenant: str, params: dict[str, str], body: bytes,
                now: dt.datetime | None = None) -> Receipt:
        """POST: store the event for the worker, or raise ``CallbackRejected`` (counted)."""
        now = now or self.c.clock.now()
        try:
            app = self._app(tenant)
            xml = open_request(app.crypto(), params, envelope_encrypt(body), now, self.window)
            event = parse_event(xml)
        except CallbackRejected as e:
            raise self._reject(tenant, e, now) from None
        return self._store(tenant, xml, event, now)

    def _store(self, tenant: str, xml: bytes, event: Event, now: dt.datetime) -> Receipt:
        row = {"tenant_id": tenant, "digest": event.digest, "received_at": now,
               "create_time": event.create_time, "event": event.event,
               "change_type": event.change_type, "xml": xml.decode("utf-8", "replace"),
               "status": "pending"}
        status = "duplicate"
        # SQLite has one writer: threads that queue here instead of in its busy handler (which
        # sleeps in growing steps) keep the acknowledgement fast under concurrent callbacks
        with self._write_lock:
            with self.c.engine.connect() as conn:
                seen = conn.execute(select(wecom_callbacks.c.digest).where(
                    (wecom_callbacks.c.tenant_id == tenant)
                    & (wecom_callbacks.c.digest == event.digest))).first()
            if seen is None:
                try:
                    with self.c.engine.begin() as conn:
                        conn.execute(insert(wecom_callbacks).values(**row))
                    status = "accepted"
                except IntegrityError:  # a retry racing its original: the first one won
                    pass
        return Receipt(status, event.digest, event.event, event.change_type)

    def rejections(self, tenant: str, days: int = 7) -> list[dict[str, object]]:
        """Stored counts for the last ``days`` days plus what is not flushed yet."""
        since = self.c.clock.now().date() - dt.timedelta(days=days - 1)
        with self.c.engine.connect() as conn:
            rows = conn.execute(select(wecom_rejections).where(
                (wecom_rejections.c.tenant_id == tenant) & (wecom_rejections.c.day >= since))
                .order_by(wecom_rejections.c.day, wecom_rejections.c.reason)).all()
        counts: Counter[tuple[dt.date, str]] = Counter()
        for r in rows:
            counts[(r.day, r.reason)] += r.count
        for (t, day, reason), n in self.counter.pending().items():
            if t == tenant and day >= since:
                counts[(day, reason)] += n
        return [{"day": d.isoformat(), "reason": r, "count": n}
                for (d, r), n in sorted(counts.items())]

    def unattributed(self, days: int = 7) -> list[dict[str, object]]:
        """This process's refusals of unknown tenants and tenants without an app."""
        return self.counter.unattributed(self.c.clock.now().date() - dt.timedelta(days=days - 1))
