"""Risk news' repository: documents, stories, the near-duplicate bands, rejected documents
and intake batches. Every function takes the tenant explicitly; a story of another tenant is
never a candidate, never listed, never found."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, distinct, func, insert, select, update

from caifu.adapters.sor.risk_models import (
    risk_batches,
    risk_documents,
    risk_rejections,
    risk_stories,
    risk_story_bands,
)

_IN_CHUNK = 500


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
