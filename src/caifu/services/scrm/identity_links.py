"""Identity links between WeCom external contacts and broker customers: apply, review, undo.

    caifu wecom link-all -t demo              # every follow without a customer
    caifu wecom links -t demo --review        # the review queue
    caifu wecom decide wmA1b2C3d4 C00042 --approve -t demo --note "客户本人确认"
    caifu wecom unlink wmA1b2C3d4 -t demo --reason "家人共用手机号"

``scrm.linking`` decides from the evidence; this module loads candidates in a few set
queries, writes ``wecom_links`` (one row per contact × customer, with masked evidence) and
keeps ``wecom_follows.customer_id`` in step with the linked rows, because the profile, the
sidebar and chat attribution resolve a contact to a customer through the follow.

How a customer's history stays whole: linking and unlinking move one pointer
(``wecom_follows.customer_id``) and change one row's status; nothing is ever deleted or
rewritten. Trades, positions, fund transactions and APP events are keyed by customer and
account, never by a WeCom id, so no link can add to or take from them. Chat messages in the
lake are immutable and keep the ``customer_id`` they were stored with: an unlink stops
*new* attribution (and the ``unlinked`` row with its ``decided_at`` records from when),
while messages already attributed keep their rows; a contact linked later has his earlier
messages resolved through the follow when read. An unlinked or rejected row stays, so the
pair is never proposed again automatically and ``decide(..., approve=True)`` restores it.
Every link made and undone is in the audit chain (actions ``link`` and ``unlink``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from caifu.adapters.sor.repos import scrm as repo
from caifu.core.errors import ConfigError
from caifu.core.levels import mask_name
from caifu.scrm.linking import ContactFacts, CustomerRef, LinkDecision, mobile_key
from caifu.scrm.linking import decide as weigh
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

LINKED, REVIEW, REJECTED, UNLINKED = "linked", "review", "rejected", "unlinked"



@dataclass
class LinkAllReport:
    contacts: int
    linked: int
    review: int
    none: int


@dataclass
class _Lookup:
    """Candidates for a batch of contacts, loaded with set queries."""

    by_mobile: dict[str, list[CustomerRef]]
    by_name: dict[str, list[CustomerRef]]
    by_unionid: dict[str, set[tuple[str, str]]]  # unionid -> {(external_userid, customer_id)}
    rows: dict[str, dict[str, dict[str, Any]]]  # external_userid -> customer_id -> link row

    def decide(self, facts: ContactFacts) -> LinkDecision:
        cands: dict[str, CustomerRef] = {}
        for m in facts.mobiles():
            cands.update((r.customer_id, r) for r in self.by_mobile.get(m, ()))
        for n in facts.names():
            cands.update((r.customer_id, r) for r in self.by_name.get(n, ()))
        union = {cid for ext, cid in self.by_unionid.get(facts.unionid or "", ())
                 if ext != facts.external_userid}
        rows = self.rows.get(facts.external_userid, {})
        current = next((cid for cid, r in rows.items() if r["status"] == LINKED), None)
        declined = {cid for cid, r in rows.items() if r["status"] in (REJECTED, UNLINKED)}
        return weigh(facts, cands.values(), union, current=current, declined=declined)


def _load(conn: Connection, tenant: str, contacts: Sequence[ContactFacts]) -> _Lookup:
    mobiles = {m for f in contacts for m in f.mobiles()}
    names = {n for f in contacts for n in f.names()}
    unionids = {f.unionid for f in contacts if f.unionid}
    found = repo.customer_refs(conn, tenant, mobiles, names)
    by_mobile: dict[str, list[CustomerRef]] = defaultdict(list)
    by_name: dict[str, list[CustomerRef]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for r in found:
        ref = CustomerRef(r.customer_id, r.name, r.mobile, r.advisor_id)
        key = mobile_key(r.mobile)
        if key in mobiles and ("m", r.customer_id) not in seen:
            seen.add(("m", r.customer_id))
            by_mobile[key].append(ref)
        name = (r.name or "").strip()
        if name in names and ("n", r.customer_id) not in seen:
            seen.add(("n", r.customer_id))
            by_name[name].append(ref)
    by_unionid: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for union, ext, cid in repo.linked_by_unionid(conn, tenant, unionids):
        by_unionid[union].add((ext, cid))
    return _Lookup(by_mobile, by_name, by_unionid,
                   repo.link_rows(conn, tenant, [f.external_userid for f in contacts]))


def _follow_facts(conn: Connection, tenant: str, externals: Iterable[str] | None
                  ) -> dict[str, ContactFacts]:
    """Facts the follow rows hold: advisors, unionid, remark mobile (customer_id unset only
    when ``externals`` is None)."""
    rows = repo.contact_follows(conn, tenant, externals)
    acc: dict[str, dict[str, Any]] = {}
    for r in rows:
        a = acc.setdefault(r.external_userid, {"advisors": set(), "unionid": None, "mobiles": set()})
        a["advisors"].add(r.advisor_id)
        a["unionid"] = a["unionid"] or r.unionid
        if r.remark_mobile:
            a["mobiles"].add(r.remark_mobile)
    return {ext: ContactFacts(ext, tuple(sorted(a["advisors"])), a["unionid"],
                              tuple(sorted(a["mobiles"]))) for ext, a in acc.items()}


def _merge(given: ContactFacts, stored: ContactFacts | None) -> ContactFacts:
    if stored is None:
        return given
    return ContactFacts(
        given.external_userid,
        tuple(sorted(set(given.advisor_ids) | set(stored.advisor_ids))),
        given.unionid or stored.unionid,
        tuple(sorted(set(given.remark_mobiles) | set(stored.remark_mobiles))),
        given.remark, given.name)


def _evidence_json(decision: LinkDecision, customer_id: str) -> tuple[float, str]:
    cand = next(c for c in decision.candidates if c.customer_id == customer_id)
    items = [e.as_json() for e in cand.evidence]
    return cand.score, json.dumps(items, ensure_ascii=False, sort_keys=True)


def _apply(conn: Connection, tenant: str, decisions: Sequence[LinkDecision], lookup: _Lookup,
           advisors: Mapping[str, Sequence[str]], actor: str, now: dt.datetime) -> list[str]:
    """Write the decisions in bulk; returns the customers newly linked."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    follow_sets: list[dict[str, Any]] = []
    linked: list[str] = []
    for d in decisions:
        existing = lookup.rows.get(d.external_userid, {})
        for cand in d.candidates:
            score, evidence = _evidence_json(d, cand.customer_id)
            status = LINKED if d.outcome == "link" else REVIEW
            row = existing.get(cand.customer_id)
            values = {"status": status, "score": score, "evidence_json": evidence,
                      "decided_by": actor if status == LINKED else None,
                      "decided_at": now if status == LINKED else None, "note": d.reason}
            if row is None:
                inserts.append({"external_userid": d.external_userid,
                                "customer_id": cand.customer_id, "created_at": now, **values})
            elif row["status"] == REVIEW or (row["status"] == LINKED and status == LINKED):
                updates.append({"_ext": d.external_userid, "_cid": cand.customer_id, **values})
        if d.outcome == "link" and d.customer_id is not None:
            if existing.get(d.customer_id, {}).get("status") != LINKED:
                linked.append(d.customer_id)
            follow_sets += [{"_adv": a, "_ext": d.external_userid, "_cid": d.customer_id}
                            for a in advisors.get(d.external_userid, ())]
            for cid, row in existing.items():  # other open candidates are settled by the link
                if cid != d.customer_id and row["status"] == REVIEW:
                    updates.append({"_ext": d.external_userid, "_cid": cid, "status": REJECTED,
                                    "score": row["score"], "evidence_json": row["evidence_json"],
                                    "decided_by": actor, "decided_at": now,
                                    "note": f"superseded: linked to {d.customer_id}"})
    repo.insert_links(conn, tenant, inserts)
    repo.update_links(conn, tenant, updates)
    repo.set_follow_customers(conn, tenant, follow_sets)
    return linked


def link_contact(c: Container, tenant: str, external_userid: str,
                 facts: ContactFacts | None = None, actor: str = "system") -> LinkDecision:
    """Decide and apply the link of one contact (after add/edit_external_contact).

    ``facts`` come from WeCom; what the follow rows already hold (advisors, unionid, remark
    mobile) is added to them.
    """
    get_tenant(c, tenant)
    with c.engine.begin() as conn:
        decision, linked = link_contact_in(conn, tenant, external_userid, facts, actor,
                                           now=c.clock.now())
    audit_link(c, tenant, actor, decision, linked)
    return decision


def link_contact_in(conn: Connection, tenant: str, external_userid: str,
                    facts: ContactFacts | None = None, actor: str = "system",
                    *, now: dt.datetime
                    ) -> tuple[LinkDecision, list[str]]:
    """``link_contact``'s writes on the caller's transaction (a WeCom event applied whole);
    the customers newly linked, for ``audit_link`` once that transaction commits."""
    given = facts or ContactFacts(external_userid)
    if given.external_userid != external_userid:
        raise ConfigError(f"facts are about {given.external_userid!r}, not {external_userid!r}")
    merged = _merge(given, _follow_facts(conn, tenant, [external_userid]).get(external_userid))
    lookup = _load(conn, tenant, [merged])
    decision = lookup.decide(merged)
    linked = _apply(conn, tenant, [decision], lookup,
                    {external_userid: merged.advisor_ids}, actor, now)
    return decision, linked


def audit_link(c: Container, tenant: str, actor: str, decision: LinkDecision,
               linked: list[str]) -> None:
    if linked:
        audit.append(c, tenant, actor, "link", customer_ids=linked,
                     reason=f"WeCom contact linked: {decision.reason}")


def link_all(c: Container, tenant: str, actor: str = "system") -> LinkAllReport:
    """Link every follow that has no customer yet, in one pass of set queries and bulk writes."""
    get_tenant(c, tenant)
    with c.engine.begin() as conn:
        contacts = list(_follow_facts(conn, tenant, None).values())
        lookup = _load(conn, tenant, contacts)
        decisions = [lookup.decide(f) for f in contacts]
        linked = _apply(conn, tenant, decisions, lookup,
                        {f.external_userid: f.advisor_ids for f in contacts}, actor, c.clock.now())
    counts = {o: sum(d.outcome == o for d in decisions) for o in ("link", "review", "none")}
    if linked:
        audit.append(c, tenant, actor, "link", customer_ids=sorted(set(linked)),
                     reason=f"link-all: {len(linked)} WeCom contacts linked by strong evidence")
    return LinkAllReport(len(contacts), counts["link"], counts["review"], counts["none"])


def links(c: Container, tenant: str, status: str | None = None,
          external_userid: str | None = None) -> list[dict[str, Any]]:
    """Link rows with the customer's masked name and the evidence parsed, newest first."""
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        rows = repo.links_with_customers(conn, tenant, status, external_userid)
    for r in rows:
        r["customer_name"] = mask_name(r.pop("name")) if r.get("name") else None
        r["evidence"] = json.loads(r["evidence_json"])
    return rows


def review_queue(c: Container, tenant: str) -> list[dict[str, Any]]:
    """Candidates waiting for a person, strongest evidence first."""
    return sorted(links(c, tenant, REVIEW), key=lambda r: (-r["score"], r["external_userid"],
                                                          r["customer_id"]))


def decide(c: Container, tenant: str, external_userid: str, customer_id: str, approve: bool,
           actor: str, note: str = "") -> dict[str, Any]:
    """A reviewer's decision on one candidate: approve links it (also restoring an unlinked or
    rejected pair), reject keeps it from ever being proposed again."""
    get_tenant(c, tenant)
    if not actor.strip():
        raise ConfigError("a decision needs the reviewer (actor)")
    now = c.clock.now()
    with c.engine.begin() as conn:
        row = repo.link_row(conn, tenant, external_userid, customer_id)
        if row is None:
            raise ConfigError(f"no candidate {customer_id!r} for contact {external_userid!r} "
                              "(see `caifu wecom links --review`)")
        if approve:
            other = repo.linked_elsewhere(conn, tenant, external_userid, customer_id)
            if other is not None:
                raise ConfigError(f"contact {external_userid!r} is linked to {other!r}; "
                                  "unlink it first")
            repo.set_link_status(conn, tenant, external_userid, other_than=customer_id,
                                 only_status=REVIEW, status=REJECTED, decided_by=actor,
                                 decided_at=now,
                                 note=f"another candidate approved: {customer_id}")
            repo.link_follows(conn, tenant, external_userid, customer_id)
        elif row.status == LINKED:
            raise ConfigError(f"{external_userid!r} ↔ {customer_id!r} is linked: use unlink")
        status = LINKED if approve else REJECTED
        repo.set_link_status(conn, tenant, external_userid, customer_id=customer_id,
                             status=status, decided_by=actor, decided_at=now,
                             note=note or row.note)
    if approve and row.status != LINKED:
        audit.append(c, tenant, actor, "link", customer_ids=[customer_id],
                     reason=f"review approved{': ' + note if note else ''}")
    return {"external_userid": external_userid, "customer_id": customer_id, "status": status}


def unlink(c: Container, tenant: str, external_userid: str, actor: str, reason: str,
           customer_id: str | None = None) -> list[str]:
    """Undo the contact's link (or the link the source system gave its follows).

    The row becomes ``unlinked`` and the follows' ``customer_id`` is cleared; nothing else
    changes (module doc: how history stays whole). Returns the customers unlinked.
    """
    get_tenant(c, tenant)
    if len(reason.strip()) < 4:
        raise ConfigError("unlink needs a reason of at least 4 characters")
    now = c.clock.now()
    with c.engine.begin() as conn:
        rows = repo.link_rows(conn, tenant, [external_userid]).get(external_userid, {})
        done = {cid for cid, r in rows.items() if r["status"] == LINKED}
        from_source = repo.follow_customers(conn, tenant, external_userid) - done
        targets = (done | from_source) & ({customer_id} if customer_id else done | from_source)
        if not targets:
            raise ConfigError(f"contact {external_userid!r} is not linked"
                              + (f" to {customer_id!r}" if customer_id else ""))
        for cid in sorted(targets):
            if cid in rows:
                repo.set_link_status(conn, tenant, external_userid, customer_id=cid,
                                     status=UNLINKED, decided_by=actor, decided_at=now,
                                     note=reason)
            else:  # linked by the source export: record what was undone so it can be restored
                repo.insert_links(conn, tenant, [{
                    "external_userid": external_userid, "customer_id": cid,
                    "status": UNLINKED, "score": 1.0, "created_at": now, "decided_by": actor,
                    "decided_at": now, "note": reason, "evidence_json": json.dumps(
                        [{"kind": "source", "strength": "strong",
                          "value": "customer_id given by the source system"}])}])
            repo.link_follows(conn, tenant, external_userid, None, only_customer=cid)
    audit.append(c, tenant, actor, "unlink", customer_ids=sorted(targets), reason=reason)
    return sorted(targets)
