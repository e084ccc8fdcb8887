"""Data-subject requests (PIPL): export all data of a customer; erasure, or storage only.

Only compliance and the tenant admin may file them (others: 403); a customer not in the
caller's tenant is 404, as everywhere. The reason (``X-Caifu-Reason``, percent-encoded UTF-8)
is required and written to the audit log before anything is read or erased. A storage-only
customer stays reachable here: the subject's rights outlive the end of processing.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from caifu.api.deps import ContainerDep, CurrentPrincipal, reason_text
from caifu.core.errors import PermissionDeniedError
from caifu.core.identity import Principal
from caifu.services.compliance import privacy
from caifu.services.platform import access
from caifu.services.platform.access import tenant_of

router = APIRouter()
HANDLERS = frozenset({"compliance", "tenant_admin"})

Reason = Annotated[str, Header(
    alias="X-Caifu-Reason", min_length=1, max_length=1500,
    description="why (audited; required); UTF-8, percent-encoded: HTTP headers are ASCII")]
CustomerId = Annotated[str, PathParam(max_length=32)]


def _handler(p: Principal) -> str:
    tenant = access.tenant_of(p)
    if p.role not in HANDLERS:
        raise PermissionDeniedError(f"a {p.role} may not handle data-subject requests")
    return tenant


@router.post("/v1/customers/{customer_id}/export", operation_id="export_customer_data",
             tags=["privacy"])
def export_customer_data(customer_id: CustomerId, p: CurrentPrincipal, c: ContainerDep,
                         reason: Reason) -> dict[str, Any]:
    """Every row stored about the customer, unmasked, in every table of the system of record
    and the lake, with a manifest (table → rows). Audited before the read."""
    tenant = _handler(p)
    return privacy.export_customer(c, tenant, customer_id, p.subject, reason_text(reason))


@router.post("/v1/customers/{customer_id}/erasure", operation_id="erase_customer_data",
             tags=["privacy"])
def erase_customer_data(customer_id: CustomerId, p: CurrentPrincipal, c: ContainerDep,
                        reason: Reason) -> dict[str, Any]:
    """Erase the customer — or, where securities law keeps his account and trade records
    (≥ 20 years), make him storage only: those records stay, everything else goes, and he is
    no longer processed. The answer says which, why, and the rows erased per table."""
    tenant = _handler(p)
    result = privacy.erase_customer(c, tenant, customer_id, p.subject, reason_text(reason))
    return dataclasses.asdict(result)


@router.get("/v1/privacy/requests", operation_id="list_privacy_requests", tags=["privacy"])
def list_privacy_requests(p: CurrentPrincipal, c: ContainerDep,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50,
                          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """The tenant's data-subject requests, newest first: who asked, why, the outcome, the
    rule applied and the rows touched."""
    return privacy.list_requests(c, _handler(p), limit, offset)


FLAG_ROLES = {"compliance", "tenant_admin"}


@router.get("/v1/compliance/chat-flags", operation_id="list_chat_flags", tags=["compliance"])
def list_chat_flags(p: CurrentPrincipal, c: ContainerDep,
                    status: Literal["open", "confirmed", "dismissed"] = "open",
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """The chat-compliance review queue: flagged advisor phrases and customer alerts, each
    with a masked excerpt and the lexicon version that flagged it."""
    from caifu.services.compliance import chat_review

    if p.role not in FLAG_ROLES:
        raise PermissionDeniedError(f"a {p.role} may not read the chat-compliance queue; roles: "
                                    "compliance, tenant_admin")
    return {"flags": chat_review.review_queue(c, tenant_of(p), status, limit, offset)}


class FlagDecision(BaseModel):
    decision: Literal["confirmed", "dismissed"]
    note: str = Field(default="", max_length=1000)


@router.post("/v1/compliance/chat-flags/{flag_id}", operation_id="decide_chat_flag",
             tags=["compliance"])
def decide_chat_flag(flag_id: Annotated[str, Path(max_length=40)], body: FlagDecision,
                     p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Confirm a flag as a violation or dismiss it as a false alarm (audited)."""
    from caifu.services.compliance import chat_review

    if p.role != "compliance":
        raise PermissionDeniedError(f"a {p.role} may not decide on chat flags; role: compliance")
    return chat_review.decide(c, tenant_of(p), flag_id, body.decision, p.subject, body.note)
