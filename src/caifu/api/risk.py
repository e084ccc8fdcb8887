"""Risk news: take in documents, read the stories they fold into, see rejected documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.risk import (
    IntakeReceipt,
    RejectedPage,
    RiskAlertPage,
    RiskTaskMoved,
    RiskTaskPage,
    StoryClassification,
    StoryClassified,
    StoryDetail,
    StoryPage,
    TaskStatus,
    TaskStatusChange,
)
from caifu.services.platform.access import tenant_of
from caifu.services.risk import intake, linking, processing, tasks

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
    duplicate, or rejected with where, field and reason — rejected ones are kept.

    Each story the batch founded is then processed before the answer (``processing``): linked
    to companies, classified, and — a negative risk naming a listed company — an alert and an
    advisor task for every holder, so the tasks exist when this returns. The documents are
    committed first: a story whose processing fails keeps them, its ``error`` says why (kept
    on the story; ``caifu risk process`` runs it again) and the other stories go on."""
    body = await request.body()  # bounded by the service's max_body_bytes
    tenant = tenant_of(p)

    def take_and_process() -> dict[str, Any]:
        report = intake.Intake(c).take_body(tenant, body)
        done = processing.after_intake(c, tenant, report)
        return {**report.plain(), "processing": [s.plain() for s in done]}

    return await run_in_threadpool(take_and_process)


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


# --- alerts and advisor tasks (issue 15, point 6) -------------------------------------------

TaskId = Annotated[str, PathParam(max_length=40, pattern="^rt[a-f0-9]+$")]
StatusQ = Annotated[TaskStatus | None, Query(description="a task status")]


@router.get("/v1/risk/alerts", operation_id="list_risk_alerts", tags=["risk"],
            response_model=RiskAlertPage, dependencies=[Depends(require("risk.alerts.read"))])
def list_risk_alerts(p: CurrentPrincipal, c: ContainerDep, status: StatusQ = None,
                     customer_id: Annotated[str | None, Query(max_length=32)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
                     ) -> dict[str, Any]:
    """Risk alerts of the customers the caller may see, newest event first: the story, the
    linked company and its evidence, the position (value at risk, unrealised P&L) and the
    factual warning an advisor may send; customers masked."""
    return _z(tasks.list_alerts(c, p, status, customer_id, limit, offset))  # type: ignore[no-any-return]


@router.get("/v1/risk/tasks", operation_id="list_risk_tasks", tags=["risk"],
            response_model=RiskTaskPage, dependencies=[Depends(require("risk.tasks.read"))])
def list_risk_tasks(p: CurrentPrincipal, c: ContainerDep, status: StatusQ = None,
                    advisor_id: Annotated[str | None, Query(max_length=32)] = None,
                    customer_id: Annotated[str | None, Query(max_length=32)] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
                    ) -> dict[str, Any]:
    """Advisor tasks within the caller's scope (an advisor: his customers'), newest first."""
    return _z(tasks.list_tasks(c, p, advisor_id, status, customer_id, limit, offset))  # type: ignore[no-any-return]


@router.post("/v1/risk/tasks/{task_id}/status", operation_id="set_risk_task_status",
             tags=["risk"], response_model=RiskTaskMoved,
             dependencies=[Depends(require("risk.tasks.update"))])
def set_risk_task_status(task_id: TaskId, change: TaskStatusChange, p: CurrentPrincipal,
                         c: ContainerDep) -> dict[str, Any]:
    """One workflow step: open → acknowledged → contacted → done, or dismissed with a reason
    from any open state; audited with who and when. Another move is 422 naming the allowed
    ones; a task outside the caller's scope is 404."""
    moved = tasks.set_status(c, p, task_id, change.status, change.reason)
    keys = RiskTaskMoved.model_fields
    return _z({k: v for k, v in moved.items() if k in keys})  # type: ignore[no-any-return]


@router.post("/v1/risk/stories/{story_id}/classification", operation_id="classify_risk_story",
             tags=["risk"], response_model=StoryClassified,
             dependencies=[Depends(require("risk.classify"))])
def classify_risk_story(story_id: Annotated[str, PathParam(max_length=40, pattern="^[a-z0-9]+$")],
                        body: StoryClassification, p: CurrentPrincipal,
                        c: ContainerDep) -> dict[str, Any]:
    """An operator's event type and polarity for a story (the manual path until the
    classifier fills them); audited. Exposure takes only a negative story with an event."""
    linking.classify_story(c, tenant_of(p), story_id, body.event_type, body.polarity,
                           p.subject)
    return {"story_id": story_id, "event_type": body.event_type, "polarity": body.polarity,
            "classified_by": f"operator:{p.subject}"}
