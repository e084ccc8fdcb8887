"""The SCRM repository: WeCom follows, advisors and customers as the SCRM reads them, the
tenant's WeCom app, corp tags, identity links, group chats, preference groups and content.

Every function takes the tenant explicitly and runs in the caller's connection, so the
service decides where a transaction begins and ends. Rows come back as SQLAlchemy ``Row``
objects (attribute access, read-only) or plain dicts; nothing here knows a domain type.
Campaign runs, decisions and contacts are ``repos.scrm_campaigns``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, delete, insert, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import (
    preference_group_members,
    preference_groups,
    wecom_apps,
    wecom_links,
)

CHUNK = 500  # values per IN (...): SQLite's variable limit, and sane plans on PostgreSQL
SCAN_ABOVE = 2000  # lookup keys beyond which one scan of the customers beats IN queries

follows = CONTRACT_TABLES["wecom_follows"]
advisors_t = CONTRACT_TABLES["advisors"]
customers = CONTRACT_TABLES["customers"]
assessments_t = CONTRACT_TABLES["suitability_assessments"]
content_items = CONTRACT_TABLES["content_items"]


def key_chunks(values: Iterable[str]) -> Iterator[list[str]]:
    """Distinct keys, sorted, in lists of ``CHUNK`` for ``IN (...)`` lookups."""
    items = sorted(set(values))
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


# --- advisors ----------------------------------------------------------------------------------


def advisors(conn: Connection, tenant: str) -> dict[str, dict[str, Any]]:
    """advisor id → ``advisor_id, name, sac_number, wecom_userid`` for every advisor."""
    t = advisors_t
    rows = conn.execute(select(t.c.advisor_id, t.c.name, t.c.sac_number, t.c.wecom_userid)
                        .where(t.c.tenant_id == tenant))
    return {r.advisor_id: dict(r._mapping) for r in rows}


def advisor(conn: Connection, tenant: str, advisor_id: str) -> Row[Any] | None:
    t = advisors_t
    return conn.execute(select(t.c.advisor_id, t.c.name, t.c.branch_id, t.c.sac_number,
                               t.c.wecom_userid, t.c.status).where(
        t.c.tenant_id == tenant, t.c.advisor_id == advisor_id)).first()


def active_advisor_ids(conn: Connection, tenant: str, wecom_userid: str) -> list[str]:
    """Active advisors with this WeCom userid (one, unless the master data is ambiguous)."""
    t = advisors_t
    return [r[0] for r in conn.execute(select(t.c.advisor_id).where(
        t.c.tenant_id == tenant, t.c.wecom_userid == wecom_userid, t.c.status == "active"))]


def advisor_ids_by_userid(conn: Connection, tenant: str) -> dict[str, str]:
    """WeCom userid → advisor id, for every advisor with a userid (any status)."""
    t = advisors_t
    return dict(conn.execute(select(t.c.wecom_userid, t.c.advisor_id).where(
        (t.c.tenant_id == tenant) & t.c.wecom_userid.isnot(None))).all())


def advisor_by_userid(conn: Connection, tenant: str, wecom_userid: str
                      ) -> dict[str, Any] | None:
    """Every column of the advisor with this WeCom userid (any status)."""
    t = advisors_t
    row = conn.execute(select(t).where(
        (t.c.tenant_id == tenant) & (t.c.wecom_userid == wecom_userid))).first()
    return dict(row._mapping) if row is not None else None


# --- follows -------------------------------------------------------------------------------------


def follow(conn: Connection, tenant: str, advisor_id: str, external_userid: str
           ) -> Row[Any] | None:
    """``customer_id, status`` of one follow, by its key."""
    return conn.execute(select(follows.c.customer_id, follows.c.status).where(
        follows.c.tenant_id == tenant, follows.c.advisor_id == advisor_id,
        follows.c.external_userid == external_userid)).first()


def active_follows(conn: Connection, tenant: str, customer_ids: Sequence[str]
                   ) -> dict[str, list[Row[Any]]]:
    """customer → his active follows (``customer_id, advisor_id, external_userid``), by
    advisor then contact."""
    out: dict[str, list[Row[Any]]] = {}
    for part in key_chunks(customer_ids):
        for r in conn.execute(select(follows.c.customer_id, follows.c.advisor_id,
                                     follows.c.external_userid)
                              .where(follows.c.tenant_id == tenant, follows.c.status == "active",
                                     follows.c.customer_id.in_(part))
                              .order_by(follows.c.advisor_id, follows.c.external_userid)):
            out.setdefault(r.customer_id, []).append(r)
    return out


def follow_customers_by_pair(conn: Connection, tenant: str) -> dict[tuple[str, str], str]:
    """(advisor id, external userid) → customer id, for every follow linked to a customer
    (any status)."""
    return {(r.advisor_id, r.external_userid): r.customer_id for r in conn.execute(
        select(follows.c.advisor_id, follows.c.external_userid, follows.c.customer_id)
        .where((follows.c.tenant_id == tenant) & follows.c.customer_id.isnot(None)))}


def follow_row(conn: Connection, tenant: str, advisor_id: str, external_userid: str
               ) -> Row[Any] | None:
    """Every column of one follow, by its key."""
    return conn.execute(select(follows).where(
        follows.c.tenant_id == tenant, follows.c.advisor_id == advisor_id,
        follows.c.external_userid == external_userid)).first()


def insert_follow(conn: Connection, tenant: str, advisor_id: str, external_userid: str,
                  **values: Any) -> None:
    conn.execute(insert(follows).values(tenant_id=tenant, advisor_id=advisor_id,
                                        external_userid=external_userid, **values))


def update_follow(conn: Connection, tenant: str, advisor_id: str, external_userid: str,
                  **values: Any) -> None:
    conn.execute(update(follows).where(
        follows.c.tenant_id == tenant, follows.c.advisor_id == advisor_id,
        follows.c.external_userid == external_userid).values(**values))


def followers(conn: Connection, tenant: str) -> set[str]:
    """Customers who follow an advisor now."""
    return set(conn.execute(select(follows.c.customer_id).distinct().where(
        follows.c.tenant_id == tenant, follows.c.status == "active",
        follows.c.customer_id.is_not(None))).scalars())


def first_follows_by_state(conn: Connection, tenant: str, state: str) -> dict[str, Row[Any]]:
    """customer → his earliest follow added through a contact way's ``state``."""
    first: dict[str, Row[Any]] = {}
    for r in conn.execute(select(follows).where(follows.c.tenant_id == tenant,
                                                follows.c.state == state,
                                                follows.c.customer_id.is_not(None))
                          .order_by(follows.c.added_at)):
        first.setdefault(r.customer_id, r)
    return first


def mirrored_follows(conn: Connection, tenant: str) -> list[Row[Any]]:
    """``(wecom_userid, external_userid, customer_id)`` of every active follow linked to a
    customer, whose advisor has a WeCom userid."""
    a, f = advisors_t, follows
    return list(conn.execute(select(a.c.wecom_userid, f.c.external_userid, f.c.customer_id)
                             .join(a, (a.c.tenant_id == f.c.tenant_id)
                                   & (a.c.advisor_id == f.c.advisor_id))
                             .where((f.c.tenant_id == tenant) & (f.c.status == "active")
                                    & f.c.customer_id.isnot(None)
                                    & a.c.wecom_userid.isnot(None))).all())


def customers_of_contacts(conn: Connection, tenant: str, externals: Iterable[str]
                          ) -> dict[str, str]:
    """external userid → the customer a follow links it to."""
    out: dict[str, str] = {}
    for part in key_chunks(externals):
        out.update((ext, cid) for ext, cid in conn.execute(
            select(follows.c.external_userid, follows.c.customer_id).where(
                follows.c.tenant_id == tenant, follows.c.external_userid.in_(part),
                follows.c.customer_id.is_not(None))))
    return out


def contact_follows(conn: Connection, tenant: str, externals: Iterable[str] | None
                    ) -> list[Row[Any]]:
    """``external_userid, advisor_id, unionid, remark_mobile`` of the contacts' follows, or
    of every follow without a customer when ``externals`` is None."""
    q = select(follows.c.external_userid, follows.c.advisor_id, follows.c.unionid,
               follows.c.remark_mobile).where(follows.c.tenant_id == tenant)
    if externals is None:
        return list(conn.execute(q.where(follows.c.customer_id.is_(None))))
    rows: list[Row[Any]] = []
    for part in key_chunks(externals):
        rows += conn.execute(q.where(follows.c.external_userid.in_(part))).all()
    return rows


def linked_by_unionid(conn: Connection, tenant: str, unionids: Iterable[str]
                      ) -> list[tuple[str, str, str]]:
    """``(unionid, external_userid, customer_id)`` of linked follows with these unionids."""
    out: list[tuple[str, str, str]] = []
    for part in key_chunks(unionids):
        out += [(u, e, c) for u, e, c in conn.execute(select(
            follows.c.unionid, follows.c.external_userid, follows.c.customer_id).where(
            follows.c.tenant_id == tenant, follows.c.unionid.in_(part),
            follows.c.customer_id.is_not(None)))]
    return out


def follow_customers(conn: Connection, tenant: str, external_userid: str) -> set[str]:
    return set(conn.execute(select(follows.c.customer_id).where(
        follows.c.tenant_id == tenant, follows.c.external_userid == external_userid,
        follows.c.customer_id.is_not(None))).scalars())


def set_follow_customers(conn: Connection, tenant: str, rows: Sequence[Mapping[str, str]]
                         ) -> None:
    """Point follows at customers in bulk; each row ``{_adv, _ext, _cid}``.

    By the follow's full key (advisor, contact): by contact alone each update would scan the
    table, and a batch of 100k would take quadratic time.
    """
    if rows:
        conn.execute(update(follows).where(
            follows.c.tenant_id == tenant, follows.c.advisor_id == bindparam("_adv"),
            follows.c.external_userid == bindparam("_ext")).values(
            customer_id=bindparam("_cid")), list(rows))


def link_follows(conn: Connection, tenant: str, external_userid: str,
                 customer_id: str | None, only_customer: str | None = None) -> None:
    """Set the customer of every follow of the contact (``only_customer``: only the follows
    that point at that customer now)."""
    cond = [follows.c.tenant_id == tenant, follows.c.external_userid == external_userid]
    if only_customer is not None:
        cond.append(follows.c.customer_id == only_customer)
    conn.execute(update(follows).where(*cond).values(customer_id=customer_id))


# --- customers -----------------------------------------------------------------------------------


def customer_ids(conn: Connection, tenant: str) -> set[str]:
    return set(conn.execute(select(customers.c.customer_id).where(
        customers.c.tenant_id == tenant)).scalars())


def customer_refs(conn: Connection, tenant: str, mobiles: set[str], names: set[str]
                  ) -> Iterable[Row[Any]]:
    """``customer_id, name, mobile, advisor_id`` of customers whose mobile (as stored: bare,
    ``+86…`` or ``86…``) or name is among the given; more may come back (the caller matches).

    Mobile and name are not indexed: a few keys are looked up, many are matched in one scan
    of the customer master instead of a scan per chunk.
    """
    cols = (customers.c.customer_id, customers.c.name, customers.c.mobile,
            customers.c.advisor_id)
    base = select(*cols).where(customers.c.tenant_id == tenant)
    if len(mobiles) + len(names) > SCAN_ABOVE:
        return conn.execute(base)
    variants = [v for m in mobiles for v in (m, "+86" + m, "86" + m)]
    found = [r for part in key_chunks(variants)
             for r in conn.execute(base.where(customers.c.mobile.in_(part)))]
    found += [r for part in key_chunks(names)
              for r in conn.execute(base.where(customers.c.name.in_(part)))]
    return found


def marketing_masters(conn: Connection, tenant: str, ids: Sequence[str]) -> list[Row[Any]]:
    """``customer_id, marketing_consent, advisor_id, professional`` of these customers."""
    cu = customers
    out: list[Row[Any]] = []
    for part in key_chunks(ids):
        out += conn.execute(select(cu.c.customer_id, cu.c.marketing_consent, cu.c.advisor_id,
                                   cu.c.professional)
                            .where(cu.c.tenant_id == tenant, cu.c.customer_id.in_(part))).all()
    return out


def latest_assessments(conn: Connection, tenant: str, ids: Iterable[str]
                       ) -> dict[str, Row[Any]]:
    """Each customer's latest suitability assessment row (by date, then id)."""
    a = assessments_t
    best: dict[str, Row[Any]] = {}
    for part in key_chunks(ids):
        for r in conn.execute(select(a).where(a.c.tenant_id == tenant,
                                              a.c.customer_id.in_(part))):
            prev = best.get(r.customer_id)
            if prev is None or (r.assessed_on, r.assessment_id) > (prev.assessed_on,
                                                                   prev.assessment_id):
                best[r.customer_id] = r
    return best


def day_facts(conn: Connection, tenant: str, table: str, column: str, ids: Sequence[str]
              ) -> list[tuple[str, Any]]:
    """``(customer_id, value)`` of a customer-keyed contract table's column, where set."""
    t = CONTRACT_TABLES[table]
    out: list[tuple[str, Any]] = []
    for part in key_chunks(ids):
        out += [(r[0], r[1]) for r in conn.execute(select(t.c.customer_id, t.c[column]).where(
            t.c.tenant_id == tenant, t.c.customer_id.in_(part), t.c[column].is_not(None)))]
    return out


# --- content -------------------------------------------------------------------------------------


def content_item(conn: Connection, tenant: str, content_id: str) -> dict[str, Any] | None:
    t = content_items
    row = conn.execute(select(t).where(t.c.tenant_id == tenant,
                                       t.c.content_id == content_id)).first()
    return None if row is None else dict(row._mapping)


def newest_content(conn: Connection, tenant: str, limit: int) -> list[Row[Any]]:
    t = content_items
    return list(conn.execute(select(t.c.content_id, t.c.content_type, t.c.title, t.c.risk_level,
                                    t.c.published_at, t.c.security_code, t.c.fund_code, t.c.url)
                             .where(t.c.tenant_id == tenant)
                             .order_by(t.c.published_at.desc(), t.c.content_id)
                             .limit(limit)).all())


# --- the WeCom app and corp tags -----------------------------------------------------------------


def app(conn: Connection, tenant: str) -> Row[Any] | None:
    return conn.execute(select(wecom_apps).where(wecom_apps.c.tenant_id == tenant)).first()


def replace_app(conn: Connection, tenant: str, **values: Any) -> None:
    conn.execute(delete(wecom_apps).where(wecom_apps.c.tenant_id == tenant))
    conn.execute(insert(wecom_apps).values(tenant_id=tenant, **values))


# --- group chats and preference groups -----------------------------------------------------------


def preference_group(conn: Connection, tenant: str, group_id: str) -> Row[Any] | None:
    t = preference_groups
    return conn.execute(select(t).where(t.c.tenant_id == tenant,
                                        t.c.group_id == group_id)).first()


def save_preference_group(conn: Connection, tenant: str, group_id: str, now: dt.datetime,
                          **values: Any) -> None:
    """Update the group's definition, or create it (``created_at`` = ``now``)."""
    t = preference_groups
    key = (t.c.tenant_id == tenant) & (t.c.group_id == group_id)
    if conn.execute(select(t.c.group_id).where(key)).first():
        conn.execute(update(t).where(key).values(**values))
    else:
        conn.execute(insert(t).values(tenant_id=tenant, group_id=group_id, created_at=now,
                                      **values))


def preference_group_list(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    t = preference_groups
    return [dict(r._mapping) for r in conn.execute(
        select(t).where(t.c.tenant_id == tenant).order_by(t.c.group_id))]


def replace_plan(conn: Connection, tenant: str, group_id: str,
                 rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace the group's stored plan; each row without tenant and group."""
    m = preference_group_members
    conn.execute(delete(m).where(m.c.tenant_id == tenant, m.c.group_id == group_id))
    if rows:
        conn.execute(insert(m), [{"tenant_id": tenant, "group_id": group_id, **r} for r in rows])


def plan_rows(conn: Connection, tenant: str, group_id: str, status: str | None = None
              ) -> list[dict[str, Any]]:
    m = preference_group_members
    q = select(m).where(m.c.tenant_id == tenant, m.c.group_id == group_id)
    if status is not None:
        q = q.where(m.c.status == status)
    return [dict(r._mapping) for r in conn.execute(q.order_by(m.c.status, m.c.customer_id))]


def plan_customers(conn: Connection, tenant: str, group_id: str, statuses: Sequence[str]
                   ) -> list[str]:
    """Customers of the stored plan with one of ``statuses``, by id."""
    m = preference_group_members
    return list(conn.execute(select(m.c.customer_id).where(
        m.c.tenant_id == tenant, m.c.group_id == group_id, m.c.status.in_(list(statuses)))
        .order_by(m.c.customer_id)).scalars())


# --- identity links ------------------------------------------------------------------------------


def link_rows(conn: Connection, tenant: str, externals: Iterable[str]
              ) -> dict[str, dict[str, dict[str, Any]]]:
    """external userid → customer id → its link row."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for part in key_chunks(externals):
        for r in conn.execute(select(wecom_links).where(wecom_links.c.tenant_id == tenant,
                                                        wecom_links.c.external_userid.in_(part))):
            out.setdefault(r.external_userid, {})[r.customer_id] = dict(r._mapping)
    return out


def link_row(conn: Connection, tenant: str, external_userid: str, customer_id: str
             ) -> Row[Any] | None:
    return conn.execute(select(wecom_links).where(
        wecom_links.c.tenant_id == tenant, wecom_links.c.external_userid == external_userid,
        wecom_links.c.customer_id == customer_id)).first()


def links_with_customers(conn: Connection, tenant: str, status: str | None = None,
                         external_userid: str | None = None) -> list[dict[str, Any]]:
    """Link rows with the customer's ``name`` and ``advisor_id`` (in clear), newest first."""
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
    return [dict(r._mapping) for r in conn.execute(q)]


def insert_links(conn: Connection, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(wecom_links), [{**r, "tenant_id": tenant} for r in rows])


def update_links(conn: Connection, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Update link rows in bulk, each keyed by ``_ext`` and ``_cid``."""
    if rows:
        conn.execute(update(wecom_links).where(
            wecom_links.c.tenant_id == tenant,
            wecom_links.c.external_userid == bindparam("_ext"),
            wecom_links.c.customer_id == bindparam("_cid")), list(rows))


def linked_elsewhere(conn: Connection, tenant: str, external_userid: str, customer_id: str
                     ) -> str | None:
    """The customer the contact is linked to, if another than ``customer_id``."""
    return conn.execute(select(wecom_links.c.customer_id).where(
        wecom_links.c.tenant_id == tenant, wecom_links.c.external_userid == external_userid,
        wecom_links.c.status == "linked", wecom_links.c.customer_id != customer_id)).scalar()


def set_link_status(conn: Connection, tenant: str, external_userid: str, *,
                    customer_id: str | None = None, other_than: str | None = None,
                    only_status: str | None = None, **values: Any) -> None:
    """Set ``values`` on the contact's link rows: the one with ``customer_id``, or those
    other than ``other_than``, only those whose status is ``only_status`` when given."""
    cond = [wecom_links.c.tenant_id == tenant, wecom_links.c.external_userid == external_userid]
    if customer_id is not None:
        cond.append(wecom_links.c.customer_id == customer_id)
    if other_than is not None:
        cond.append(wecom_links.c.customer_id != other_than)
    if only_status is not None:
        cond.append(wecom_links.c.status == only_status)
    conn.execute(update(wecom_links).where(*cond).values(**values))
