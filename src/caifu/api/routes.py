"""Routes: health, sign-in, customers. Thin: parse, call one service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import text

from caifu.api.deps import ContainerDep, CurrentPrincipal, SettingsDep
from caifu.core.errors import AuthenticationError, ConfigError
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
    user_id: str = Field(min_length=3, max_length=64)
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


@router.get("/v1/customers/{customer_id}", operation_id="get_customer", tags=["customers"])
def get_customer(customer_id: Annotated[str, PathParam(max_length=32)], p: CurrentPrincipal,
                 c: ContainerDep,
                 unmask: Annotated[bool, Query(description="compliance only; needs X-Caifu-Reason")] = False,
                 reason: Annotated[str, Header(
                     alias="X-Caifu-Reason", max_length=1500,
                     description="why (audited); UTF-8, percent-encoded: HTTP headers are ASCII")] = ""
                 ) -> dict[str, Any]:
    """Customer 360: master data (level 3 masked unless unmasked), profile features, tags
    with evidence and their history — for customers in the caller's scope; 404 otherwise."""
    try:
        text_reason = unquote(reason, errors="strict")
    except UnicodeDecodeError:
        raise ConfigError("X-Caifu-Reason: not percent-encoded UTF-8") from None
    return access.customer_360(c, p, customer_id, unmask=unmask, reason=text_reason)
