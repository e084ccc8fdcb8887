"""Routes: health and metrics, sign-in, tag and segment catalogue, events. Thin: parse, call one service, shape the answer."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from sqlalchemy import text

from caifu.api.deps import ContainerDep, CurrentPrincipal, SettingsDep, require
from caifu.api.schemas.common import Health
from caifu.api.schemas.platform import JobPage, JobPublic
from caifu.core.errors import AuthenticationError, RateLimitedError
from caifu.core.identity import Principal
from caifu.services.platform import access, sessions, users
from caifu.services.platform.jobs import Jobs

router = APIRouter()


@router.get("/healthz", operation_id="healthz", tags=["health"])
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", operation_id="readyz", tags=["health"])
def readyz(c: ContainerDep) -> Health:
    """The system of record answers (the service can serve requests)."""
    with c.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return Health(status="ready")


# response_class=Response (no media type): FastAPI then adds no JSON body to 200 and keeps the
# refusals (403, 422 …) in JSON; PlainTextResponse would give them its text/plain too
@router.get("/metrics", operation_id="metrics", tags=["health"], response_class=Response,
            dependencies=[Depends(require("metrics.read"))],
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format 0.0.4"}})
def metrics(p: CurrentPrincipal, c: ContainerDep) -> PlainTextResponse:
    """This process's operational counters (``services/platform/telemetry``) in Prometheus'
    text format: a tenant's roles see their tenant's series, a platform_admin every one."""
    return PlainTextResponse(c.counters.render(p.tenant_id),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


class LoginIn(BaseModel):
    user_id: str = Field(min_length=3, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    tenant_id: str | None


def sign_in(request: Request, c: ContainerDep, settings: SettingsDep, user_id: str,
            password: str) -> tuple[str, Principal]:
    """A session token for the user id and password, or the refusal: 401 for a wrong pair,
    429 (``Retry-After``) once the user id or the address has failed too often — the API's
    sign-in and the console's share the throttle (``app.state.login_throttle``)."""
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "-"
    wait = throttle.wait(user_id, address)
    if wait is not None:
        raise RateLimitedError("too many failed sign-ins for this user id or from this "
                               "address; try again later", wait)
    p = users.login(c, user_id, password)
    if p is None or not settings.secret_key:
        throttle.failed(user_id, address)
        raise AuthenticationError("wrong user id or password")
    throttle.succeeded(user_id)
    return sessions.issue(settings.secret_key, p, settings.session_minutes), p


@router.post("/v1/auth/login", operation_id="login", tags=["auth"], response_model=SessionOut)
def login(body: LoginIn, c: ContainerDep, settings: SettingsDep,
          request: Request) -> SessionOut:
    """Sign in with a password; the answer is a session token for ``Authorization: Bearer``.
    Repeated failures for a user id or from an address are throttled (429, ``Retry-After``)."""
    token, p = sign_in(request, c, settings, body.user_id, body.password)
    return SessionOut(token=token, expires_in=settings.session_minutes * 60, role=p.role,
                      tenant_id=p.tenant_id)


def _iso_date(value: object) -> dt.date:
    # text only: a number (``0``) would otherwise be read as seconds since 1970
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date as YYYY-MM-DD text")
    return dt.date.fromisoformat(value)


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date"})]


class JobIn(BaseModel):
    kind: Literal["build", "score", "value", "lifecycle", "redemption", "cards"]
    as_of: IsoDate | None = Field(None, description="build/score/value/lifecycle/cards: "
                                                    "the date")
    from_: IsoDate | None = Field(None, alias="from", description="redemption: period start")
    to: IsoDate | None = Field(None, description="redemption: period end, not before from")

    @field_validator("to")
    @classmethod
    def _not_before_from(cls, to: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("from_")
        if to is not None and start is not None and to < start:
            raise ValueError(f"the period ends ({to}) before it starts ({start})")
        return to


@router.post("/v1/jobs", operation_id="submit_job", tags=["jobs"], status_code=202,
             response_model=JobPublic, dependencies=[Depends(require("jobs.submit"))])
def submit_job(body: JobIn, p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Queue a job; the service runs jobs one at a time, oldest first."""
    tenant = access.tenant_of(p)
    params = {k: v.isoformat() for k, v in (("as_of", body.as_of), ("from", body.from_),
                                             ("to", body.to)) if v is not None}
    return Jobs(c).submit(tenant, body.kind, params, p.subject)


@router.get("/v1/jobs", operation_id="list_jobs", tags=["jobs"], response_model=JobPage,
            dependencies=[Depends(require("jobs.read"))])
def list_jobs(p: CurrentPrincipal, c: ContainerDep,
              kind: Annotated[str | None, Query(max_length=20, pattern="^[a-z]+$")] = None,
              status: Annotated[Literal["queued", "running", "succeeded", "failed"] | None,
                                Query()] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """The tenant's jobs, newest first."""
    tenant = access.tenant_of(p)
    total, items = Jobs(c).list(tenant, kind=kind, status=status, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/v1/jobs/{job_id}", operation_id="get_job", tags=["jobs"],
            response_model=JobPublic, dependencies=[Depends(require("jobs.read"))])
def get_job(job_id: Annotated[str, PathParam(max_length=32)], p: CurrentPrincipal,
            c: ContainerDep) -> dict[str, Any]:
    """One job: status, parameters, and its result or error."""
    return Jobs(c).get(access.tenant_of(p), job_id)
