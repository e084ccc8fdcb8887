"""The recommendation repository: published lists, the log of what was shown and its
outcomes, and the catalogue rows a list is judged against again at read time.

Every function takes the tenant explicitly except ``by_token``: a tracking link carries only
its token (16 random bytes), and the row's tenant is the one every later query uses — the
same exception as ``scrm_campaigns.contact_by_token``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.recommend_models import recommendation_lists as lists_t
from caifu.adapters.sor.recommend_models import recommendation_log as log_t
from caifu.adapters.sor.repos.customer_scope import Scope, condition
from caifu.adapters.sor.repos.profiles import bulk_insert
from caifu.adapters.sor.repos.scrm import key_chunks

tenants_t = CONTRACT_TABLES["tenants"]
OUTCOMES = ("sent", "opened", "clicked", "converted", "dismissed")


# --- published lists -------------------------------------------------------------------------

def delete_lists(conn: Connection, tenant: str) -> None:
    conn.execute(delete(lists_t).where(lists_t.c.tenant_id == tenant))


def insert_lists(conn: Connection, tenant: str, columns: Mapping[str, Sequence[Any]]) -> int:
    """Lists given column-wise (``customer_id``, ``as_of``, ``policy_version``,
    ``generated_at``, ``k``, ``items_json``), in the caller's transaction (COPY on
    PostgreSQL): a publish deletes and inserts in one, so readers see the old lists or the
    new, never a mix."""
    n = len(columns["customer_id"])
    return bulk_insert(conn, lists_t, {"tenant_id": [tenant] * n, **columns})


def list_of(conn: Connection, tenant: str, customer_id: str) -> Row[Any] | None:
    """The customer's published list, by primary key."""
    return lists_of(conn, tenant, [customer_id]).get(customer_id)


def lists_of(conn: Connection, tenant: str, customer_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """customer id → ``customer_id, as_of, policy_version, generated_at, k, items_json`` of
    the published lists of those customers who have one (by primary key, in chunks)."""
    t = lists_t
    out: dict[str, Row[Any]] = {}
    for part in key_chunks(customer_ids):
        for r in conn.execute(select(t.c.customer_id, t.c.as_of, t.c.policy_version,
                                     t.c.generated_at, t.c.k, t.c.items_json)
                              .where(t.c.tenant_id == tenant, t.c.customer_id.in_(part))):
            out[r.customer_id] = r
    return out


def lists_naming(conn: Connection, tenant: str, item_id: str) -> list[Row[Any]]:
    """The published lists that contain ``item_id`` anywhere (a text pre-filter; the caller
    reads the rank from ``items_json``)."""
    t = lists_t
    needle = json.dumps(item_id, ensure_ascii=False)
    return list(conn.execute(select(t.c.customer_id, t.c.as_of, t.c.policy_version, t.c.k,
                                    t.c.items_json)
                             .where(t.c.tenant_id == tenant,
                                    t.c.items_json.contains(needle, autoescape=True))
                             .order_by(t.c.customer_id)).all())


def has_lists(conn: Connection, tenant: str) -> bool:
    """Whether the tenant has published any list (an index probe on the key's first column)."""
    return conn.execute(select(lists_t.c.customer_id).where(lists_t.c.tenant_id == tenant)
                        .limit(1)).first() is not None


# --- the log ---------------------------------------------------------------------------------

def add_shown(conn: Connection, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(log_t), [{**r, "tenant_id": tenant} for r in rows])


def shown(conn: Connection, tenant: str, rec_id: str) -> Row[Any] | None:
    t = log_t
    return conn.execute(select(t).where(t.c.tenant_id == tenant, t.c.rec_id == rec_id)).first()


def log_rows(conn: Connection, tenant: str, customer_id: str) -> list[Row[Any]]:
    """The customer's log, oldest first (the (tenant, customer, shown_at) index)."""
    t = log_t
    return list(conn.execute(select(t).where(t.c.tenant_id == tenant,
                                             t.c.customer_id == customer_id)
                             .order_by(t.c.shown_at, t.c.rank)).all())


def shown_since(conn: Connection, tenant: str, since: dt.datetime) -> list[Row[Any]]:
    """What an off-policy estimate reads: every row shown at or after ``since`` — ``rec_id,
    list_id, customer_id, item_id, surface, rank, propensity, shown_at, explored, epsilon,
    explore_pool, clicked_at, converted_at`` — a list's rows together, by rank."""
    t = log_t
    return list(conn.execute(
        select(t.c.rec_id, t.c.list_id, t.c.customer_id, t.c.item_id, t.c.surface, t.c.rank,
               t.c.propensity, t.c.shown_at, t.c.explored, t.c.epsilon, t.c.explore_pool,
               t.c.clicked_at, t.c.converted_at)
        .where(t.c.tenant_id == tenant, t.c.shown_at >= since)
        .order_by(t.c.shown_at, t.c.customer_id, t.c.list_id, t.c.rank)).all())


def recent_actions(conn: Connection, tenant: str, customer_id: str, since: dt.datetime
                   ) -> list[Row[Any]]:
    """``item_id, sent_at, dismissed_at`` of the customer's recommendations sent or dismissed
    at or after ``since`` — what the read-time frequency cap and resend window look at."""
    t = log_t
    return list(conn.execute(select(t.c.item_id, t.c.sent_at, t.c.dismissed_at).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id,
        or_(t.c.sent_at >= since, t.c.dismissed_at >= since))).all())


def mark(conn: Connection, tenant: str, rec_id: str, outcome: str, on: dt.datetime) -> bool:
    """Stamp ``outcome`` at ``on`` the first time; True when this call stamped it."""
    if outcome not in OUTCOMES:
        raise ValueError(f"not a recommendation outcome: {outcome!r}")
    column = log_t.c[f"{outcome}_at"]
    done = conn.execute(update(log_t).where(log_t.c.tenant_id == tenant, log_t.c.rec_id == rec_id,
                                            column.is_(None)).values({column: on}))
    return bool(done.rowcount)


def by_token(conn: Connection, token: str) -> Row[Any] | None:
    """``tenant_id, rec_id, customer_id, item_id`` of the recommendation a tracking token
    names (no tenant: see the module docstring)."""
    t = log_t
    return conn.execute(select(t.c.tenant_id, t.c.rec_id, t.c.customer_id, t.c.item_id)
                        .where(t.c.tracking_token == token)).first()


def logged_tokens(conn: Connection, tenant: str, tokens: Sequence[str]) -> set[str]:
    """Which of ``tokens`` a logged recommendation of the tenant carries already (the token
    index): a campaign send retried is not logged twice."""
    return _logged(conn, tenant, "tracking_token", tokens)


def logged_rec_ids(conn: Connection, tenant: str, rec_ids: Sequence[str]) -> set[str]:
    """Which of ``rec_ids`` are logged already (the primary key): a group post retried is not
    logged twice (``services/recommend/group_log.rec_id``)."""
    return _logged(conn, tenant, "rec_id", rec_ids)


def _logged(conn: Connection, tenant: str, column: str, values: Sequence[str]) -> set[str]:
    c = log_t.c[column]
    out: set[str] = set()
    for part in key_chunks(values):
        out.update(r[0] for r in conn.execute(select(c).where(
            log_t.c.tenant_id == tenant, c.in_(part))))
    return out


def unconverted(conn: Connection, tenant: str, since: dt.datetime) -> list[Row[Any]]:
    """``rec_id, customer_id, item_id, item_type, shown_at`` of recommendations shown at or
    after ``since`` and not converted yet."""
    t = log_t
    return list(conn.execute(select(t.c.rec_id, t.c.customer_id, t.c.item_id, t.c.item_type,
                                    t.c.shown_at)
                             .where(t.c.tenant_id == tenant, t.c.shown_at >= since,
                                    t.c.converted_at.is_(None))).all())


def mark_converted(conn: Connection, tenant: str, found: Sequence[tuple[str, dt.datetime]]
                   ) -> None:
    """``(rec_id, when)`` pairs stamped converted, each only if it was not yet."""
    t = log_t
    for rec_id, at in found:
        conn.execute(update(t).where(t.c.tenant_id == tenant, t.c.rec_id == rec_id,
                                     t.c.converted_at.is_(None)).values(converted_at=at))


def outcome_counts(conn: Connection, tenant: str) -> dict[str, int]:
    """How many logged recommendations reached each outcome (and ``shown``: all of them)."""
    t = log_t
    row = conn.execute(select(func.count(), *(func.count(t.c[f"{o}_at"]) for o in OUTCOMES))
                       .where(t.c.tenant_id == tenant)).one()
    return dict(zip(("shown", *OUTCOMES), (int(v) for v in row), strict=True))


# --- what a list is judged against again -----------------------------------------------------

_CONTENT = CONTRACT_TABLES["content_items"]


def _content() -> Any:
    """The columns a content item is judged and shown by."""
    t = _CONTENT
    return select(t.c.content_id, t.c.content_type, t.c.title, t.c.risk_level,
                  t.c.published_at, t.c.url)


def content_rows(conn: Connection, tenant: str, ids: Sequence[str]) -> dict[str, Row[Any]]:
    """content id → ``content_type, title, risk_level, published_at, url`` as stored now."""
    out: dict[str, Row[Any]] = {}
    for part in key_chunks(ids):
        for r in conn.execute(_content().where(_CONTENT.c.tenant_id == tenant,
                                               _CONTENT.c.content_id.in_(part))):
            out[r.content_id] = r
    return out


def content_catalogue(conn: Connection, tenant: str) -> list[Row[Any]]:
    """Every content item of the tenant — ``content_id, content_type, title, risk_level,
    published_at, url`` — by id: the set a group's content plan chooses from."""
    return list(conn.execute(_content().where(_CONTENT.c.tenant_id == tenant)
                             .order_by(_CONTENT.c.content_id)).all())


def fund_rows(conn: Connection, tenant: str, codes: Sequence[str]) -> dict[str, Row[Any]]:
    """fund code → ``name, risk_level, fund_type`` as stored now."""
    t = CONTRACT_TABLES["fund_products"]
    out: dict[str, Row[Any]] = {}
    for part in key_chunks(codes):
        for r in conn.execute(select(t.c.fund_code, t.c.name, t.c.risk_level, t.c.fund_type)
                              .where(t.c.tenant_id == tenant, t.c.fund_code.in_(part))):
            out[r.fund_code] = r
    return out


def customer_row(conn: Connection, scope: Scope, customer_id: str) -> Row[Any] | None:
    """``marketing_consent, professional, advisor_id`` of the customer and his tenant's
    ``timezone`` — None when he is not within ``scope`` (one query for the sidebar's scope
    check, master data and the tenant's calendar)."""
    t = CONTRACT_TABLES["customers"]
    return conn.execute(select(t.c.marketing_consent, t.c.professional, t.c.advisor_id,
                               tenants_t.c.timezone)
                        .join_from(t, tenants_t, tenants_t.c.tenant_id == t.c.tenant_id)
                        .where(t.c.customer_id == customer_id, condition(scope))).first()
