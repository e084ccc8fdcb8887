"""Risk news' repository: documents, stories, the near-duplicate bands, rejected documents
and intake batches. Every function takes the tenant explicitly; a story of another tenant is
never a candidate, never listed, never found."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    delete,
    distinct,
    exists,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import FromClause

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import customer_scope
from caifu.adapters.sor.repos.profiles import bulk_insert
from caifu.adapters.sor.risk_models import (
    risk_alert_evidence,
    risk_alert_messages,
    risk_alerts,
    risk_aliases,
    risk_batches,
    risk_documents,
    risk_rejections,
    risk_relations,
    risk_stories,
    risk_story_bands,
    risk_task_events,
    risk_tasks,
)

_IN_CHUNK = 500
_REFERENCE = {"aliases": risk_aliases, "relations": risk_relations}


def existing_documents(conn: Connection, tenant: str, document_ids: Sequence[str]) -> set[str]:
    d = risk_documents
    found: set[str] = set()
    for i in range(0, len(document_ids), _IN_CHUNK):
        found.update(conn.execute(select(d.c.document_id).where(
            d.c.tenant_id == tenant, d.c.document_id.in_(document_ids[i:i + _IN_CHUNK]))
        ).scalars())
    return found


def story_of_content(conn: Connection, tenant: str, content_hash: str) -> str | None:
    """The story of a stored document with this exact content (the oldest, if several)."""
    d = risk_documents
    return conn.execute(select(d.c.story_id).where(
        d.c.tenant_id == tenant, d.c.content_hash == content_hash)
        .order_by(d.c.story_id).limit(1)).scalar()


def band_candidates(conn: Connection, tenant: str, buckets: Sequence[str],
                    since: dt.datetime, until: dt.datetime) -> list[tuple[str, str, bytes]]:
    """(document id, story id, signature) of the documents sharing a bucket with ``buckets``
    whose story began between ``since`` and ``until``, ordered by document id."""
    b, d, s = risk_story_bands, risk_documents, risk_stories
    rows = conn.execute(
        select(b.c.document_id, b.c.story_id, d.c.signature).distinct()
        .join(d, (d.c.tenant_id == b.c.tenant_id) & (d.c.document_id == b.c.document_id))
        .join(s, (s.c.tenant_id == b.c.tenant_id) & (s.c.story_id == b.c.story_id))
        .where(b.c.tenant_id == tenant, b.c.bucket.in_(list(buckets)),
               s.c.first_published_at >= since, s.c.first_published_at <= until)
        .order_by(b.c.document_id)).all()
    return [(r[0], r[1], bytes(r[2])) for r in rows]


def add_story(conn: Connection, tenant: str, story: dict[str, Any]) -> None:
    conn.execute(insert(risk_stories).values(tenant_id=tenant, **story))


def add_document(conn: Connection, tenant: str, document: dict[str, Any],
                 buckets: Iterable[str]) -> None:
    conn.execute(insert(risk_documents).values(tenant_id=tenant, **document))
    conn.execute(insert(risk_story_bands), [
        {"tenant_id": tenant, "bucket": k, "document_id": document["document_id"],
         "story_id": document["story_id"]} for k in buckets])


def refresh_story(conn: Connection, tenant: str, story_id: str, now: dt.datetime) -> None:
    """Recount a story's documents and sites and widen its published span."""
    d = risk_documents
    mine = (d.c.tenant_id == tenant) & (d.c.story_id == story_id)
    n, sites, first, last = conn.execute(select(
        func.count(), func.count(distinct(d.c.site)), func.min(d.c.published_at),
        func.max(d.c.published_at)).where(mine)).one()
    conn.execute(update(risk_stories).where(
        risk_stories.c.tenant_id == tenant, risk_stories.c.story_id == story_id).values(
        document_count=n, site_count=sites, first_published_at=first, last_published_at=last,
        updated_at=now))


def add_rejections(conn: Connection, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(risk_rejections), [{"tenant_id": tenant, **r} for r in rows])


def add_batch(conn: Connection, tenant: str, batch: dict[str, Any]) -> None:
    conn.execute(insert(risk_batches).values(tenant_id=tenant, **batch))


def stories(conn: Connection, tenant: str, limit: int, offset: int,
            since: dt.datetime | None = None) -> tuple[int, list[dict[str, Any]]]:
    """The tenant's stories, newest published first, and how many there are."""
    s = risk_stories
    where = [s.c.tenant_id == tenant]
    if since is not None:
        where.append(s.c.last_published_at >= since)
    total = conn.execute(select(func.count()).select_from(s).where(*where)).scalar_one()
    rows = conn.execute(select(s).where(*where)
                        .order_by(s.c.last_published_at.desc(), s.c.story_id)
                        .limit(limit).offset(offset)).mappings().all()
    return total, [dict(r) for r in rows]


def story(conn: Connection, tenant: str, story_id: str) -> dict[str, Any] | None:
    s = risk_stories
    row = conn.execute(select(s).where(s.c.tenant_id == tenant, s.c.story_id == story_id)
                       ).mappings().first()
    return dict(row) if row else None


def story_documents(conn: Connection, tenant: str, story_id: str) -> list[dict[str, Any]]:
    """The story's documents (every source), earliest published first; no signatures."""
    d = risk_documents
    cols = [c for c in d.c if c.name not in ("tenant_id", "signature")]
    rows = conn.execute(select(*cols).where(d.c.tenant_id == tenant, d.c.story_id == story_id)
                        .order_by(d.c.published_at, d.c.document_id)).mappings().all()
    return [dict(r) for r in rows]


def rejections(conn: Connection, tenant: str, batch: str | None, limit: int,
               offset: int) -> tuple[int, list[dict[str, Any]]]:
    """Rejected documents, newest first (``batch``: a batch id or its first characters)."""
    r = risk_rejections
    where = [r.c.tenant_id == tenant]
    if batch:
        where.append(r.c.batch_id.startswith(batch, autoescape=True))
    total = conn.execute(select(func.count()).select_from(r).where(*where)).scalar_one()
    rows = conn.execute(select(*[c for c in r.c if c.name != "tenant_id"]).where(*where)
                        .order_by(r.c.received_at.desc(), r.c.batch_id, r.c.position)
                        .limit(limit).offset(offset)).mappings().all()
    return total, [dict(x) for x in rows]


def batches(conn: Connection, tenant: str, limit: int) -> list[dict[str, Any]]:
    b = risk_batches
    rows = conn.execute(select(*[c for c in b.c if c.name != "tenant_id"])
                        .where(b.c.tenant_id == tenant)
                        .order_by(b.c.started_at.desc(), b.c.batch_id).limit(limit)
                        ).mappings().all()
    return [dict(r) for r in rows]


# --- linking, classification, alerts and tasks (issue 15, point 6) ---------------------------

def set_companies(conn: Connection, tenant: str, story_id: str, companies_json: str,
                  now: dt.datetime) -> None:
    s = risk_stories
    conn.execute(update(s).where(s.c.tenant_id == tenant, s.c.story_id == story_id)
                 .values(companies_json=companies_json, linked_at=now))


def set_classification(conn: Connection, tenant: str, story_id: str, event_type: str,
                       polarity: str, by: str, now: dt.datetime, severity: str | None = None,
                       evidence_json: str | None = None, model_version: str | None = None
                       ) -> None:
    s = risk_stories
    conn.execute(update(s).where(s.c.tenant_id == tenant, s.c.story_id == story_id)
                 .values(event_type=event_type, polarity=polarity, classified_by=by,
                         classified_at=now, severity=severity,
                         event_evidence_json=evidence_json, event_model_version=model_version))


def set_processing_error(conn: Connection, tenant: str, story_id: str, error: str | None,
                         at: dt.datetime | None) -> None:
    """Record why a story's processing failed (``error``), or clear it (None) once it ran."""
    s = risk_stories
    conn.execute(update(s).where(s.c.tenant_id == tenant, s.c.story_id == story_id)
                 .values(processing_error=error, processing_failed_at=at))


def unprocessed_stories(conn: Connection, tenant: str, limit: int) -> list[str]:
    """Stories never classified, or whose last processing failed: earliest published first."""
    s = risk_stories
    rows = conn.execute(select(s.c.story_id).where(
        s.c.tenant_id == tenant,
        s.c.classified_at.is_(None) | s.c.processing_error.is_not(None))
        .order_by(s.c.first_published_at, s.c.story_id).limit(limit)).scalars().all()
    return list(rows)


def alerted_events(conn: Connection, tenant: str, story_id: str, codes: Sequence[str],
                   event_type: str, since: dt.datetime, until: dt.datetime
                   ) -> dict[tuple[str, str], str]:
    """(customer, security) → alert id of the alerts this story repeats: raised by the same
    story, or about the same security and event type with an event time in [since, until]."""
    a = risk_alerts
    same_event = and_(a.c.security_code.in_(list(codes)), a.c.event_type == event_type,
                      a.c.event_at >= since, a.c.event_at <= until)
    rows = conn.execute(select(a.c.customer_id, a.c.security_code, a.c.alert_id)
                        .where(a.c.tenant_id == tenant, (a.c.story_id == story_id) | same_event)
                        .order_by(a.c.event_at, a.c.alert_id))
    out: dict[tuple[str, str], str] = {}
    for r in rows:
        out.setdefault((r.customer_id, r.security_code), r.alert_id)
    return out


def add_repeat(conn: Connection, tenant: str, alert_ids: Sequence[str], story_id: str) -> int:
    """Note ``story_id`` on alerts it repeats (once each); how many alerts changed."""
    a = risk_alerts
    changed = 0
    for i in range(0, len(alert_ids), _IN_CHUNK):
        rows = conn.execute(select(a.c.alert_id, a.c.story_id, a.c.repeat_story_ids_json).where(
            a.c.tenant_id == tenant, a.c.alert_id.in_(alert_ids[i:i + _IN_CHUNK]))).all()
        for r in rows:
            seen = json.loads(r.repeat_story_ids_json)
            if story_id == r.story_id or story_id in seen:
                continue
            conn.execute(update(a).where(a.c.tenant_id == tenant, a.c.alert_id == r.alert_id)
                         .values(repeat_story_ids_json=json.dumps([*seen, story_id])))
            changed += 1
    return changed


def text_key(*parts: str | bool) -> str:
    """The key of an alert's shared text: ``text_key(evidence_json)`` is its
    ``evidence_hash``, ``text_key(message, may_send, notes)`` its ``message_hash``. SHA-256
    of the parts as a JSON list, 128 bits in hex (as unlikely to collide as alert ids)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def _insert_absent(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose key is not there yet (another story's raise may have stored
    the same text; the risk-alerts lock is per workspace, a shared database is not)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def add_alerts(conn: Connection, tenant: str, alerts: Mapping[str, Sequence[Any]],
               tasks: Mapping[str, Sequence[Any]], events: Mapping[str, Sequence[Any]],
               evidence: Mapping[str, str],
               messages: Mapping[str, tuple[str, bool, str]]) -> None:
    """Insert alerts, their tasks and the tasks' first events, given column-wise (one
    sequence per column, the same length in each table), and the text they reference:
    ``evidence`` (``evidence_hash`` → JSON) and ``messages`` (``message_hash`` → message,
    may send, notes), each stored once per tenant. A story about a widely held stock raises
    100k+ alerts: they go to the driver in bulk (COPY on PostgreSQL, ``executemany`` of
    tuples on SQLite) rather than through SQLAlchemy's per-row parameter handling."""
    _insert_absent(conn, risk_alert_evidence, [
        {"tenant_id": tenant, "evidence_hash": k, "evidence_json": v}
        for k, v in sorted(evidence.items())])
    _insert_absent(conn, risk_alert_messages, [
        {"tenant_id": tenant, "message_hash": k, "message": text, "message_may_send": may,
         "message_notes": notes} for k, (text, may, notes) in sorted(messages.items())])
    for table, columns in ((risk_alerts, alerts), (risk_tasks, tasks),
                           (risk_task_events, events)):
        n = len(next(iter(columns.values()), ()))
        if n:
            bulk_insert(conn, table, {"tenant_id": [tenant] * n, **columns})


def alert_view(alerts: Table, evidence: Table, messages: Table
               ) -> tuple[FromClause, list[Any]]:
    """Alerts as every reader gets them, and as ``risk_alerts`` held them up to migration
    0012: each reference to shared text replaced, in its place, by the text's columns
    (``evidence_hash`` → ``evidence_json``; ``message_hash`` → ``message``,
    ``message_may_send``, ``message_notes``). The tables may be the models or, for an
    export, reflected from the database (its column order)."""
    shared = {"evidence_hash": evidence, "message_hash": messages}
    joined: FromClause = alerts
    columns: list[Any] = []
    for col in alerts.c:
        t = shared.get(col.name)
        if t is None:
            columns.append(col)
            continue
        joined = joined.join(t, (t.c.tenant_id == alerts.c.tenant_id) & (t.c[col.name] == col))
        columns += [c for c in t.c if c.name not in ("tenant_id", col.name)]
    return joined, columns


def _in_scope(column: Any, scope: customer_scope.Scope | None) -> Any:
    """A condition: the customer in ``column`` is in ``scope`` (None: no restriction)."""
    if scope is None:
        return true()
    cu = customer_scope.customers
    return exists().where(cu.c.customer_id == column, customer_scope.condition(scope))


def alerts(conn: Connection, tenant: str, scope: customer_scope.Scope | None,
           status: str | None, customer_id: str | None, limit: int, offset: int,
           among: Sequence[str] = ()) -> tuple[int, list[dict[str, Any]]]:
    """Alerts with their task's id, status and advisor, newest event first; ``among``: only
    those whose task is in one of these statuses."""
    a, t = risk_alerts, risk_tasks
    where = [a.c.tenant_id == tenant, _in_scope(a.c.customer_id, scope)]
    if status:
        where.append(t.c.status == status)
    if among:
        where.append(t.c.status.in_(list(among)))
    if customer_id:
        where.append(a.c.customer_id == customer_id)
    on = (t.c.tenant_id == a.c.tenant_id) & (t.c.alert_id == a.c.alert_id)
    view, columns = alert_view(a, risk_alert_evidence, risk_alert_messages)
    return _page(conn, a.join(t, on), view.join(t, on), where,
                 [*(c for c in columns if c.name != "tenant_id"), t.c.task_id, t.c.status],
                 (a.c.event_at.desc(), a.c.alert_id), limit, offset)


def tasks(conn: Connection, tenant: str, scope: customer_scope.Scope | None,
          advisor_id: str | None, status: str | None, customer_id: str | None, limit: int,
          offset: int) -> tuple[int, list[dict[str, Any]]]:
    """Tasks with their alert's story, company, event and position, newest first."""
    a, t = risk_alerts, risk_tasks
    where = [t.c.tenant_id == tenant, _in_scope(t.c.customer_id, scope)]
    if advisor_id:
        where.append(t.c.advisor_id == advisor_id)
    if status:
        where.append(t.c.status == status)
    if customer_id:
        where.append(t.c.customer_id == customer_id)
    m = risk_alert_messages
    j = t.join(a, (a.c.tenant_id == t.c.tenant_id) & (a.c.alert_id == t.c.alert_id))
    with_message = j.join(m, (m.c.tenant_id == a.c.tenant_id)
                          & (m.c.message_hash == a.c.message_hash))
    return _page(conn, j, with_message, where,
                 [*(c for c in t.c if c.name != "tenant_id"), a.c.story_id,
                  a.c.security_code, a.c.company_name, a.c.event_type, a.c.event_at,
                  a.c.market_value, a.c.unrealised_pnl, a.c.value_at_risk, m.c.message,
                  m.c.message_may_send],
                 (t.c.created_at.desc(), t.c.task_id), limit, offset)


def _page(conn: Connection, counted: Any, joined: Any, where: list[Any], columns: list[Any],
          order: tuple[Any, ...], limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """``(rows matching, one page of them)`` of a joined list query; ``counted`` is the
    join without the alerts' shared text (an inner join to it changes no count)."""
    total = conn.execute(select(func.count()).select_from(counted).where(*where)).scalar_one()
    rows = conn.execute(select(*columns).select_from(joined).where(*where).order_by(*order)
                        .limit(limit).offset(offset)).mappings().all()
    return int(total), [dict(r) for r in rows]


def task(conn: Connection, tenant: str, task_id: str,
         scope: customer_scope.Scope | None = None) -> dict[str, Any] | None:
    t = risk_tasks
    cols = [c for c in t.c if c.name != "tenant_id"]
    row = conn.execute(select(*cols).where(t.c.tenant_id == tenant, t.c.task_id == task_id,
                                       _in_scope(t.c.customer_id, scope))).mappings().first()
    return dict(row) if row else None


def move_task(conn: Connection, tenant: str, task_id: str, current: str, new: str,
              actor: str, reason: str | None, now: dt.datetime) -> bool:
    """Move a task from ``current`` to ``new`` and record it; False if its status was no
    longer ``current`` (someone moved it meanwhile)."""
    t, e = risk_tasks, risk_task_events
    done = conn.execute(update(t).where(t.c.tenant_id == tenant, t.c.task_id == task_id,
                                        t.c.status == current)
                        .values(status=new, reason=reason, updated_at=now, updated_by=actor))
    if done.rowcount != 1:
        return False
    seq = conn.execute(select(func.coalesce(func.max(e.c.seq), 0)).where(
        e.c.tenant_id == tenant, e.c.task_id == task_id)).scalar_one()
    conn.execute(insert(e).values(tenant_id=tenant, task_id=task_id, seq=seq + 1,
                                  from_status=current, to_status=new, actor=actor, at=now,
                                  reason=reason))
    return True


def task_history(conn: Connection, tenant: str, task_id: str) -> list[dict[str, Any]]:
    e = risk_task_events
    rows = conn.execute(select(e.c.seq, e.c.from_status, e.c.to_status, e.c.actor, e.c.at,
                               e.c.reason).where(e.c.tenant_id == tenant,
                                                 e.c.task_id == task_id)
                        .order_by(e.c.seq)).mappings().all()
    return [dict(r) for r in rows]


def fund_names(conn: Connection, tenant: str, fund_codes: Sequence[str]) -> dict[str, str]:
    """The tenant's fund products' names by code (for the routes of an alert)."""
    f = CONTRACT_TABLES["fund_products"]
    out: dict[str, str] = {}
    for i in range(0, len(fund_codes), _IN_CHUNK):
        out.update(conn.execute(select(f.c.fund_code, f.c.name).where(
            f.c.tenant_id == tenant, f.c.fund_code.in_(fund_codes[i:i + _IN_CHUNK]))).tuples().all())
    return out


# A tenant's reference data for the company linker: aliases and party relations.

def reference_rows(conn: Connection, tenant: str, table: str) -> list[dict[str, Any]]:
    """Every row of the tenant's ``aliases`` or ``relations`` table, in key order."""
    t = _REFERENCE[table]
    cols = [c for c in t.c if c.name != "tenant_id"]
    keys = [c for c in t.primary_key.columns if c.name != "tenant_id"]
    return [dict(r) for r in conn.execute(select(*cols).where(t.c.tenant_id == tenant)
                                          .order_by(*keys)).mappings()]


def reference_version(conn: Connection, tenant: str) -> tuple[Any, ...]:
    """A stamp that changes whenever the tenant's aliases or relations change: rows and the
    latest load time of each table."""
    out: list[Any] = []
    for t in (risk_aliases, risk_relations):
        out += list(conn.execute(select(func.count(), func.max(t.c.loaded_at))
                                 .where(t.c.tenant_id == tenant)).one())
    return tuple(out)


def replace_reference(conn: Connection, tenant: str, table: str,
                      rows: Sequence[dict[str, Any]], *, replace_all: bool) -> tuple[int, int]:
    """Upsert ``rows`` (by key) into the tenant's ``aliases`` or ``relations``; with
    ``replace_all`` the tenant's other rows go. ``(added, updated)``."""
    t = _REFERENCE[table]
    keys = [c.name for c in t.primary_key.columns if c.name != "tenant_id"]
    stored = {tuple(r[k] for k in keys) for r in reference_rows(conn, tenant, table)}
    if replace_all:
        conn.execute(delete(t).where(t.c.tenant_id == tenant))
    added = updated = 0
    for r in rows:
        key = tuple(r[k] for k in keys)
        if key in stored and not replace_all:
            conn.execute(update(t).where(t.c.tenant_id == tenant,
                                         *(t.c[k] == r[k] for k in keys)).values(**r))
        else:
            conn.execute(insert(t).values(tenant_id=tenant, **r))
        if key in stored:
            updated += 1
        else:
            added += 1
    return added, updated
