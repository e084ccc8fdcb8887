"""Which customers a caller may see, as SQL: the scope condition on ``customers`` and the
queries of ``services.platform.access`` (visibility, the ids in scope, customer search).

The service decides the scope from the caller's role (``core.identity.SCOPE``, ``core.roles``)
and hands it here as a ``Scope``; every query is of one tenant and inside that scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, false, func, or_, select

from caifu.adapters.sor.models import (
    CONTRACT_TABLES,
    customer_cards,
    restricted_customers,
    tag_assignments,
)

customers = CONTRACT_TABLES["customers"]
follows = CONTRACT_TABLES["wecom_follows"]
CHUNK = 500  # SQLite's bound-variable limit


@dataclass(frozen=True)
class Scope:
    """``kind``: ``none`` (no customer data), ``tenant``, ``branch`` (``branch_id``'s) or
    ``own_customers`` (assigned to ``advisor_id`` or following him on WeCom, an active follow).
    Storage-only (restricted) customers are left out unless ``include_restricted``."""

    tenant: str | None
    kind: str
    branch_id: str | None = None
    advisor_id: str | None = None
    include_restricted: bool = False


def condition(s: Scope) -> Any:
    """A SQL condition on ``customers`` limiting rows to the scope."""
    t = customers
    if s.kind == "none" or s.tenant is None:
        return false()
    same_tenant = t.c.tenant_id == s.tenant
    if not s.include_restricted:
        r = restricted_customers
        same_tenant = and_(same_tenant, ~exists().where(
            r.c.tenant_id == s.tenant, r.c.customer_id == t.c.customer_id))
    if s.kind == "tenant":
        return same_tenant
    if s.kind == "branch":
        return and_(same_tenant, t.c.branch_id == s.branch_id)
    if s.kind != "own_customers":
        raise ValueError(f"unknown scope {s.kind!r}")
    f = follows
    follow = exists().where(f.c.tenant_id == s.tenant, f.c.customer_id == t.c.customer_id,
                            f.c.advisor_id == s.advisor_id, f.c.status == "active")
    return and_(same_tenant, or_(t.c.advisor_id == s.advisor_id, follow))


def in_scope(conn: Connection, scope: Scope, customer_id: str) -> bool:
    return conn.execute(select(customers.c.customer_id).where(
        customers.c.customer_id == customer_id, condition(scope))).first() is not None


def ids_in_scope(conn: Connection, scope: Scope) -> set[str]:
    return {r[0] for r in conn.execute(select(customers.c.customer_id).where(
        condition(scope)))}


def search_conditions(tenant: str, keys: Mapping[str, Any]) -> list[Any]:
    """Conditions on ``customers`` for search ``keys`` (already checked by the service):
    ``customer_id branch_id advisor_id`` exact, ``customer_id_prefix``, ``mobile_last4`` with
    ``mobile_first3`` optionally, ``tag_id`` held, ``stage`` on the card, ``mobiles`` (the
    stored forms of one number), ``id_numbers`` (its case forms), ``name`` exact."""
    t = customers
    cond: list[Any] = [t.c.tenant_id == tenant]
    for key in ("customer_id", "branch_id", "advisor_id"):
        if keys.get(key) is not None:
            cond.append(t.c[key] == keys[key])
    if keys.get("customer_id_prefix") is not None:
        cond.append(t.c.customer_id.startswith(keys["customer_id_prefix"], autoescape=True))
    last4, first3 = keys.get("mobile_last4"), keys.get("mobile_first3")
    if last4 is not None:  # digits only (checked): nothing to escape in the pattern
        cond.append(t.c.mobile.like(f"%{first3}____{last4}") if first3
                    else t.c.mobile.endswith(last4))
    if keys.get("tag_id") is not None:
        a = tag_assignments
        cond.append(exists().where(a.c.tenant_id == tenant, a.c.customer_id == t.c.customer_id,
                                   a.c.tag_id == keys["tag_id"]))
    if keys.get("stage") is not None:
        k = customer_cards
        cond.append(exists().where(k.c.tenant_id == tenant, k.c.customer_id == t.c.customer_id,
                                   k.c.lifecycle_stage == keys["stage"]))
    if keys.get("mobiles") is not None:
        cond.append(t.c.mobile.in_(keys["mobiles"]))
    if keys.get("id_numbers") is not None:
        cond.append(t.c.id_number.in_(keys["id_numbers"]))
    if keys.get("name") is not None:
        cond.append(t.c.name == keys["name"])
    return cond


def search_ids(conn: Connection, scope: Scope, keys: Mapping[str, Any], limit: int,
               offset: int) -> tuple[int, list[str]]:
    """``(total matches, one page of their ids by customer id)``."""
    assert scope.tenant is not None
    where = and_(condition(scope), *search_conditions(scope.tenant, keys))
    total = conn.execute(select(func.count()).select_from(customers).where(where)).scalar_one()
    ids = [r[0] for r in conn.execute(select(customers.c.customer_id).where(where)
                                      .order_by(customers.c.customer_id)
                                      .limit(limit).offset(offset))]
    return int(total), ids


def search_rows(conn: Connection, tenant: str, ids: Sequence[str],
                columns: Sequence[str]) -> list[dict[str, Any]]:
    """``columns`` of the customers and their lifecycle stage, ordered by customer id."""
    t, k = customers, customer_cards
    rows: list[dict[str, Any]] = []
    for i in range(0, len(ids), CHUNK):
        stmt = (select(*(t.c[n] for n in columns), k.c.lifecycle_stage)
                .outerjoin(k, and_(k.c.tenant_id == t.c.tenant_id,
                                   k.c.customer_id == t.c.customer_id))
                .where(t.c.tenant_id == tenant, t.c.customer_id.in_(ids[i:i + CHUNK])))
        rows += [dict(r._mapping) for r in conn.execute(stmt)]
    rows.sort(key=lambda r: r["customer_id"])
    return rows
