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

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from caifu.adapters.sor import rls
from caifu.api.deps import ContainerDep, CurrentPrincipal
from caifu.core.errors import PermissionDeniedError
from caifu.core.tenancy import TENANT_ID_PATTERN
from caifu.scrm.callback import MAX_BODY_BYTES
from caifu.scrm.crypto import CallbackRejected
from caifu.services.access import tenant_of
from caifu.services.callbacks import Callbacks

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


@router.get("/v1/wecom/rejections", operation_id="list_wecom_rejections", tags=["wecom"])
def list_wecom_rejections(p: CurrentPrincipal, c: ContainerDep,  # noqa: ARG001
                          request: Request) -> dict[str, Any]:
    """Rejected callbacks of the last 7 days by day and reason (forged signature, stale
    timestamp, bad padding, wrong CorpID, malformed or oversized body …)."""
    if p.role not in {"tenant_admin", "ops", "compliance"}:
        raise PermissionDeniedError("rejected callbacks are for tenant admins, ops, compliance")
    return {"rejections": _callbacks(request).rejections(tenant_of(p))}
