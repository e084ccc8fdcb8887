"""Who may see which customer: the scope rules, applied in the service layer to every query.

    ops, tenant_admin, compliance   every customer of their tenant
    branch_manager                  customers whose branch is his
    advisor                         customers assigned to him, or following him on WeCom
                                    (an active follow: not removed)
    platform_admin                  no customer data

A customer outside the caller's scope, of another tenant, or missing is the same answer —
``NotFoundError`` — so an id's existence is never revealed. Unmasking needs a role that may
unmask (compliance) and a reason, and is audited before the read (``services/customers``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, false, or_, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.core.errors import NotFoundError, PermissionDeniedError
from caifu.core.identity import SCOPE, Principal
from caifu.services.container import Container
from caifu.services.customers import Unmask, customer_view


def scope_filter(p: Principal) -> Any:
    """A SQL condition on ``customers`` limiting rows to what ``p`` may see."""
    t = CONTRACT_TABLES["customers"]
    scope = SCOPE[p.role]
    if scope == "none" or p.tenant_id is None:
        return false()
    same_tenant = t.c.tenant_id == p.tenant_id
    if scope == "tenant":
        return same_tenant
    if scope == "branch":
        return and_(same_tenant, t.c.branch_id == p.branch_id)
    f = CONTRACT_TABLES["wecom_follows"]
    follows = exists().where(f.c.tenant_id == p.tenant_id, f.c.customer_id == t.c.customer_id,
                             f.c.advisor_id == p.advisor_id, f.c.status == "active")
    return and_(same_tenant, or_(t.c.advisor_id == p.advisor_id, follows))


def visible(c: Container, p: Principal, customer_id: str) -> bool:
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        row = conn.execute(select(t.c.customer_id).where(
            t.c.customer_id == customer_id, scope_filter(p))).first()
    return row is not None


def customer_360(c: Container, p: Principal, customer_id: str, *, unmask: bool = False,
                 reason: str = "") -> dict[str, Any]:
    """The customer's master data (masked unless unmasked), profile, tags with evidence and
    tag history — if ``p`` may see the customer."""
    if not visible(c, p, customer_id):
        raise NotFoundError(f"no customer {customer_id!r}")
    who = None
    if unmask:
        if not p.can_unmask:
            raise PermissionDeniedError(f"a {p.role} may not unmask personal data")
        who = Unmask(p.subject, reason)
    assert p.tenant_id is not None
    return customer_view(c, p.tenant_id, customer_id, who)


def visible_ids(c: Container, p: Principal) -> set[str] | None:
    """Every customer id ``p`` may see, or None when that is the whole tenant (no filter
    needed); an advisor's or a branch's customers are a bounded set."""
    if SCOPE[p.role] == "tenant" and p.tenant_id is not None:
        return None
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        return {r[0] for r in conn.execute(select(t.c.customer_id).where(scope_filter(p)))}


def tenant_of(p: Principal) -> str:
    """The tenant whose data ``p`` works on; a platform_admin has none."""
    if p.tenant_id is None or SCOPE[p.role] == "none":
        raise PermissionDeniedError(f"a {p.role} sees no tenant's customer data")
    return p.tenant_id


WRITERS = frozenset({"tenant_admin", "ops"})  # may push events


def segment_members(c: Container, p: Principal, segment_id: str, limit: int, offset: int
                    ) -> dict[str, Any]:
    """A segment's members on its newest date, only those ``p`` may see, a page at a time."""
    from caifu.core.errors import ConfigError
    from caifu.services.segments import Segments

    tenant = tenant_of(p)
    segments = Segments(c)
    try:
        segments.get(tenant, segment_id)
    except ConfigError:
        raise NotFoundError(f"no segment {segment_id!r}") from None
    day, members = segments.members(tenant, segment_id)
    ids = members["customer_id"].to_pylist()
    allowed = visible_ids(c, p)
    if allowed is not None:
        ids = [i for i in ids if i in allowed]
    return {"segment_id": segment_id, "as_of": day.isoformat(), "total": len(ids),
            "limit": limit, "offset": offset, "items": ids[offset:offset + limit]}
