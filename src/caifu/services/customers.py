"""A customer's profile, tags and their evidence — masked per data level by default.

Level ≥ 3 fields of the customer master (name, ID number, mobile …) are masked with the
mask kind their contract declares. An unmasked read names its actor and reason and is
written to the tenant's audit log *before* the data is read (``services/audit.py``); who may
ask for one is the service API's permission model (issue 5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from caifu.adapters.sor import serving
from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.core.errors import ConfigError
from caifu.core.levels import mask, must_mask
from caifu.data.contracts import registry
from caifu.services import audit
from caifu.services.container import Container

SHOWN = ("customer_id", "name", "gender", "mobile", "id_number", "branch_id", "advisor_id",
         "channel", "opened_on", "status")


@dataclass(frozen=True)
class Unmask:
    """Who reads a customer's level-3 data in clear, and why (both go to the audit log)."""

    actor: str
    reason: str


def masked_master(c: Container, tenant: str, customer_id: str,
                  unmask: Unmask | None = None) -> dict[str, Any]:
    contract = registry()["customers"]
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        found = conn.execute(select(t.c.customer_id).where(
            t.c.tenant_id == tenant, t.c.customer_id == customer_id)).first()
    if found is None:
        raise ConfigError(f"no customer {customer_id!r} in tenant {tenant!r}")
    sensitive = [n for n in SHOWN if must_mask(contract[n].level)]
    if unmask is not None:  # recorded first: a read that cannot be audited does not happen
        audit.append(c, tenant, unmask.actor, "unmask", customer_ids=[customer_id],
                     fields=sensitive, reason=unmask.reason)
    with c.engine.connect() as conn:
        row = conn.execute(select(*(t.c[n] for n in SHOWN)).where(
            t.c.tenant_id == tenant, t.c.customer_id == customer_id)).one()
    out: dict[str, Any] = {}
    for name, value in row._mapping.items():
        if value is not None and name in sensitive and unmask is None:
            value = mask(contract[name].mask or "text", str(value))
        out[name] = value
    return out


def customer_view(c: Container, tenant: str, customer_id: str,
                  unmask: Unmask | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"customer": masked_master(c, tenant, customer_id, unmask)}
    with c.engine.connect() as conn:
        prof = serving.profile(conn, tenant, customer_id)
        view["as_of"] = prof[0] if prof else None
        view["features"] = json.loads(prof[1]) if prof else {}
        view["tags"] = [{**a, "evidence": json.loads(a.pop("evidence_json"))}
                        for a in serving.assignments(conn, tenant, customer_id=customer_id)]
        view["history"] = serving.history(conn, tenant, customer_id)
    return view


def tag_counts(c: Container, tenant: str) -> list[tuple[str, int]]:
    with c.engine.connect() as conn:
        return serving.tag_counts(conn, tenant)


def examples(c: Container, tenant: str, tag_ids: list[str], n: int = 3) -> list[str]:
    """A few customers holding the given tags (most tags first), for the demo's summary."""
    with c.engine.connect() as conn:
        rows = serving.assignments(conn, tenant, tag_ids=tag_ids)
    count: dict[str, int] = {}
    for r in rows:
        count[r["customer_id"]] = count.get(r["customer_id"], 0) + 1
    return [cid for cid, _ in sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
