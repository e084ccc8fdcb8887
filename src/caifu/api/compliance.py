"""Data-subject requests (PIPL): export all data of a customer; erasure, or storage only.

Only compliance and the tenant admin may file them (``privacy.handle``; others: 403); a customer not in the
caller's tenant is 404, as everywhere. The reason (``X-Caifu-Reason``, percent-encoded UTF-8)
is required and written to the audit log before anything is read or erased. A storage-only
customer stays reachable here: the subject's rights outlive the end of processing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from caifu.api.deps import ContainerDep, CurrentPrincipal, reason_text, require
from caifu.api.schemas.compliance import (
    ChatFlagList,
    CustomerExport,
    FlagDecided,
    PrivacyRequestPage,
)
from caifu.services.compliance import privacy
from caifu.services.compliance.privacy import ErasureResult
from caifu.services.platform.access import tenant_of

router = APIRouter()

Reason = Annotated[str, Header(
    alias="X-Caifu-Reason", min_length=1, max_length=1500,
    description="why (audited; required); UTF-8, percent-encoded: HTTP headers are ASCII")]
CustomerId = Annotated[str, PathParam(max_length=32)]


@router.post("/v1/customers/{customer_id}/export", operation_id="export_customer_data",
             tags=["privacy"], response_model=CustomerExport,
             dependencies=[Depends(require("privacy.handle"))])
def export_customer_data(customer_id: CustomerId, p: CurrentPrincipal, c: ContainerDep,
                         reason: Reason) -> dict[str, Any]:
    """Every row stored about the customer, unmasked, in every table of the system of record
    and the lake, with a manifest (table → rows). Audited before the read."""
    return privacy.export_customer(c, tenant_of(p), customer_id, p.subject, reason_text(reason))


@router.post("/v1/customers/{customer_id}/erasure", operation_id="erase_customer_data",
             tags=["privacy"], dependencies=[Depends(require("privacy.handle"))])
def erase_customer_data(customer_id: CustomerId, p: CurrentPrincipal, c: ContainerDep,
                        reason: Reason) -> ErasureResult:
    """Erase the customer — or, where securities law keeps his account and trade records
    (≥ 20 years), make him storage only: those records stay, everything else goes, and he is
    no longer processed. The answer says which, why, and the rows erased per table."""
    return privacy.erase_customer(c, tenant_of(p), customer_id, p.subject, reason_text(reason))


@router.get("/v1/privacy/requests", operation_id="list_privacy_requests", tags=["privacy"],
            response_model=PrivacyRequestPage, dependencies=[Depends(require("privacy.handle"))])
def list_privacy_requests(p: CurrentPrincipal, c: ContainerDep,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50,
                          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """The tenant's data-subject requests, newest first: who asked, why, the outcome, the
    rule applied and the rows touched."""
    return privacy.list_requests(c, tenant_of(p), limit, offset)


@router.get("/v1/compliance/chat-flags", operation_id="list_chat_flags", tags=["compliance"],
            response_model=ChatFlagList, dependencies=[Depends(require("chat_flags.read"))])
def list_chat_flags(p: CurrentPrincipal, c: ContainerDep,
                    status: Literal["open", "confirmed", "dismissed"] = "open",
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """The chat-compliance review queue: advisor messages flagged by the lexicon or the
    advisor model, and customer alerts — each with its category, source (lexicon | model),
    evidence (the phrase and its span, or the model's score and top n-grams), a masked
    excerpt, and the lexicon and model versions that judged it."""
    from caifu.services.compliance import chat_review

    return {"flags": chat_review.review_queue(c, tenant_of(p), status, limit, offset)}


class FlagDecision(BaseModel):
    decision: Literal["confirmed", "dismissed"]
    note: str = Field(default="", max_length=1000)


@router.post("/v1/compliance/chat-flags/{flag_id}", operation_id="decide_chat_flag",
             tags=["compliance"], response_model=FlagDecided,
             dependencies=[Depends(require("chat_flags.decide"))])
def decide_chat_flag(flag_id: Annotated[str, Path(max_length=40)], body: FlagDecision,
                     p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Confirm a flag as a violation or dismiss it as a false alarm (audited)."""
    from caifu.services.compliance import chat_review

    return chat_review.decide(c, tenant_of(p), flag_id, body.decision, p.subject, body.note)
