"""A customer's profile, tags and their evidence, and card — masked per data level by default.

Level ≥ 3 fields of the customer master (name, ID number, mobile …) are masked with the
mask kind their contract declares. An unmasked read names its actor and reason and is
written to the tenant's audit log *before* the data is read (``services/compliance/audit.py``); who may
ask for one is the service API's permission model (issue 5).

The card (holdings, trades, P&L, lifecycle, scores, suitability; ``services/profiles/cards.py``) is
one more primary-key read; ``card`` is ``null`` with a note in ``notes`` when there is none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from caifu.adapters.sor.repos import profiles as repo
from caifu.core.errors import ConfigError
from caifu.core.levels import mask, must_mask
from caifu.data.contracts import registry
from caifu.services.compliance import audit
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
    with c.engine.connect() as conn:
        found = repo.customer_exists(conn, tenant, customer_id)
    if not found:
        raise ConfigError(f"no customer {customer_id!r} in tenant {tenant!r}")
    sensitive = [n for n in SHOWN if must_mask(contract[n].level)]
    if unmask is not None:  # recorded first: a read that cannot be audited does not happen
        audit.append(c, tenant, unmask.actor, "unmask", customer_ids=[customer_id],
                     fields=sensitive, reason=unmask.reason)
    with c.engine.connect() as conn:
        row = repo.customer_master(conn, tenant, customer_id, SHOWN)
    if row is None:  # erased between the two reads
        raise ConfigError(f"no customer {customer_id!r} in tenant {tenant!r}")
    return masked_row(row) if unmask is None else row


def masked_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A customers row with every level-3 value masked the way its contract says (the
    columns not in the contract, such as a card's stage, pass through)."""
    contract = registry()["customers"]
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is not None and name in contract and must_mask(contract[name].level):
            value = mask(contract[name].mask or "text", str(value))
        out[name] = value
    return out


def customer_view(c: Container, tenant: str, customer_id: str,
                  unmask: Unmask | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"customer": masked_master(c, tenant, customer_id, unmask)}
    with c.engine.connect() as conn:
        prof = repo.profile(conn, tenant, customer_id)
        view["as_of"] = prof[0] if prof else None
        view["features"] = json.loads(prof[1]) if prof else {}
        view["tags"] = [{**a, "evidence": json.loads(a.pop("evidence_json"))}
                        for a in repo.assignments(conn, tenant, customer_id=customer_id)]
        view["history"] = repo.history(conn, tenant, customer_id)
        view["card"], note = card(conn, tenant, customer_id)
    view["notes"] = [note] if note else []
    return view


def card(conn: Connection, tenant: str, customer_id: str) -> tuple[dict[str, Any] | None,
                                                                    str | None]:
    """The customer's card (``services/profiles/cards.py``) by primary key, or None and why not."""
    row = repo.card(conn, tenant, customer_id)
    if row is not None:
        return {**json.loads(row[0]), "built_at": row[1].isoformat()}, None
    if not repo.has_cards(conn, tenant):  # only on a miss
        return None, f"no customer cards yet for tenant {tenant!r}: run `caifu cards -t {tenant}`"
    return None, ("no card for this customer in the last build (opened after its date, or "
                  "under storage only): run `caifu cards` again")


def examples(c: Container, tenant: str, tag_ids: list[str], n: int = 3) -> list[str]:
    """A few customers holding the given tags (most tags first), for the demo's summary."""
    with c.engine.connect() as conn:
        rows = repo.assignments(conn, tenant, tag_ids=tag_ids)
    count: dict[str, int] = {}
    for r in rows:
        count[r["customer_id"]] = count.get(r["customer_id"], 0) + 1
    return [cid for cid, _ in sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
