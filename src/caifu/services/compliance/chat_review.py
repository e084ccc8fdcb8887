"""Chat intake and chat compliance.

    decrypted archive (JSON Lines, the shape of ../shared/reference/wecom.md)
        │ scrm/archive: one contract row per message, or a rejection with line and reason
        ▼
    customer resolved from the follow relation ─► Events (chat_message): lake + real-time tags
        │
        └─► the review (``flag_messages``) over every text message:
              advisor: the tenant's lexicon (explainable first pass) + the advisor classifier
                       of the HybridTagger (paraphrase) → review (chat_compliance_flags, open)
              customer sent his ID / card / password → alert (the advisor is warned; never blocked)

**Advisor messages** go through ``caifu.text.hybrid.HybridTagger`` with the tenant's lexicon
and model: a lexicon hit counts when the classifier does not contradict it (its margin within
the calibrated slack of the threshold) and is not negated in its clause; the classifier adds
the violations the lexicon has no phrase for. So a product type (保本型基金), a risk warning or a
disclaimer (不保证收益) is not queued because it contains 保本 or 收益. One flag per lexicon hit
(``source: lexicon``, the phrase and its span) and one per violation only the model found
(``source: model``, its score and top n-grams); each stores that evidence as JSON, the lexicon
version and the model version. Lexicon categories with no violation id in the taxonomy
(``sensitive_data``, a tenant's own) are flagged by the lexicon alone, as before.

The queue's categories are the lexicon's names (``QUEUE_CATEGORY`` maps the taxonomy's
violation ids onto them; ``private_dealing`` is the one new name). The queue stores a masked
excerpt, never the message; the message itself stays in the lake (level 3, masked by
default). A reviewer confirms or dismisses each flag, audited. The lexicon is
``<workspace>/compliance/<tenant>.yaml`` when compliance has written one (it may
``extends: default``), else the packaged default; the model is the tenant's
(``caifu text train -t``) or the shipped one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
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
from caifu.services.text import models as text_models
from caifu.text.compliance import Finding, Lexicon, excerpt
from caifu.text.hybrid import COMPLIANCE_TO_TAXONOMY, HybridTagger, MessageTags

DECISIONS = ("confirmed", "dismissed")
# taxonomy violation id -> review-queue category (the lexicon's names, kept stable)
QUEUE_CATEGORY = {label: cat for cat, label in COMPLIANCE_TO_TAXONOMY.items()} | {
    "private_dealing": "private_dealing"}
_DIGIT_RUN = re.compile(r"\d{6,}")
_TAGGERS: dict[tuple[Any, ...], HybridTagger] = {}


def tenant_lexicon(c: Container, tenant: str) -> Lexicon:
    path = c.root / "compliance" / f"{tenant}.yaml"
    if path.is_file():
        return Lexicon.from_document(load_yaml(path.read_text("utf-8"), str(path)),
                                     source=str(path))
    return Lexicon.load()


def review_tagger(c: Container, tenant: str, lexicon: Lexicon) -> HybridTagger:
    """The advisor-side hybrid: the tenant's model (or the shipped one), taxonomy and lexicon.
    Built once per (model and taxonomy, lexicon) and kept: intake runs per archive batch."""
    lex_file = c.root / "compliance" / f"{tenant}.yaml"
    key = (text_models.tagger_version(c, tenant), lexicon.source, lexicon.version,
           lex_file.stat().st_mtime_ns if lex_file.is_file() else 0)
    tagger = _TAGGERS.get(key)
    if tagger is None:
        tagger = HybridTagger.load(text_models.model_dir(c, tenant), lexicon=lexicon,
                                   taxonomy=text_models.taxonomy(c, tenant))
        if len(_TAGGERS) > 32:
            _TAGGERS.clear()
        _TAGGERS[key] = tagger
    return tagger


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
    model_version: str = ""

    def plain(self) -> dict[str, Any]:
        return {"lines": self.lines, "messages": self.messages, "rejected": self.rejected,
                "skipped": self.skipped, "events_pending": self.events_pending,
                "events_rejected": self.events_rejected, "flags": dict(self.flags),
                "lexicon_version": self.lexicon_version, "model_version": self.model_version}


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
    out.model_version = review_tagger(c, tenant, lexicon).model.version
    out.flags = Counter(f["action"] for f in flag_messages(c, tenant, batch.rows, lexicon))
    return out


def flag_messages(c: Container, tenant: str, rows: Sequence[dict[str, Any]],
                  lexicon: Lexicon | None = None) -> list[dict[str, Any]]:
    """Check messages (contract rows) and store a flag for each finding to act on; a
    message checked again adds nothing (the flag id is stable)."""
    lexicon = lexicon or tenant_lexicon(c, tenant)
    tagger = review_tagger(c, tenant, lexicon)
    texts = [r.get("content") if r.get("msg_type") == "text" else None for r in rows]
    now = c.clock.now()
    versions = {"lexicon_version": lexicon.version[:32], "model_version": tagger.model.version}
    flags: list[dict[str, Any]] = []
    by_sender: dict[str, list[int]] = {"advisor": [], "customer": []}
    for i, r in enumerate(rows):
        if texts[i] and r.get("sender") in by_sender:
            by_sender[r["sender"]].append(i)

    def add(i: int, f: Finding, category: str, source: str, evidence: list[dict[str, Any]],
            key: str) -> None:
        r = rows[i]
        flags.append({
            "tenant_id": tenant, "flag_id": hashlib.sha256(key.encode()).hexdigest()[:40],
            "msg_id": r["msg_id"], "msg_time": r["msg_time"], "advisor_id": r["advisor_id"],
            "external_userid": r["external_userid"], "customer_id": r.get("customer_id"),
            "sender": r["sender"], "category": category, "phrase": f.phrase[:64],
            "action": f.action, "excerpt": excerpt(texts[i] or "", f, lexicon=lexicon),
            "source": source, "evidence_json": json.dumps(_masked(evidence), ensure_ascii=False),
            **versions, "status": "open", "created_at": now})

    for sender, idx in by_sender.items():
        batch = [texts[i] for i in idx]
        results = lexicon.check_many(batch, sender)  # type: ignore[arg-type]
        tags = tagger.tag_batch(batch, "advisor") if sender == "advisor" and idx else []
        for k, (i, findings) in enumerate(zip(idx, results, strict=True)):
            msg = rows[i]["msg_id"]
            for f in findings:
                if f.action not in {"review", "alert"}:
                    continue  # negated: counted in precision statistics, not queued
                if sender == "advisor" and f.category in COMPLIANCE_TO_TAXONOMY:
                    continue  # judged by the hybrid below
                add(i, f, f.category, "lexicon",
                    [{"source": "lexicon", "rule": f"{f.category}:{f.phrase}",
                      "span": [f.start, f.end], "matched": f.matched}],
                    f"{msg}|{f.category}|{f.phrase}|{f.start}")
            if sender == "advisor":
                for f, category, source, evidence, key in _violations(tags[k], msg):
                    add(i, f, category, source, evidence, key)
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


def _violations(tags: MessageTags, msg: str
                ) -> list[tuple[Finding, str, str, list[dict[str, Any]], str]]:
    """The hybrid's violations of one advisor message as flags: one per lexicon hit the
    classifier let through (its phrase and span, plus the model's score when it agreed),
    or one for the violation the model alone found (its score and top n-grams)."""
    out = []
    for label in tags.violations:
        category = QUEUE_CATEGORY.get(label, label)
        ev = tags.evidence.get(label, [])
        model = [e | {"label": label} for e in ev if e["source"] == "model"]
        hits = [e for e in ev if e["source"] == "lexicon"]
        for e in hits:
            lex_category, _, phrase = e["rule"].partition(":")
            a, b = e["span"]
            f = Finding(category, phrase, a, b, e["matched"], False, "", "review")
            # the key of a lexicon flag is what it was before the model joined: stable ids
            out.append((f, category, "lexicon", [e | {"label": label}, *model],
                        f"{msg}|{lex_category}|{phrase}|{a}"))
        if not hits and model:
            grams = model[0].get("ngrams") or []
            spans = [g["span"] for g in grams] or [[0, 0]]
            a, b = min(s[0] for s in spans), max(s[1] for s in spans)
            phrase = "/".join(g["ngram"] for g in grams) or label
            f = Finding(category, phrase, a, b, "", False, "", "review")
            out.append((f, category, "model", model, f"{msg}|{category}|model"))
    return out


def _masked(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence as stored: no run of six or more digits (an ID, a card, a mobile) survives."""
    def mask(v: Any) -> Any:
        if isinstance(v, str):
            return _DIGIT_RUN.sub(lambda m: "*" * len(m.group()), v)
        if isinstance(v, list):
            return [mask(x) for x in v]
        if isinstance(v, dict):
            return {k: mask(x) for k, x in v.items()}
        return v
    return [mask(e) for e in evidence]


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
        return [_plain(r._mapping) for r in rows]


def _plain(row: Any) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
           for k, v in row.items() if k not in ("tenant_id", "evidence_json")}
    out["evidence"] = json.loads(row["evidence_json"]) if row["evidence_json"] else []
    return out


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
