"""What routes depend on: the container, and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from caifu.adapters.sor import rls
from caifu.core.errors import AuthenticationError, RateLimitedError
from caifu.core.identity import Principal
from caifu.services import identity, sessions
from caifu.services.container import Container
from caifu.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="an API key (cf_…) or a session token (ct_…)")


# async: FastAPI runs a sync dependency in the thread pool, a hop per dependency per request
async def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


ContainerDep = Annotated[Container, Depends(get_container)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def authenticated(request: Request, c: ContainerDep, settings: SettingsDep,
                      creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                      ) -> Principal:
    if creds is None:
        raise AuthenticationError("send Authorization: Bearer <API key or session token>")
    token = creds.credentials
    p = None
    if token.startswith("cf_"):
        p = identity.authenticate_key(c, token)
    elif token.startswith("ct_") and settings.secret_key:
        p = sessions.read(settings.secret_key, token)
    if p is None:
        raise AuthenticationError("invalid, expired or revoked credentials")
    if p.quota_per_minute is not None:
        wait = request.app.state.limiter.take(p.subject, p.quota_per_minute)
        if wait is not None:
            raise RateLimitedError(f"over the key's quota of {p.quota_per_minute} requests a "
                                   "minute", wait)
    return p


async def current_principal(request: Request,
                            p: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """The caller — and from here on, on PostgreSQL, every transaction of the request runs
    under row-level security for his tenant (``adapters/sor/rls``); a platform_admin gets an
    empty tenant, so tenant tables show him nothing. Async on purpose: set in the request's
    own task, the tenant is copied into the worker thread that runs a sync route."""
    rls.enter(p.tenant_id or "")
    request.state.principal = p  # for the access log line
    return p


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
