"""Chat intake and chat compliance.

    decrypted archive (JSON Lines, the shape of ../shared/reference/wecom.md)
        │ scrm/archive: one contract row per message, or a rejection with line and reason
        ▼
    customer resolved from the follow relation ─► Events (chat_message): lake + real-time tags
        │
        └─► the tenant's lexicon (text/compliance) over every message:
              advisor said something flagged  → review  (chat_compliance_flags, status open)
              customer sent his ID / card / password → alert (the advisor is warned; never blocked)

The review queue stores a masked excerpt, never the message; the message itself stays in the
lake (level 3, masked by default). A reviewer confirms or dismisses each flag, audited. The
lexicon is ``<workspace>/compliance/<tenant>.yaml`` when compliance has written one (it may
``extends: default``), else the packaged default; every flag records the lexicon version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, select, update

from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.adapters.sor.scrm_models import chat_compliance_flags as FLAGS
from caifu.core.errors import ConfigError, NotFoundError
from caifu.scrm.archive import convert_archive
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.ingest.realtime import Events
from caifu.services.platform.tenant_files import load_yaml
from caifu.services.platform.workspace import get_tenant
from caifu.text.compliance import Lexicon, excerpt

DECISIONS = ("confirmed", "dismissed")


def tenant_lexicon(c: Container, tenant: str) -> Lexicon:
    path = c.root / "compliance" / f"{tenant}.yaml"
    if path.is_file():
        return Lexicon.from_document(load_yaml(path.read_text("utf-8"), str(path)),
                                     source=str(path))
    return Lexicon.load()


@dataclass
class ChatIntake:
    lines: int = 0
    messages: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # line, msgid, reason
    skipped: dict[str, int] = field(default_factory=dict)
    events_pending: int = 0
    events_rejected: int = 0
    flags: Counter[str] = field(default_factory=Counter)  # review / alert
    lexicon_version: str = ""

    def plain(self) -> dict[str, Any]:
        return {"lines": self.lines, "messages": self.messages, "rejected": self.rejected,
                "skipped": self.skipped, "events_pending": self.events_pending,
                "events_rejected": self.events_rejected, "flags": dict(self.flags),
                "lexicon_version": self.lexicon_version}


def intake_archive(c: Container, tenant: str, lines: Iterable[bytes | str]) -> ChatIntake:
    """Decrypted archive messages in: to the real-time path and through the lexicon."""
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        advisors = scrm_repo.advisor_ids_by_userid(conn, tenant)
        follows = scrm_repo.follow_customers_by_pair(conn, tenant)
    batch = convert_archive(lines, advisors)
    out = ChatIntake(lines=batch.lines, messages=len(batch.rows), skipped=dict(batch.skipped),
                     rejected=[{"line": r.line, "msgid": r.msgid, "reason": r.reason}
                               for r in batch.rejections])
    for row in batch.rows:
        row["customer_id"] = follows.get((row["advisor_id"], row["external_userid"]))
    payloads = [{k: (v.isoformat() + "+00:00" if isinstance(v, dt.datetime) else v)
                 for k, v in row.items() if v is not None} for row in batch.rows]
    if payloads:
        for s in Events(c).submit_many(tenant, "chat_message", payloads):
            if s.status == "pending":
                out.events_pending += 1
            else:
                out.events_rejected += 1
    lexicon = tenant_lexicon(c, tenant)
    out.lexicon_version = lexicon.version
    out.flags = Counter(f["action"] for f in flag_messages(c, tenant, batch.rows, lexicon))
    return out


def flag_messages(c: Container, tenant: str, rows: Sequence[dict[str, Any]],
                  lexicon: Lexicon | None = None) -> list[dict[str, Any]]:
    """Check messages (contract rows) and store a flag for each finding to act on; a
    message checked again adds nothing (the flag id is stable)."""
    lexicon = lexicon or tenant_lexicon(c, tenant)
    texts = [r.get("content") if r.get("msg_type") == "text" else None for r in rows]
    now = c.clock.now()
    flags: list[dict[str, Any]] = []
    by_sender: dict[str, list[int]] = {"advisor": [], "customer": []}
    for i, r in enumerate(rows):
        if texts[i] and r.get("sender") in by_sender:
            by_sender[r["sender"]].append(i)
    for sender, idx in by_sender.items():
        results = lexicon.check_many([texts[i] for i in idx], sender)  # type: ignore[arg-type]
        for i, findings in zip(idx, results, strict=True):
            r = rows[i]
            for f in findings:
                if f.action not in {"review", "alert"}:
                    continue  # negated: counted in precision statistics, not queued
                key = f"{r['msg_id']}|{f.category}|{f.phrase}|{f.start}"
                flags.append({
                    "tenant_id": tenant,
                    "flag_id": hashlib.sha256(key.encode()).hexdigest()[:40],
                    "msg_id": r["msg_id"], "msg_time": r["msg_time"],
                    "advisor_id": r["advisor_id"], "external_userid": r["external_userid"],
                    "customer_id": r.get("customer_id"), "sender": sender,
                    "category": f.category, "phrase": f.phrase[:64], "action": f.action,
                    "excerpt": excerpt(texts[i] or "", f, lexicon=lexicon),
                    "lexicon_version": lexicon.version[:32], "status": "open",
                    "created_at": now})
    if flags:
        with c.engine.begin() as conn:
            have = set(conn.execute(select(FLAGS.c.flag_id).where(
                (FLAGS.c.tenant_id == tenant)
                & FLAGS.c.flag_id.in_([f["flag_id"] for f in flags]))).scalars())
            new = [f for f in {f["flag_id"]: f for f in flags}.values()
                   if f["flag_id"] not in have]
            if new:
                conn.execute(insert(FLAGS), new)
    return flags


def scan_lake(c: Container, tenant: str, since: dt.datetime | None = None) -> Counter[str]:
    """Run the lexicon over the chat history already in the lake (e.g. after compliance
    changed the lexicon, or for a broker's first import)."""
    con = c.duckdb(c.root)
    try:
        t = c.lake_table(con, tenant, "chat_messages")
        if t is None:
            return Counter()
        if since is not None:
            t = t.filter(t.msg_time >= since)
        cols = ["msg_id", "advisor_id", "external_userid", "customer_id", "msg_time", "sender",
                "msg_type", "content"]
        rows = t.filter(t.msg_type == "text").select(*cols).to_pyarrow().to_pylist()
    finally:
        con.disconnect()
    return Counter(f["action"] for f in flag_messages(c, tenant, rows))


def review_queue(c: Container, tenant: str, status: str = "open", limit: int = 100,
                 offset: int = 0) -> list[dict[str, Any]]:
    with c.engine.connect() as conn:
        rows = conn.execute(select(FLAGS).where(
            (FLAGS.c.tenant_id == tenant) & (FLAGS.c.status == status))
            .order_by(FLAGS.c.msg_time.desc(), FLAGS.c.flag_id).limit(limit).offset(offset))
        return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                 for k, v in r._mapping.items() if k != "tenant_id"} for r in rows]


def decide(c: Container, tenant: str, flag_id: str, decision: str, actor: str,
           note: str = "") -> dict[str, Any]:
    """A reviewer confirms (a violation) or dismisses (a false alarm) one flag — audited."""
    if decision not in DECISIONS:
        raise ConfigError(f"decision must be one of {', '.join(DECISIONS)}")
    key = and_(FLAGS.c.tenant_id == tenant, FLAGS.c.flag_id == flag_id)
    with c.engine.begin() as conn:
        row = conn.execute(select(FLAGS).where(key)).first()
        if row is None:
            raise NotFoundError(f"no flag {flag_id}")
        conn.execute(update(FLAGS).where(key).values(
            status=decision, reviewed_by=actor, reviewed_at=c.clock.now(), review_note=note or None))
    audit.append(c, tenant, actor, "flag_review",
                 customer_ids=[row.customer_id] if row.customer_id else [],
                 reason=json.dumps({"flag": flag_id, "decision": decision,
                                    "category": row.category}, ensure_ascii=False))
    return {"flag_id": flag_id, "status": decision}
