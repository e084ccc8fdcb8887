"""Routes: health, sign-in, tag and segment catalogue, events. Thin: parse, call one service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import text

from caifu.api.deps import ContainerDep, CurrentPrincipal, SettingsDep
from caifu.core.errors import AuthenticationError
from caifu.services import access, identity, sessions

router = APIRouter()


@router.get("/healthz", operation_id="healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", tags=["health"])
def readyz(c: ContainerDep) -> dict[str, str]:
    """The system of record answers (the service can serve requests)."""
    with c.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ready"}


class LoginIn(BaseModel):
    user_id: str = Field(min_length=3, max_length=64, pattern=r"^[^\x00-\x1f]+$")
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    tenant_id: str | None


@router.post("/v1/auth/login", operation_id="login", tags=["auth"], response_model=SessionOut)
def login(body: LoginIn, c: ContainerDep, settings: SettingsDep) -> SessionOut:
    """Sign in with a password; the answer is a session token for ``Authorization: Bearer``."""
    p = identity.login(c, body.user_id, body.password)
    if p is None or not settings.secret_key:
        raise AuthenticationError("wrong user id or password")
    return SessionOut(token=sessions.issue(settings.secret_key, p, settings.session_minutes),
                      expires_in=settings.session_minutes * 60, role=p.role,
                      tenant_id=p.tenant_id)


@router.get("/v1/tags", operation_id="list_tags", tags=["tags"])
def list_tags(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Tag definitions in force (id, name, kind, version) and how many customers hold each
    — counts over the whole tenant (aggregates, no customer ids)."""
    from caifu.services.customers import tag_counts
    from caifu.services.tagging import load_definitions

    tenant = access.tenant_of(p)
    definitions, _ = load_definitions(c, tenant)
    counts = dict(tag_counts(c, tenant))
    return {"items": [{"tag_id": d.id, "name": d.name, "kind": d.kind, "version": d.version,
                       "customers": counts.get(d.id, 0)} for d in definitions]}


@router.get("/v1/segments", operation_id="list_segments", tags=["segments"])
def list_segments(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Segments: id, name, expression and the newest recorded size."""
    from caifu.services.segments import Segments

    rows = Segments(c).list(access.tenant_of(p))
    return {"items": [{"segment_id": r["segment_id"], "name": r["name"],
                       "expression": r["expression"],
                       "latest": {"as_of": r["latest"][0].isoformat(), "members": r["latest"][1]}
                       if r["latest"] else None} for r in rows]}


@router.get("/v1/segments/{segment_id}/members", operation_id="segment_members",
            tags=["segments"])
def segment_members(segment_id: Annotated[str, PathParam(max_length=64)], p: CurrentPrincipal,
                    c: ContainerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """The segment's members on its newest date — only those the caller may see — a page."""
    return access.segment_members(c, p, segment_id, limit, offset)


class EventsIn(BaseModel):
    events: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


@router.post("/v1/events/{kind}", operation_id="push_events", tags=["events"], status_code=202)
def push_events(kind: Annotated[str, PathParam(pattern="^(chat_message|app_event)$")],
                body: EventsIn, p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """The real-time path: chat messages or APP events, checked and stored at once (a bad one
    is stored as rejected with its reasons, never dropped), applied by the worker within
    seconds."""
    from caifu.core.errors import PermissionDeniedError
    from caifu.services.events import Events

    tenant = access.tenant_of(p)
    if p.role not in access.WRITERS:
        raise PermissionDeniedError(f"a {p.role} may not push events")
    done = Events(c).submit_many(tenant, kind, body.events)
    return {"accepted": sum(s.status == "pending" for s in done),
            "rejected": sum(s.status == "rejected" for s in done),
            "items": [{"event_seq": s.event_seq, "status": s.status, "reasons": s.reasons}
                      for s in done]}
