"""The audit log: append-only, one hash chain per tenant, verifiable, exportable for regulators.

    caifu audit verify -t T            # exit code 1 and the broken records if anything changed
    caifu audit export -t T --out audit.jsonl

Appends are serialised per tenant with the container's cross-process lock and written in the
caller's view of time (UTC); nothing in caifu updates or deletes a record — a record edited
or deleted behind caifu's back (in the database directly) is what ``verify`` finds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from caifu.adapters.sor.models import audit_log
from caifu.core.audit import (
    GENESIS,
    AuditEntry,
    ChainReport,
    StoredEntry,
    check_entry,
    entry_hash,
    verify_chain,
)
from caifu.core.errors import ConfigError
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

# the request that causes an audit record (set by the API's access log middleware)
current_request: ContextVar[str | None] = ContextVar("caifu_request_id", default=None)

NEEDS_REASON = {"unmask": True, "export": True, "delete_request": True}


def append(c: Container, tenant: str, actor: str, action: str, *,
           customer_ids: Iterable[str] = (), fields: Iterable[str] = (), reason: str = "",
           request_id: str | None = None) -> StoredEntry:
    """Write one record at the end of the tenant's chain and return it."""
    get_tenant(c, tenant)
    ids, names = tuple(customer_ids), tuple(fields)
    problems = check_entry(action, actor, reason, ids, NEEDS_REASON)
    if problems:
        raise ConfigError("; ".join(problems))
    with c.lock(tenant, "audit"), c.engine.begin() as conn:
        last = conn.execute(select(audit_log.c.seq, audit_log.c.hash)
                            .where(audit_log.c.tenant_id == tenant)
                            .order_by(audit_log.c.seq.desc()).limit(1)).first()
        seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
        entry = AuditEntry(seq, tenant, c.clock.now(), actor,
                           action, ids, names, reason.strip(),
                           request_id or current_request.get() or uuid.uuid4().hex)
        digest = entry_hash(entry, prev)
        conn.execute(insert(audit_log).values(
            tenant_id=tenant, seq=seq, at=entry.at, actor=actor, action=action,
            customer_ids_json=json.dumps(list(ids), ensure_ascii=False),
            fields_json=json.dumps(list(names), ensure_ascii=False), reason=entry.reason,
            request_id=entry.request_id, prev_hash=prev, hash=digest))
        # the chain cannot see its own last records vanish: keep its head outside the database
        _write_head(c, tenant, seq, digest)
    return StoredEntry(entry, prev, digest)


def _head_path(c: Container, tenant: str) -> Path:
    return c.root / "audit" / f"{tenant}.head"


def _write_head(c: Container, tenant: str, seq: int, digest: str) -> None:
    path = _head_path(c, tenant)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{seq} {digest}\n")
    tmp.replace(path)


def records(c: Container, tenant: str) -> list[StoredEntry]:
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.tenant_id == tenant)
                            .order_by(audit_log.c.seq)).all()
    out = []
    for r in rows:
        entry = AuditEntry(r.seq, r.tenant_id, r.at, r.actor, r.action,
                           tuple(json.loads(r.customer_ids_json)), tuple(json.loads(r.fields_json)),
                           r.reason, r.request_id)
        out.append(StoredEntry(entry, r.prev_hash, r.hash))
    return out


def verify(c: Container, tenant: str) -> ChainReport:
    """Recompute the tenant's chain, and compare its end with the head kept outside the
    database (records deleted from the end leave no gap inside the chain)."""
    stored = records(c, tenant)
    report = verify_chain(stored)
    if stored and stored[0].entry.seq != 1:
        report.problems.insert(0, f"the chain starts at record {stored[0].entry.seq}: "
                                  f"{stored[0].entry.seq - 1} record(s) missing at its start")
    head = _head_path(c, tenant)
    if head.exists():
        seq_text, digest = head.read_text().split()
        last = stored[-1] if stored else None
        if last is None or last.entry.seq < int(seq_text):
            have = last.entry.seq if last else 0
            report.problems.append(f"the chain ends at record {have} but record {seq_text} was "
                                   f"written: {int(seq_text) - have} record(s) missing at its end")
        elif last.entry.seq == int(seq_text) and last.hash != digest:
            report.problems.append(f"record {seq_text}: not the record that was written last "
                                   "(its hash differs from the recorded head)")
    elif stored:
        report.problems.append(f"no recorded head for the chain ({head}): its end cannot be "
                               "checked")
    return report


def export(c: Container, tenant: str, out: Path) -> int:
    """Every record of the tenant as JSON Lines, with its hashes, for a regulator to check."""
    stored = records(c, tenant)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for s in stored:
            f.write(json.dumps(_plain(s), ensure_ascii=False) + "\n")
    return len(stored)


def _plain(s: StoredEntry) -> dict[str, Any]:
    e = s.entry
    return {"tenant_id": e.tenant_id, "seq": e.seq, "at": e.at.isoformat(), "actor": e.actor,
            "action": e.action, "customer_ids": list(e.customer_ids), "fields": list(e.fields),
            "reason": e.reason, "request_id": e.request_id, "prev_hash": s.prev_hash,
            "hash": s.hash}
