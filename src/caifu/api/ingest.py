"""Ingest and jobs: upload a file (an ingest job), the batches and their quarantine, submit
a build/score/value/lifecycle/redemption job and follow its status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from caifu.api.deps import ContainerDep, CurrentPrincipal, SettingsDep, require
from caifu.api.schemas.ingest import BatchList, EventsAccepted, QuarantinePage
from caifu.api.schemas.platform import JobPublic
from caifu.services.ingest import uploads
from caifu.services.platform import access
from caifu.services.platform.jobs import Jobs

router = APIRouter()


# batches and quarantine are tenant-wide operational data (file names, counts, masked
# rejected rows): "ingest.read" leaves out the advisor and the branch manager
@router.post("/v1/ingest/files", operation_id="upload_file", tags=["ingest"], status_code=202,
             response_model=JobPublic, dependencies=[Depends(require("ingest.write"))],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
async def upload_file(request: Request, p: CurrentPrincipal, c: ContainerDep,
                      settings: SettingsDep,
                      filename: Annotated[str, Query(min_length=1, max_length=121, description=(
                          "the file's name; its suffix and name pick the table, as for "
                          "`caifu ingest`"))],
                      table: Annotated[str | None, Query(max_length=40, pattern="^[a-z_]+$",
                                                         description="the contract table, "
                                                         "when the name does not say")] = None
                      ) -> dict[str, Any]:
    """Upload one source file (the raw body, streamed to disk); it is ingested by a job —
    follow it at ``/v1/jobs/{job_id}``. Bad rows go to the quarantine, never lost."""
    tenant = access.tenant_of(p)
    uploads.check_file_name(filename)
    if table is not None:
        from caifu.data.contracts import registry
        registry()[table]  # unknown table: ConfigError, 422, before the body is read
    upload_id, size = await uploads.save_upload(c, tenant, filename, request.stream(),
                                                settings.max_upload_bytes)
    job = Jobs(c).submit(tenant, "ingest", {"upload_id": upload_id, "file": filename,
                                            "table": table, "bytes": size}, p.subject)
    return job


@router.get("/v1/ingest/batches", operation_id="list_batches", tags=["ingest"],
            response_model=BatchList, dependencies=[Depends(require("ingest.read"))])
def list_batches(p: CurrentPrincipal, c: ContainerDep,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The newest ingest batches: file, table, status, row counts and rejection reasons."""
    return {"items": uploads.batches(c, access.tenant_of(p), limit)}


@router.get("/v1/ingest/quarantine", operation_id="list_quarantine", tags=["ingest"],
            response_model=QuarantinePage, dependencies=[Depends(require("ingest.read"))])
def list_quarantine(p: CurrentPrincipal, c: ContainerDep,
                    batch: Annotated[str | None, Query(max_length=40,
                                                       description="a batch id or prefix")] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """Rejected rows of committed batches with their reason codes; values masked."""
    return uploads.quarantine(c, access.tenant_of(p), batch, limit, offset)


class EventsIn(BaseModel):
    events: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


@router.post("/v1/events/{kind}", operation_id="push_events", tags=["events"], status_code=202,
             response_model=EventsAccepted, dependencies=[Depends(require("events.push"))])
def push_events(kind: Annotated[str, PathParam(pattern="^(chat_message|app_event)$")],
                body: EventsIn, p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """The real-time path: chat messages or APP events, checked and stored at once (a bad one
    is stored as rejected with its reasons, never dropped), applied by the worker within
    seconds."""
    from caifu.services.ingest.realtime import Events

    tenant = access.tenant_of(p)
    done = Events(c).submit_many(tenant, kind, body.events)
    return {"accepted": sum(s.status == "pending" for s in done),
            "rejected": sum(s.status == "rejected" for s in done),
            "items": [{"event_seq": s.event_seq, "status": s.status, "reasons": s.reasons}
                      for s in done]}
