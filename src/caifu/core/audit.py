"""The audit trail's hash chain: each record carries the hash of the one before it.

A record's hash is SHA-256 over its canonical JSON (sorted keys, no whitespace, UTF-8) with
the previous record's hash inside, so editing any field of any record, deleting a record,
inserting one or reordering them breaks the chain from that point on. ``verify_chain``
finds the first break of each kind and says which record and what.

Each tenant has its own chain (its first record follows ``GENESIS``); the system of record
stores it (``services/compliance/audit.py``), this module only computes and checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

GENESIS = "0" * 64  # the "previous hash" of a tenant's first record
ACTIONS = frozenset({"unmask", "export", "delete_request", "login", "key_create", "key_revoke",
                     "search",  # search: by unmasked keys (full mobile, ID number, name)
                     # SCRM: WeCom app settings, identity links made or undone, a reviewer's
                     # decision on a chat flag, a campaign sent, an advisor's sidebar view
                     "configure", "link", "unlink", "flag_review", "campaign_send",
                     "sidebar_view",
                     # risk: an operator's event classification of a story, a task's move,
                     # a load of the tenant's company aliases or relations
                     "risk_classify", "risk_task", "risk_reference",
                     # recommendations: a customer's list read by the API, an item the advisor
                     # sent or dismissed from the sidebar
                     "recommend_view", "recommend_send", "recommend_dismiss"})


@dataclass(frozen=True)
class AuditEntry:
    """What happened, by whom, to whom — the fields the hash covers (besides ``prev_hash``)."""

    seq: int
    tenant_id: str
    at: datetime  # naive UTC
    actor: str
    action: str
    customer_ids: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # fields unmasked or exported
    reason: str = ""
    request_id: str = ""

    def canonical(self, prev_hash: str) -> bytes:
        body = {
            "seq": self.seq, "tenant_id": self.tenant_id,
            "at": self.at.isoformat(timespec="microseconds"), "actor": self.actor,
            "action": self.action, "customer_ids": list(self.customer_ids),
            "fields": list(self.fields), "reason": self.reason, "request_id": self.request_id,
            "prev_hash": prev_hash,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    return hashlib.sha256(entry.canonical(prev_hash)).hexdigest()


@dataclass(frozen=True)
class StoredEntry:
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass
class ChainReport:
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(stored: Sequence[StoredEntry]) -> ChainReport:
    """Check one tenant's records in ``seq`` order: every hash recomputes, every record
    points at the one before, and no sequence number is missing."""
    report = ChainReport(records=len(stored))
    prev_hash, prev_seq = GENESIS, None
    for s in stored:
        e = s.entry
        if prev_seq is not None and e.seq != prev_seq + 1:
            report.problems.append(f"record {e.seq}: follows {prev_seq} — "
                                   f"{e.seq - prev_seq - 1} record(s) missing")
        if s.prev_hash != prev_hash:
            report.problems.append(f"record {e.seq}: its previous-hash does not match the "
                                   "record before it (a record was deleted, inserted or "
                                   "reordered)")
        if entry_hash(e, s.prev_hash) != s.hash:
            report.problems.append(f"record {e.seq}: its content does not match its hash "
                                   "(the record was edited)")
        prev_hash, prev_seq = s.hash, e.seq
    return report


def check_entry(action: str, actor: str, reason: str, customer_ids: Iterable[str],
                needs_reason: Mapping[str, bool]) -> list[str]:
    """Problems with an entry before it is written (empty: fine)."""
    problems = []
    if action not in ACTIONS:
        problems.append(f"unknown audit action {action!r}; known: {', '.join(sorted(ACTIONS))}")
    if not actor.strip():
        problems.append("an audit record needs an actor (who did it)")
    if needs_reason.get(action, False) and len(reason.strip()) < 4:
        problems.append(f"{action} needs a reason (at least 4 characters), recorded with it")
    if any(not c for c in customer_ids):
        problems.append("empty customer id in an audit record")
    return problems
