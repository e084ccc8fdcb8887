"""Data quality's repository: batch profiles (``ingest_profiles``, written in the batch's own
commit) beside the ingest log, and the alerts (``quality_alerts``).

Every function takes the tenant explicitly. At most one alert per (table, rule, subject) is
open: the unique index on ``open_key`` holds that even against two checks at once.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from caifu.adapters.sor.models import ingest_log
from caifu.adapters.sor.quality_models import ingest_profiles, quality_alerts

P, A, L = ingest_profiles, quality_alerts, ingest_log


def add_profile(conn: Connection, tenant: str, batch_id: str, table: str, *, rows: int,
                nulls: dict[str, int], date_column: str | None, oldest: dt.date | None,
                newest: dt.date | None, now: dt.datetime) -> None:
    conn.execute(insert(P).values(
        tenant_id=tenant, batch_id=batch_id, table_name=table, rows_loaded=rows,
        nulls_json=json.dumps(nulls, sort_keys=True), date_column=date_column,
        oldest_date=oldest, newest_date=newest, profiled_at=now))


def _batches() -> Any:
    """Committed batches with their profile (none for a batch from before profiles)."""
    return (select(L.c.batch_id, L.c.table_name, L.c.source_path, L.c.started_at,
                   L.c.finished_at, L.c.rows_in, L.c.loaded, L.c.quarantined, L.c.duplicates,
                   P.c.rows_loaded, P.c.nulls_json, P.c.date_column, P.c.oldest_date,
                   P.c.newest_date)
            .select_from(L.outerjoin(P, and_(P.c.tenant_id == L.c.tenant_id,
                                             P.c.batch_id == L.c.batch_id)))
            .where(L.c.status == "committed"))


def latest_batches(conn: Connection, tenant: str, table: str) -> list[dict[str, Any]]:
    """The table's newest committed batch and the one before it (as ``history`` rows)."""
    return history(conn, tenant, table, limit=2)


def history(conn: Connection, tenant: str, table: str | None = None,
            since: dt.datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Committed batches, newest first, with their profile's columns (``None`` without)."""
    q = _batches().where(L.c.tenant_id == tenant)
    if table is not None:
        q = q.where(L.c.table_name == table)
    if since is not None:
        q = q.where(L.c.started_at >= since)
    q = q.order_by(L.c.started_at.desc(), L.c.batch_id.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def newest_dates(conn: Connection, tenant: str) -> dict[str, dict[str, Any]]:
    """Per table: the newest business date written, its column, the last committed batch's
    start, and the number of committed batches."""
    q = (select(L.c.table_name, func.max(P.c.newest_date), func.max(P.c.date_column),
                func.max(L.c.started_at), func.count())
         .select_from(L.outerjoin(P, and_(P.c.tenant_id == L.c.tenant_id,
                                          P.c.batch_id == L.c.batch_id)))
         .where(L.c.tenant_id == tenant, L.c.status == "committed")
         .group_by(L.c.table_name))
    return {t: {"newest_date": newest, "date_column": col, "last_load": last,
                "batches": int(n)}
            for t, newest, col, last, n in conn.execute(q)}


def alerts(conn: Connection, tenant: str, status: str | None = "open",
           table: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    q = (select(*(c for c in A.c if c.name not in ("tenant_id", "open_key")))
         .where(A.c.tenant_id == tenant))
    if status is not None:
        q = q.where(A.c.status == status)
    if table is not None:
        q = q.where(A.c.table_name == table)
    q = q.order_by(A.c.raised_at.desc(), A.c.table_name, A.c.rule, A.c.subject).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def apply(conn: Connection, tenant: str, table: str, rule: str, subject: str, *,
          breached: bool, observed: float | None, threshold: float | None,
          batch_id: str | None, detail: str, now: dt.datetime, by: str) -> str:
    """Record one check: a breach raises an alert, or updates the open one (``"raised"`` /
    ``"still open"``); a pass resolves the open one (``"resolved"``) or does nothing
    (``"ok"``). ``by``: the batch or ``"check"`` that judged it."""
    is_open = and_(A.c.tenant_id == tenant, A.c.table_name == table, A.c.rule == rule,
                   A.c.subject == subject, A.c.open_key == "1")
    if not breached:
        done = conn.execute(update(A).where(is_open).values(
            status="resolved", open_key=None, resolved_at=now, resolved_by=by))
        return "resolved" if done.rowcount else "ok"
    seen = {"observed": observed, "threshold": threshold, "detail": detail,
            "batch_id": batch_id, "last_seen_at": now}
    if conn.execute(update(A).where(is_open).values(**seen)).rowcount:
        return "still open"
    try:
        with conn.begin_nested():  # another check may have raised it a moment ago
            conn.execute(insert(A).values(
                tenant_id=tenant, alert_id=uuid.uuid4().hex, table_name=table, rule=rule,
                subject=subject, status="open", open_key="1", raised_at=now, **seen))
    except IntegrityError:
        conn.execute(update(A).where(is_open).values(**seen))
        return "still open"
    return "raised"
