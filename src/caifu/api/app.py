"""The application factory: ``create_app(settings)`` — settings passed in, never read here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from caifu import __version__
from caifu.api import customers, privacy, routes
from caifu.api.ratelimit import RateLimiter, retry_after_header
from caifu.core.errors import (
    AuthenticationError,
    CaifuError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from caifu.services.container import Container
from caifu.services.container import build as build_container
from caifu.settings import Settings

STATUS = {AuthenticationError: 401, NotFoundError: 404, PermissionDeniedError: 403,
          ConfigError: 422, RateLimitedError: 429}


class BodyLimit(BaseHTTPMiddleware):
    """Refuse a body larger than the settings allow before reading it (413)."""

    def __init__(self, app: Any, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return JSONResponse({"detail": [{"field": "body", "problem":
                                 f"larger than {self.limit:,} bytes"}]}, status_code=413)
        return await call_next(request)


def create_app(settings: Settings, container: Container | None = None) -> FastAPI:
    problem = settings.secret_problem()
    if problem:
        raise ConfigError(f"the service cannot start: {problem}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = container is None
        app.state.container = container or build_container(settings, settings.workspace)
        app.state.settings = settings
        app.state.limiter = RateLimiter()
        yield
        if own:
            app.state.container.close()

    app = FastAPI(title="caifu", version=__version__, lifespan=lifespan,
                  description="财富 — broker wealth-business data platform API")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    for module in (routes, customers, privacy):
        app.include_router(module.router)

    @app.exception_handler(CaifuError)
    async def caifu_error(_: Request, exc: CaifuError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimitedError):
            headers = {"Retry-After": retry_after_header(exc.retry_after)}
        return JSONResponse({"detail": [{"problem": str(exc)}]}, status_code=status,
                            headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (unparsable body, unknown path, wrong method) in our shape
        return JSONResponse({"detail": [{"problem": str(exc.detail)}]},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(x) for x in e["loc"]), "problem": e["msg"]}
                  for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    return app
