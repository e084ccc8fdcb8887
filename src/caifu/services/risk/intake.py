"""Risk news intake: files, request bodies and the watched folder → documents → stories.

    file / body ──► records (adapters/sources/news) ──► check (risk/documents)
                                                           │ bad: risk_rejections (kept, with
                                                           │      where, field, reason, raw)
                                                           ▼
                        duplicate (same url and text) ◄── fold (risk/stories) ──► new story
                                                           │ exact: same normalised text
                                                           │ near: MinHash ≥ 0.6, within 7 days
                                                           ▼
                                                  risk_documents + risk_stories

Every batch balances: ``received = stored + duplicates + rejected`` (``stored`` = new stories
+ exact folds + near folds), and its counts are kept in ``risk_batches``. Within a batch the
documents are folded in order of published time, then URL, so the earliest copy founds the
story and the same input gives the same stories whatever order its lines came in; across
batches a story grows as copies arrive. Folding runs under the tenant's ``risk-stories``
lock (the watcher, the API and the CLI may take in at once) and in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from caifu.adapters.sor.repos import risk as repo
from caifu.adapters.sources import news
from caifu.risk import stories as fold
from caifu.risk.documents import Document, Rejection, check
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

# a copy published more than this after (or before) a story began is another story: the
# monthly "立案调查进展" notices repeat nearly the same words about months-apart events
WINDOW = dt.timedelta(days=7)


@dataclass
class IntakeReport:
    batch_id: str
    channel: str  # file | api | watch
    origin: str  # file name, or api
    received: int = 0
    duplicates: int = 0
    new_stories: int = 0
    folded_exact: int = 0
    folded_near: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.new_stories + self.folded_exact + self.folded_near

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def balanced(self) -> bool:
        return self.received == self.stored + self.duplicates + self.rejected

    def plain(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "channel": self.channel, "origin": self.origin,
                "received": self.received, "stored": self.stored,
                "duplicates": self.duplicates, "rejected": self.rejected,
                "new_stories": self.new_stories, "folded_exact": self.folded_exact,
                "folded_near": self.folded_near, "balanced": self.balanced,
                "rejections": [{"where": r.where, "field": r.field, "reason": r.reason,
                                "message": r.message} for r in self.rejections],
                "documents": self.documents}


@dataclass(frozen=True)
class _Checked:
    doc: Document
    document_id: str
    content_hash: str
    signature: bytes
    buckets: list[str]


def _prepare(doc: Document) -> _Checked:
    content = fold.content_hash(doc.title, doc.body)
    document_id = "d" + hashlib.sha256(f"{doc.url}\n{content}".encode()).hexdigest()[:31]
    sig = fold.signature(doc.title, doc.body)
    return _Checked(doc, document_id, content, sig, fold.bands(sig))


class Intake:
    def __init__(self, container: Container) -> None:
        self.c = container

    def take_file(self, tenant: str, path: Path, channel: str = "file",
                  encoding: str = "utf-8") -> IntakeReport:
        """One file, one batch; a file refused whole raises a ``SourceError`` (nothing kept)."""
        get_tenant(self.c, tenant)
        data, records = news.read_file(path, encoding)
        return self.take(tenant, records, channel, path.name, hashlib.sha256(data).hexdigest())

    def take_body(self, tenant: str, body: bytes) -> IntakeReport:
        """A request body: a JSON array, or JSON Lines."""
        get_tenant(self.c, tenant)
        records = news.body_records(body)
        return self.take(tenant, records, "api", "api", hashlib.sha256(body).hexdigest())

    def take(self, tenant: str, records: list[news.Record], channel: str, origin: str,
             sha256: str) -> IntakeReport:
        zone = ZoneInfo(get_tenant(self.c, tenant).timezone)
        started = self.c.clock.now()
        report = IntakeReport(f"rn{started:%Y%m%d%H%M%S}{uuid.uuid4().hex[:10]}", channel,
                              origin, received=len(records))
        rejected_rows: list[dict[str, Any]] = []
        checked: list[_Checked] = []
        for position, rec in enumerate(records, 1):
            if rec.problem is not None:
                reason, field_name, message = rec.problem
                got: Document | Rejection = Rejection(rec.where, field_name, reason, message)
            else:
                got = check(rec.value, rec.where, zone, started)
            if isinstance(got, Rejection):
                report.rejections.append(got)
                rejected_rows.append({
                    "batch_id": report.batch_id, "position": position, "origin": origin,
                    "location": got.where, "field": got.field, "reason": got.reason,
                    "message": got.message, "raw": rec.raw.replace("\x00", "\\u0000"),
                    "received_at": started})
            else:
                checked.append(_prepare(got))
        checked.sort(key=lambda x: (x.doc.published_at, x.doc.url, x.content_hash))
        with self.c.lock(tenant, "risk-stories"), self.c.engine.begin() as conn:
            present = repo.existing_documents(conn, tenant, [x.document_id for x in checked])
            for x in checked:
                if x.document_id in present:
                    report.duplicates += 1
                    report.documents.append({"where": x.doc.where, "document_id": x.document_id,
                                             "story_id": None, "fold": "duplicate",
                                             "similarity": None})
                    continue
                present.add(x.document_id)
                self._fold(conn, tenant, report, x, origin)
            repo.add_rejections(conn, tenant, rejected_rows)
            repo.add_batch(conn, tenant, {
                "batch_id": report.batch_id, "channel": channel, "origin": origin[:300],
                "sha256": sha256, "received": report.received, "stored": report.stored,
                "duplicates": report.duplicates, "rejected": report.rejected,
                "new_stories": report.new_stories, "folded_exact": report.folded_exact,
                "folded_near": report.folded_near, "started_at": started,
                "finished_at": self.c.clock.now()})
        assert report.balanced, report.plain()
        return report

    def _fold(self, conn: Any, tenant: str, report: IntakeReport, x: _Checked,
              origin: str) -> None:
        now = self.c.clock.now()
        how, similarity = "exact", None
        story_id = repo.story_of_content(conn, tenant, x.content_hash)
        if story_id is None:
            published = x.doc.published_at
            candidates = repo.band_candidates(conn, tenant, x.buckets, published - WINDOW,
                                              published + WINDOW)
            by_document = {doc_id: sid for doc_id, sid, _ in candidates}
            match = fold.best_match(x.signature, [(d, sig) for d, _, sig in candidates])
            if match is not None:
                how, similarity = "near", match[1]
                story_id = by_document[match[0]]
        if story_id is None:
            how, story_id = "first", "s" + x.content_hash[:31]
            repo.add_story(conn, tenant, {
                "story_id": story_id, "title": x.doc.title, "first_document_id": x.document_id,
                "first_published_at": x.doc.published_at,
                "last_published_at": x.doc.published_at, "document_count": 1,
                "site_count": 1, "created_at": now, "updated_at": now})
        d = x.doc
        repo.add_document(conn, tenant, {
            "document_id": x.document_id, "story_id": story_id, "fold": how,
            "similarity": similarity, "batch_id": report.batch_id, "source": d.source,
            "site": d.site, "url": d.url, "published_at": d.published_at,
            "published_zone": d.published_zone, "title": d.title, "body": d.body,
            "language": d.language, "script": d.script, "content_hash": x.content_hash,
            "signature": x.signature, "origin": f"{origin[:240]}, {d.where}",
            "received_at": now}, x.buckets)
        if how == "first":
            report.new_stories += 1
        else:
            repo.refresh_story(conn, tenant, story_id, now)
            if how == "exact":
                report.folded_exact += 1
            else:
                report.folded_near += 1
        report.documents.append({"where": d.where, "document_id": x.document_id,
                                 "story_id": story_id, "fold": how, "similarity": similarity})


# --- what the API and the CLI read ---------------------------------------------------------

def list_stories(c: Container, tenant: str, limit: int = 50, offset: int = 0
                 ) -> dict[str, Any]:
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        total, rows = repo.stories(conn, tenant, limit, offset)
    return {"total": total, "limit": limit, "offset": offset,
            "items": [_story_public(r) for r in rows]}


def story_with_documents(c: Container, tenant: str, story_id: str
                         ) -> tuple[Any, list[dict[str, Any]]]:
    """The story's row and its documents; ``NotFoundError`` when the tenant has no such
    story (another tenant's id is the same answer)."""
    from caifu.core.errors import NotFoundError

    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        row = repo.story(conn, tenant, story_id)
        if row is None:
            raise NotFoundError(f"no story {story_id!r}")
        return row, list(repo.story_documents(conn, tenant, story_id))


def get_story(c: Container, tenant: str, story_id: str) -> dict[str, Any]:
    row, docs = story_with_documents(c, tenant, story_id)
    return {**_story_public(row), "sources": [_source_public(d) for d in docs]}


def list_rejections(c: Container, tenant: str, batch: str | None = None, limit: int = 100,
                    offset: int = 0) -> dict[str, Any]:
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        total, rows = repo.rejections(conn, tenant, batch, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": rows}


def list_batches(c: Container, tenant: str, limit: int = 30) -> list[dict[str, Any]]:
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        return repo.batches(conn, tenant, limit)


def _story_public(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("story_id", "title", "first_published_at", "last_published_at", "document_count",
            "site_count", "event_type", "classified_at")
    companies = json.loads(r["companies_json"]) if r["companies_json"] else None
    return {**{k: r[k] for k in keys}, "companies": companies}


def _source_public(d: dict[str, Any]) -> dict[str, Any]:
    keys = ("document_id", "fold", "similarity", "source", "site", "url", "published_at",
            "published_zone", "title", "language", "script", "received_at")
    return {k: d[k] for k in keys}
