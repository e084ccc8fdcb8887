"""The WeCom callback URL of each tenant: ``/wecom/{tenant}/callback``.

GET answers WeCom's URL verification with the decrypted echostr; POST stores an encrypted
event and answers ``success`` at once (services/callbacks; a worker applies it). Anything
that fails a check gets one uniform ``403 rejected`` — the caller learns nothing about which
check — and is counted by reason (``GET /v1/wecom/rejections``).

These routes authenticate by the WeCom signature, not by API keys, so they are left out of
the OpenAPI document of the key-authenticated API.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from caifu.adapters.sor import rls
from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.compliance import ChatIntakeReport
from caifu.api.schemas.scrm import RejectionList
from caifu.core.tenancy import TENANT_ID_PATTERN
from caifu.scrm.callback import MAX_BODY_BYTES
from caifu.scrm.crypto import CallbackRejected
from caifu.services.platform.access import tenant_of
from caifu.services.scrm.callback_intake import Callbacks

router = APIRouter()
_TENANT = re.compile(TENANT_ID_PATTERN)
REJECTED = PlainTextResponse("rejected", status_code=403)


def _callbacks(request: Request) -> Callbacks:
    cb: Callbacks = request.app.state.callbacks
    return cb


def _scoped(tenant: str, fn: Any, *args: Any) -> Any:
    """Run ``fn`` as the tenant on PostgreSQL (row-level security) when the id is valid."""
    if _TENANT.match(tenant):
        with rls.tenant_scope(tenant):
            return fn(tenant, *args)
    return fn(tenant, *args)


@router.get("/wecom/{tenant}/callback", include_in_schema=False)
def verify_callback_url(tenant: str, request: Request) -> Response:
    try:
        echo = _scoped(tenant, _callbacks(request).verify_url, dict(request.query_params))
    except CallbackRejected:
        return REJECTED
    return PlainTextResponse(echo)


async def _read_bounded(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes (the rest is not read)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/wecom/{tenant}/callback", include_in_schema=False)
async def receive_callback(tenant: str, request: Request) -> Response:
    cb = _callbacks(request)
    body = await _read_bounded(request, MAX_BODY_BYTES)
    params = dict(request.query_params)
    try:
        if body is None:
            await run_in_threadpool(_scoped, tenant, cb.refuse, "TOO_LARGE")
        await run_in_threadpool(_scoped, tenant, cb.receive, params, body)
    except CallbackRejected:
        return REJECTED
    return PlainTextResponse("success")


@router.get("/v1/wecom/rejections", operation_id="list_wecom_rejections", tags=["wecom"],
            response_model=RejectionList,
            dependencies=[Depends(require("wecom.rejections.read"))])
def list_wecom_rejections(p: CurrentPrincipal, c: ContainerDep,  # noqa: ARG001
                          request: Request) -> dict[str, Any]:
    """Rejected callbacks of the last 7 days by day and reason (forged signature, stale
    timestamp, bad padding, wrong CorpID, malformed or oversized body …). A platform_admin
    gets the refusals no tenant owns — an unknown tenant in the URL (``UNKNOWN_TENANT``) or
    one without a WeCom app (``NO_APP``) — counted by this process since it started."""
    if p.tenant_id is None:  # the platform's own principal: refusals no tenant owns
        return {"scope": "platform", "rejections": _callbacks(request).unattributed()}
    return {"rejections": _callbacks(request).rejections(tenant_of(p))}


@router.post("/v1/wecom/chats", operation_id="intake_chat_archive", tags=["wecom"],
             response_model=ChatIntakeReport, dependencies=[Depends(require("chats.intake"))])
async def intake_chat_archive(p: CurrentPrincipal, c: ContainerDep,
                              request: Request) -> dict[str, Any]:
    """Decrypted chat-archive messages, one JSON object per line (the shape of WeCom's
    会话内容存档 SDK output). Every line is accounted for: a message, a rejection with its
    line number and reason, or a counted skip. Messages go to the real-time tag path; the
    tenant's lexicon flags advisors' risky phrases for review and alerts when a customer
    sends his own ID number, bank card or password."""
    from caifu.services.compliance import chat_review

    body = await request.body()  # bounded by the service's max_body_bytes
    lines = body.decode("utf-8", "replace").splitlines()
    result = await run_in_threadpool(chat_review.intake_archive, c, tenant_of(p), lines)
    return result.plain()






