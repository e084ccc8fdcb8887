"""The WeCom mirror repository: the tenant's customer group chats, their members and its corp
tags, as WeCom's callbacks and API syncs write them and the SCRM reads them.

Every function takes the tenant explicitly and runs in the caller's connection: a callback's
changes commit with the callback's own row, or not at all (``services.scrm.callback_apply``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, select, update

from caifu.adapters.sor.scrm_models import wecom_corp_tags, wecom_group_members, wecom_groups

g, m, t = wecom_groups, wecom_group_members, wecom_corp_tags


def _group(tenant: str, chat_id: str) -> Any:
    return (g.c.tenant_id == tenant) & (g.c.chat_id == chat_id)


def _members(tenant: str, chat_id: str) -> Any:
    return (m.c.tenant_id == tenant) & (m.c.chat_id == chat_id)


# --- group chats -------------------------------------------------------------------------------


def group(conn: Connection, tenant: str, chat_id: str) -> Row[Any] | None:
    return conn.execute(select(g).where(_group(tenant, chat_id))).first()


def chat_owner(conn: Connection, tenant: str, chat_id: str) -> str | None:
    return conn.execute(select(g.c.owner).where(_group(tenant, chat_id))).scalar()


def group_count(conn: Connection, tenant: str) -> int:
    return int(conn.execute(select(func.count()).select_from(g).where(
        g.c.tenant_id == tenant)).scalar_one())


def groups_needing_resync(conn: Connection, tenant: str) -> list[str]:
    """Chat ids whose member list must be fetched again from WeCom (an event was missed, or
    arrived while the tenant had no API access)."""
    return list(conn.execute(select(g.c.chat_id).where(
        (g.c.tenant_id == tenant) & g.c.needs_resync).order_by(g.c.chat_id)).scalars())


def update_group(conn: Connection, tenant: str, chat_id: str, **values: Any) -> bool:
    """Update the group's row; False when there is none."""
    return bool(conn.execute(update(g).where(_group(tenant, chat_id)).values(**values)).rowcount)


def save_group(conn: Connection, tenant: str, chat_id: str, created_at: dt.datetime,
               **values: Any) -> None:
    """Update the group, or create it with ``created_at``."""
    if not update_group(conn, tenant, chat_id, **values):
        conn.execute(insert(g).values(tenant_id=tenant, chat_id=chat_id, created_at=created_at,
                                      **values))


def dismiss_group(conn: Connection, tenant: str, chat_id: str, at: dt.datetime) -> None:
    """The group is dismissed: it and every active membership end at ``at``."""
    update_group(conn, tenant, chat_id, status="dismissed", updated_at=at)
    conn.execute(update(m).where(_members(tenant, chat_id) & m.c.active)
                 .values(active=False, left_at=at))


def external_chat_members(conn: Connection, tenant: str, chat_id: str) -> list[Row[Any]]:
    """``member_id, active, left_at`` of the chat's external members, past and present."""
    return list(conn.execute(select(m.c.member_id, m.c.active, m.c.left_at).where(
        _members(tenant, chat_id) & (m.c.member_type == "external"))).all())


def chat_members(conn: Connection, tenant: str, chat_id: str) -> dict[str, Row[Any]]:
    """Every member the chat has had, by member id."""
    return {r.member_id: r for r in conn.execute(select(m).where(_members(tenant, chat_id)))}


def save_member(conn: Connection, tenant: str, chat_id: str, member_id: str,
                values: Mapping[str, Any], *, member_type: str) -> None:
    """Update the membership with ``values``, or create it (of ``member_type`` unless
    ``values`` says otherwise)."""
    key = _members(tenant, chat_id) & (m.c.member_id == member_id)
    if not conn.execute(update(m).where(key).values(**values)).rowcount:
        conn.execute(insert(m).values(tenant_id=tenant, chat_id=chat_id, member_id=member_id,
                                      **{"member_type": member_type, **values}))


def end_memberships(conn: Connection, tenant: str, chat_id: str, member_ids: Iterable[str],
                    at: dt.datetime) -> None:
    for member_id in member_ids:
        conn.execute(update(m).where(_members(tenant, chat_id) & (m.c.member_id == member_id))
                     .values(active=False, left_at=at))


# --- corp tags ---------------------------------------------------------------------------------


def mirrored_corp_tags(conn: Connection, tenant: str) -> dict[str, str]:
    """caifu tag id → WeCom tag id, of the corp tags caifu created and WeCom still has."""
    return {r.caifu_tag_id: r.tag_id for r in conn.execute(
        select(t.c.caifu_tag_id, t.c.tag_id).where(
            (t.c.tenant_id == tenant) & ~t.c.deleted & t.c.caifu_tag_id.isnot(None)))}


def save_corp_tag(conn: Connection, tenant: str, tag_id: str, **values: Any) -> None:
    key = and_(t.c.tenant_id == tenant, t.c.tag_id == tag_id)
    if not conn.execute(update(t).where(key).values(**values)).rowcount:
        conn.execute(insert(t).values(tenant_id=tenant, tag_id=tag_id, **values))


def delete_corp_tag(conn: Connection, tenant: str, tag_or_group_id: str,
                    at: dt.datetime) -> None:
    """WeCom deleted a tag, or a tag group (then every tag in it): marked, not removed, so the
    mapping to caifu's tag survives for the audit trail."""
    conn.execute(update(t).where(
        (t.c.tenant_id == tenant)
        & ((t.c.tag_id == tag_or_group_id) | (t.c.group_id == tag_or_group_id)))
        .values(deleted=True, updated_at=at))


def replace_corp_tags(conn: Connection, tenant: str, rows: Iterable[Mapping[str, Any]],
                      at: dt.datetime) -> int:
    """Replace the tenant's corp tags with ``rows`` (WeCom's list: ``tag_id, group_id,
    group_name, name, deleted``), keeping each tag's mapping to caifu's tag id."""
    mapped = dict(conn.execute(select(t.c.tag_id, t.c.caifu_tag_id).where(
        t.c.tenant_id == tenant)).all())
    conn.execute(delete(t).where(t.c.tenant_id == tenant))
    n = 0
    for row in rows:
        conn.execute(insert(t).values(tenant_id=tenant, caifu_tag_id=mapped.get(row["tag_id"]),
                                      updated_at=at, **row))
        n += 1
    return n
