"""Risk news: take in documents, read the stories they fold into, see rejected documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.risk import IntakeReceipt, RejectedPage, StoryDetail, StoryPage
from caifu.services.platform.access import tenant_of
from caifu.services.risk import intake

router = APIRouter()


def _z(value: Any) -> Any:
    """Naive UTC datetimes as ISO 8601 with Z; everything else as it is."""
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dict):
        return {k: _z(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_z(v) for v in value]
    return value


@router.post("/v1/risk/documents", operation_id="intake_risk_documents", tags=["risk"],
             response_model=IntakeReceipt, dependencies=[Depends(require("risk.ingest"))],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "array", "items": {
                     "type": "object"}}},
                 "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def intake_risk_documents(p: CurrentPrincipal, c: ContainerDep,
                                request: Request) -> dict[str, Any]:
    """News articles and exchange announcements: a JSON array, or JSON Lines, of objects with
    ``title``, ``url``, ``published`` (ISO 8601; without an offset read in the tenant's time
    zone), ``body``, and optional ``source``, ``language``, ``script``. Every document is
    accounted for: stored (a new story, or folded into one as an exact or near duplicate), a
    duplicate, or rejected with where, field and reason — rejected ones are kept."""
    body = await request.body()  # bounded by the service's max_body_bytes
    report = await run_in_threadpool(intake.Intake(c).take_body, tenant_of(p), body)
    return report.plain()


@router.get("/v1/risk/stories", operation_id="list_risk_stories", tags=["risk"],
            response_model=StoryPage, dependencies=[Depends(require("risk.read"))])
def list_risk_stories(p: CurrentPrincipal, c: ContainerDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
                      ) -> dict[str, Any]:
    """Stories, newest published first: the first title, how many documents and sites."""
    return _z(intake.list_stories(c, tenant_of(p), limit, offset))  # type: ignore[no-any-return]


@router.get("/v1/risk/stories/{story_id}", operation_id="get_risk_story", tags=["risk"],
            response_model=StoryDetail, dependencies=[Depends(require("risk.read"))])
def get_risk_story(story_id: Annotated[str, PathParam(max_length=40, pattern="^[a-z0-9]+$")],
                   p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """One story with every source: site, URL, published time and how it joined."""
    return _z(intake.get_story(c, tenant_of(p), story_id))  # type: ignore[no-any-return]


@router.get("/v1/risk/rejections", operation_id="list_risk_rejections", tags=["risk"],
            response_model=RejectedPage,
            dependencies=[Depends(require("risk.rejections.read"))])
def list_risk_rejections(p: CurrentPrincipal, c: ContainerDep,
                         batch: Annotated[str | None, Query(max_length=40, description=(
                             "a batch id or its first characters"))] = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                         offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
                         ) -> dict[str, Any]:
    """Rejected documents, newest first, as received, with where, field and reason."""
    return _z(intake.list_rejections(c, tenant_of(p), batch, limit, offset))  # type: ignore[no-any-return]
