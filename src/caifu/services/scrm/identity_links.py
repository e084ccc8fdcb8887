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

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import wecom_links
from caifu.core.errors import ConfigError
from caifu.core.levels import mask_name
from caifu.scrm.linking import ContactFacts, CustomerRef, LinkDecision, mobile_key
from caifu.scrm.linking import decide as weigh
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

LINKED, REVIEW, REJECTED, UNLINKED = "linked", "review", "rejected", "unlinked"
CHUNK = 500  # values per IN (...): SQLite's variable limit, and sane plans on PostgreSQL
SCAN_ABOVE = 2000  # lookup keys beyond which one scan of the customers beats IN queries

follows = CONTRACT_TABLES["wecom_follows"]
customers = CONTRACT_TABLES["customers"]


def key_chunks(values: Iterable[str]) -> Iterable[list[str]]:
    """Distinct keys, sorted, in lists of ``CHUNK`` for ``IN (...)`` lookups."""
    items = sorted(set(values))
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


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
    cols = (customers.c.customer_id, customers.c.name, customers.c.mobile, customers.c.advisor_id)
    base = select(*cols).where(customers.c.tenant_id == tenant)
    # customers' mobile and name are not indexed: a few keys are looked up, many are matched
    # in one scan of the customer master instead of a scan per chunk
    if len(mobiles) + len(names) > SCAN_ABOVE:
        found: Iterable[Any] = conn.execute(base)
    else:
        variants = [v for m in mobiles for v in (m, "+86" + m, "86" + m)]
        found = [r for part in key_chunks(variants)
                 for r in conn.execute(base.where(customers.c.mobile.in_(part)))]
        found += [r for part in key_chunks(names)
                  for r in conn.execute(base.where(customers.c.name.in_(part)))]
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
    for part in key_chunks(unionids):
        for union, ext, cid in conn.execute(select(
                follows.c.unionid, follows.c.external_userid, follows.c.customer_id).where(
                follows.c.tenant_id == tenant, follows.c.unionid.in_(part),
                follows.c.customer_id.is_not(None))):
            by_unionid[union].add((ext, cid))
    return _Lookup(by_mobile, by_name, by_unionid,
                   _link_rows(conn, tenant, [f.external_userid for f in contacts]))


def _link_rows(conn: Connection, tenant: str, externals: Iterable[str]
               ) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for part in key_chunks(externals):
        for r in conn.execute(select(wecom_links).where(wecom_links.c.tenant_id == tenant,
                                                        wecom_links.c.external_userid.in_(part))):
            out[r.external_userid][r.customer_id] = dict(r._mapping)
    return out


def _follow_facts(conn: Connection, tenant: str, externals: Iterable[str] | None
                  ) -> dict[str, ContactFacts]:
    """Facts the follow rows hold: advisors, unionid, remark mobile (customer_id unset only
    when ``externals`` is None)."""
    q = select(follows.c.external_userid, follows.c.advisor_id, follows.c.unionid,
               follows.c.remark_mobile).where(follows.c.tenant_id == tenant)
    rows: list[Any] = []
    if externals is None:
        rows = list(conn.execute(q.where(follows.c.customer_id.is_(None))))
    else:
        for part in key_chunks(externals):
            rows += conn.execute(q.where(follows.c.external_userid.in_(part))).all()
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
    """Write the decisions in bulk; returns the customers newly linked.

    Follows are updated by their full key (advisor, contact): by contact alone each update
    would scan the table, and a batch of 100k would take quadratic time.
    """
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
                inserts.append({"tenant_id": tenant, "external_userid": d.external_userid,
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
    if inserts:
        conn.execute(insert(wecom_links), inserts)
    if updates:
        conn.execute(update(wecom_links).where(
            wecom_links.c.tenant_id == tenant,
            wecom_links.c.external_userid == bindparam("_ext"),
            wecom_links.c.customer_id == bindparam("_cid")), updates)
    if follow_sets:
        conn.execute(update(follows).where(
            follows.c.tenant_id == tenant, follows.c.advisor_id == bindparam("_adv"),
            follows.c.external_userid == bindparam("_ext")).values(
            customer_id=bindparam("_cid")), follow_sets)
    return linked


def link_contact(c: Container, tenant: str, external_userid: str,
                 facts: ContactFacts | None = None, actor: str = "system") -> LinkDecision:
    """Decide and apply the link of one contact (after add/edit_external_contact).

    ``facts`` come from WeCom; what the follow rows already hold (advisors, unionid, remark
    mobile) is added to them.
    """
    get_tenant(c, tenant)
    given = facts or ContactFacts(external_userid)
    if given.external_userid != external_userid:
        raise ConfigError(f"facts are about {given.external_userid!r}, not {external_userid!r}")
    with c.engine.begin() as conn:
        merged = _merge(given, _follow_facts(conn, tenant, [external_userid]).get(external_userid))
        lookup = _load(conn, tenant, [merged])
        decision = lookup.decide(merged)
        linked = _apply(conn, tenant, [decision], lookup,
                        {external_userid: merged.advisor_ids}, actor, c.clock.now())
    if linked:
        audit.append(c, tenant, actor, "link", customer_ids=linked,
                     reason=f"WeCom contact linked: {decision.reason}")
    return decision


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
    q = (select(wecom_links, customers.c.name, customers.c.advisor_id)
         .select_from(wecom_links.outerjoin(customers, and_(
             customers.c.tenant_id == wecom_links.c.tenant_id,
             customers.c.customer_id == wecom_links.c.customer_id)))
         .where(wecom_links.c.tenant_id == tenant))
    if status is not None:
        q = q.where(wecom_links.c.status == status)
    if external_userid is not None:
        q = q.where(wecom_links.c.external_userid == external_userid)
    q = q.order_by(wecom_links.c.created_at.desc(), wecom_links.c.external_userid,
                   wecom_links.c.customer_id)
    with c.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    for r in rows:
        r["customer_name"] = mask_name(r.pop("name")) if r.get("name") else None
        r["evidence"] = json.loads(r["evidence_json"])
    return rows


def review_queue(c: Container, tenant: str) -> list[dict[str, Any]]:
    """Candidates waiting for a person, strongest evidence first."""
    return sorted(links(c, tenant, REVIEW), key=lambda r: (-r["score"], r["external_userid"],
                                                          r["customer_id"]))


def _row(conn: Connection, tenant: str, external_userid: str, customer_id: str) -> Any:
    return conn.execute(select(wecom_links).where(
        wecom_links.c.tenant_id == tenant, wecom_links.c.external_userid == external_userid,
        wecom_links.c.customer_id == customer_id)).first()


def decide(c: Container, tenant: str, external_userid: str, customer_id: str, approve: bool,
           actor: str, note: str = "") -> dict[str, Any]:
    """A reviewer's decision on one candidate: approve links it (also restoring an unlinked or
    rejected pair), reject keeps it from ever being proposed again."""
    get_tenant(c, tenant)
    if not actor.strip():
        raise ConfigError("a decision needs the reviewer (actor)")
    now = c.clock.now()
    with c.engine.begin() as conn:
        row = _row(conn, tenant, external_userid, customer_id)
        if row is None:
            raise ConfigError(f"no candidate {customer_id!r} for contact {external_userid!r} "
                              "(see `caifu wecom links --review`)")
        key = and_(wecom_links.c.tenant_id == tenant,
                   wecom_links.c.external_userid == external_userid)
        if approve:
            other = conn.execute(select(wecom_links.c.customer_id).where(
                key, wecom_links.c.status == LINKED,
                wecom_links.c.customer_id != customer_id)).scalar()
            if other is not None:
                raise ConfigError(f"contact {external_userid!r} is linked to {other!r}; "
                                  "unlink it first")
            conn.execute(update(wecom_links).where(key, wecom_links.c.status == REVIEW,
                                                   wecom_links.c.customer_id != customer_id)
                         .values(status=REJECTED, decided_by=actor, decided_at=now,
                                 note=f"another candidate approved: {customer_id}"))
            conn.execute(update(follows).where(follows.c.tenant_id == tenant,
                                               follows.c.external_userid == external_userid)
                         .values(customer_id=customer_id))
        elif row.status == LINKED:
            raise ConfigError(f"{external_userid!r} ↔ {customer_id!r} is linked: use unlink")
        status = LINKED if approve else REJECTED
        conn.execute(update(wecom_links).where(key, wecom_links.c.customer_id == customer_id)
                     .values(status=status, decided_by=actor, decided_at=now,
                             note=note or row.note))
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
        rows = _link_rows(conn, tenant, [external_userid]).get(external_userid, {})
        done = {cid for cid, r in rows.items() if r["status"] == LINKED}
        from_source = set(conn.execute(select(follows.c.customer_id).where(
            follows.c.tenant_id == tenant, follows.c.external_userid == external_userid,
            follows.c.customer_id.is_not(None))).scalars()) - done
        targets = (done | from_source) & ({customer_id} if customer_id else done | from_source)
        if not targets:
            raise ConfigError(f"contact {external_userid!r} is not linked"
                              + (f" to {customer_id!r}" if customer_id else ""))
        for cid in sorted(targets):
            if cid in rows:
                conn.execute(update(wecom_links).where(
                    wecom_links.c.tenant_id == tenant,
                    wecom_links.c.external_userid == external_userid,
                    wecom_links.c.customer_id == cid).values(
                    status=UNLINKED, decided_by=actor, decided_at=now, note=reason))
            else:  # linked by the source export: record what was undone so it can be restored
                conn.execute(insert(wecom_links).values(
                    tenant_id=tenant, external_userid=external_userid, customer_id=cid,
                    status=UNLINKED, score=1.0, created_at=now, decided_by=actor,
                    decided_at=now, note=reason, evidence_json=json.dumps(
                        [{"kind": "source", "strength": "strong",
                          "value": "customer_id given by the source system"}])))
            conn.execute(update(follows).where(
                follows.c.tenant_id == tenant, follows.c.external_userid == external_userid,
                follows.c.customer_id == cid).values(customer_id=None))
    audit.append(c, tenant, actor, "unlink", customer_ids=sorted(targets), reason=reason)
    return sorted(targets)
