"""The campaign repository: campaigns (contract table), their runs, decisions, contacts and
channel contact ways — what ``services/scrm/campaigns`` writes and ``services/scrm/funnel``
reads and updates.

Every function takes the tenant and runs in the caller's connection, except two lookups
that cannot know the tenant before they read: ``due_runs_all_tenants`` (the scheduler's scan)
and ``contact_by_token`` (a tracking link carries only its token). Both return each row's
tenant, and every later query runs with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos.scrm import key_chunks
from caifu.adapters.sor.scrm_models import (
    campaign_contacts,
    campaign_decisions,
    campaign_runs,
    contact_ways,
)

BATCH = 500  # rows per insert, and SQLite's bound-variable limit with room

campaigns_t = CONTRACT_TABLES["campaigns"]
content_items = CONTRACT_TABLES["content_items"]
k = campaign_contacts


def _run_key(t: Any, tenant: str, campaign_id: str) -> Any:
    return and_(t.c.tenant_id == tenant, t.c.campaign_id == campaign_id)


def campaign(conn: Connection, tenant: str, campaign_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(campaigns_t).where(_run_key(campaigns_t, tenant, campaign_id))
                       ).first()
    return None if row is None else dict(row._mapping)


def campaign_infos(conn: Connection, tenant: str) -> dict[str, dict[str, Any]]:
    """campaign id → ``campaign_id, name, channel, goal, starts_on, spend``."""
    cp = campaigns_t
    return {x.campaign_id: dict(x._mapping) for x in conn.execute(
        select(cp.c.campaign_id, cp.c.name, cp.c.channel, cp.c.goal, cp.c.starts_on,
               cp.c.spend).where(cp.c.tenant_id == tenant))}


# --- runs and decisions --------------------------------------------------------------------------


def run(conn: Connection, tenant: str, campaign_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(campaign_runs).where(
        _run_key(campaign_runs, tenant, campaign_id))).first()
    return None if row is None else dict(row._mapping)


def run_ids(conn: Connection, tenant: str) -> list[str]:
    return [x[0] for x in conn.execute(select(campaign_runs.c.campaign_id).where(
        campaign_runs.c.tenant_id == tenant))]


def replace_run(conn: Connection, tenant: str, campaign_id: str, run_values: Mapping[str, Any],
                decisions: Sequence[Mapping[str, Any]], contacts: Sequence[Mapping[str, Any]]
                ) -> None:
    """Replace the campaign's run, decisions and contacts (rows without tenant and campaign)."""
    where = {"tenant_id": tenant, "campaign_id": campaign_id}
    for t in (campaign_contacts, campaign_decisions, campaign_runs):
        conn.execute(delete(t).where(_run_key(t, tenant, campaign_id)))
    conn.execute(insert(campaign_runs).values(**where, **run_values))
    for i in range(0, len(decisions), BATCH):
        conn.execute(insert(campaign_decisions), [{**where, **r} for r in decisions[i:i + BATCH]])
        conn.execute(insert(campaign_contacts), [{**where, **r} for r in contacts[i:i + BATCH]])


def mark_run_sent(conn: Connection, tenant: str, campaign_id: str, on: dt.datetime) -> None:
    conn.execute(update(campaign_runs).where(_run_key(campaign_runs, tenant, campaign_id))
                 .values(status="sent", sent_at=on))


def due_runs_all_tenants(conn: Connection, now: dt.datetime) -> list[tuple[str, str]]:
    """``(tenant, campaign_id)`` of every gated run scheduled at or before ``now``, in any
    tenant, earliest first: the scheduler's scan, the one query here without a tenant."""
    r = campaign_runs
    return [(t, c) for t, c in conn.execute(select(r.c.tenant_id, r.c.campaign_id).where(
        (r.c.status == "gated") & r.c.scheduled_at.isnot(None) & (r.c.scheduled_at <= now))
        .order_by(r.c.scheduled_at))]


def decisions(conn: Connection, tenant: str, campaign_id: str) -> list[dict[str, Any]]:
    d = campaign_decisions
    return [dict(r._mapping) for r in conn.execute(
        select(d).where(_run_key(d, tenant, campaign_id)).order_by(d.c.customer_id))]


def contacts_to_send(conn: Connection, tenant: str, campaign_id: str) -> list[Row[Any]]:
    """Contacts whose decision is ``send`` and who were not sent to yet, by customer."""
    d = campaign_decisions
    return list(conn.execute(select(k).join(d, and_(
        d.c.tenant_id == k.c.tenant_id, d.c.campaign_id == k.c.campaign_id,
        d.c.customer_id == k.c.customer_id)).where(
        _run_key(k, tenant, campaign_id), d.c.outcome == "send", k.c.sent_at.is_(None))
        .order_by(k.c.customer_id)).all())


def mark_sent(conn: Connection, tenant: str, campaign_id: str,
              sent: Iterable[tuple[str, str]], on: dt.datetime) -> None:
    """``sent``: (customer, WeCom msgid) pairs."""
    for cid, msgid in sent:
        conn.execute(update(k).where(_run_key(k, tenant, campaign_id), k.c.customer_id == cid)
                     .values(sent_at=on, msgid=msgid))


def recent_sends(conn: Connection, tenant: str, campaign_id: str, ids: Sequence[str],
                 since: dt.datetime) -> dict[str, list[dt.datetime]]:
    """customer → when other campaigns sent to him after ``since``."""
    out: dict[str, list[dt.datetime]] = {}
    for part in key_chunks(ids):
        for r in conn.execute(select(k.c.customer_id, k.c.sent_at).where(
                k.c.tenant_id == tenant, k.c.campaign_id != campaign_id,
                k.c.customer_id.in_(part), k.c.sent_at > since)):
            out.setdefault(r.customer_id, []).append(r.sent_at)
    return out


def group_posts(conn: Connection, tenant: str, since: dt.datetime) -> list[Row[Any]]:
    """``campaign_id, content_id, target_json, sent_at`` of every ``group`` campaign sent to
    a chat at or after ``since`` (``sent_at``: its members' latest send) — the record of what
    was posted to which preference group (``target_json`` names the group)."""
    r = campaign_runs
    sent = func.max(k.c.sent_at)
    return list(conn.execute(
        select(campaigns_t.c.campaign_id, campaigns_t.c.content_id, r.c.target_json,
               sent.label("sent_at"))
        .join(r, and_(r.c.tenant_id == campaigns_t.c.tenant_id,
                      r.c.campaign_id == campaigns_t.c.campaign_id))
        .join(k, and_(k.c.tenant_id == r.c.tenant_id, k.c.campaign_id == r.c.campaign_id))
        .where(campaigns_t.c.tenant_id == tenant, campaigns_t.c.channel == "group",
               k.c.sent_at >= since)
        .group_by(campaigns_t.c.campaign_id, campaigns_t.c.content_id, r.c.target_json)
        .order_by(campaigns_t.c.campaign_id)).all())


def pending_deliveries(conn: Connection, tenant: str, campaign_id: str) -> list[Row[Any]]:
    """``customer_id, msgid, external_userid`` of messages sent and not known delivered."""
    return list(conn.execute(select(k.c.customer_id, k.c.msgid, k.c.external_userid).where(
        _run_key(k, tenant, campaign_id), k.c.msgid.is_not(None),
        k.c.delivered_at.is_(None))).all())


def mark_delivered(conn: Connection, tenant: str, campaign_id: str, ids: Sequence[str],
                   on: dt.datetime) -> None:
    for part in key_chunks(ids):
        conn.execute(update(k).where(_run_key(k, tenant, campaign_id), k.c.customer_id.in_(part))
                     .values(delivered_at=on))


def unconverted_sent(conn: Connection, tenant: str, campaign_id: str) -> list[Row[Any]]:
    """``customer_id, sent_at`` of contacts sent to and not converted yet."""
    return list(conn.execute(select(k.c.customer_id, k.c.sent_at).where(
        _run_key(k, tenant, campaign_id), k.c.sent_at.is_not(None),
        k.c.converted_at.is_(None))).all())


def mark_converted(conn: Connection, tenant: str, campaign_id: str,
                   found: Iterable[tuple[str, str, Any]]) -> None:
    """``found``: (customer, conversion kind, when)."""
    for cid, kind, at in found:
        conn.execute(update(k).where(_run_key(k, tenant, campaign_id), k.c.customer_id == cid)
                     .values(converted_at=at, conversion=kind))


def contact_customers(conn: Connection, tenant: str, campaign_id: str) -> set[str]:
    return {r[0] for r in conn.execute(select(k.c.customer_id).where(
        _run_key(k, tenant, campaign_id)))}


def add_contacts(conn: Connection, tenant: str, campaign_id: str,
                 rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(k), [{"tenant_id": tenant, "campaign_id": campaign_id, **r}
                                 for r in rows])


def contact_by_token(conn: Connection, token: str) -> Row[Any] | None:
    """``tenant_id, campaign_id, customer_id, url`` of the contact a tracking token names.

    Without a tenant: the link carries only the token (unguessable, 16 random bytes); the
    row's tenant is the one every later query uses.
    """
    cp, ci = campaigns_t, content_items
    return conn.execute(select(k.c.tenant_id, k.c.campaign_id, k.c.customer_id, ci.c.url)
                        .join(cp, and_(cp.c.tenant_id == k.c.tenant_id,
                                       cp.c.campaign_id == k.c.campaign_id))
                        .join(ci, and_(ci.c.tenant_id == cp.c.tenant_id,
                                       ci.c.content_id == cp.c.content_id))
                        .where(k.c.tracking_token == token)).first()


def mark_hit(conn: Connection, tenant: str, campaign_id: str, customer_id: str, kind: str,
             on: dt.datetime) -> None:
    """Opened (and clicked, for ``click``) at ``on``, each only the first time."""
    key = and_(_run_key(k, tenant, campaign_id), k.c.customer_id == customer_id)
    conn.execute(update(k).where(key, k.c.opened_at.is_(None)).values(opened_at=on))
    if kind == "click":
        conn.execute(update(k).where(key, k.c.clicked_at.is_(None)).values(clicked_at=on))


def add_contact_ways(conn: Connection, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(contact_ways), [{**r, "tenant_id": tenant} for r in rows])
