"""The application factory: ``create_app(settings)`` — settings passed in, never read here."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from caifu import __version__
from caifu.api import compliance, errors, ingest, platform, profiles, value
from caifu.api.logs import AccessLog
from caifu.api.ratelimit import RateLimiter
from caifu.api.scrm import callback, campaigns, sidebar
from caifu.core.errors import ConfigError, PayloadTooLargeError
from caifu.services.container import Container
from caifu.services.container import build as build_container
from caifu.services.ingest.realtime import Events
from caifu.services.platform.jobs import Jobs
from caifu.services.scrm.callback_apply import WeComEvents
from caifu.services.scrm.callback_intake import Callbacks
from caifu.services.scrm.campaigns import send_due
from caifu.settings import Settings

UPLOAD_PATH = "/v1/ingest/files"


class BodyLimit:
    """Refuse a body larger than the settings allow before reading it (413), and a NUL
    character in the path or query (422). Plain ASGI: it runs on every request, and
    Starlette's BaseHTTPMiddleware costs a task and a stream per request."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    def refusal(self, scope: Scope) -> JSONResponse | None:
        # a NUL in a path or query parameter: refused here, once, for every route (no
        # database takes one in text; PostgreSQL would fail the query)
        for field, raw in (("path", scope.get("path", "")),
                           ("query", scope.get("query_string", b"").decode("latin-1"))):
            if "\x00" in raw or "%00" in raw:
                return errors.error_response(422, ConfigError.code, f"{field}: contains a NUL "
                                             "character", [{"field": field, "problem":
                                                            "contains a NUL character"}])
        # WeCom callbacks read at most 64 KB themselves and count what is larger
        path = scope.get("path", "")
        if path.startswith("/wecom/") and path.endswith("/callback"):
            return None
        # uploads stream to disk and count their own bytes (a chunked body has no length)
        limit = self.upload_limit if scope.get("path") == UPLOAD_PATH else self.limit
        length = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                       if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > limit):
            return errors.error_response(413, PayloadTooLargeError.code, f"body: larger than "
                                         f"{limit:,} bytes", [{"field": "body", "problem":
                                                               f"larger than {limit:,} bytes"}])
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.refusal(scope) if scope["type"] == "http" else None
        if refused is not None:
            await refused(scope, receive, send)
        else:
            await self.app(scope, receive, send)


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
        app.state.callbacks = Callbacks(app.state.container,
                                        window_seconds=settings.wecom_replay_window_seconds)
        stop = threading.Event()
        workers = []
        if settings.run_jobs:
            jobs = Jobs(app.state.container)
            jobs.recover()
            workers.append(threading.Thread(target=jobs.run_worker, args=(stop,),
                                            name="caifu-jobs", daemon=True))
        if settings.run_events:  # the real-time path: apply pushed events within seconds
            workers.append(threading.Thread(target=Events(app.state.container).run_worker,
                                            args=(stop,), name="caifu-events", daemon=True))
            # WeCom callbacks are stored on arrival and applied here, off the request path
            workers.append(threading.Thread(
                target=WeComEvents(app.state.container).run_worker, args=(stop,),
                kwargs={"flush": lambda: app.state.callbacks.counter.flush(app.state.container),
                        "every_minute": lambda: send_due(app.state.container,
                                                         settings.public_base_url)},
                name="caifu-wecom", daemon=True))
        for w in workers:
            w.start()
        yield
        stop.set()
        for w in workers:
            # a running job finishes first; its writes are atomic, so a kill would be safe too
            w.join(timeout=settings.shutdown_seconds)
        try:
            app.state.callbacks.counter.flush(app.state.container)
        except Exception:  # the counts are logged per rejection as well
            logging.getLogger(__name__).exception("rejection counts not flushed at shutdown")
        if own:
            app.state.container.close()

    app = FastAPI(title="caifu", version=__version__, lifespan=lifespan,
                  description="财富 — broker wealth-business data platform API")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       upload_limit=settings.max_upload_bytes)
    app.add_middleware(AccessLog)  # outermost: a refused body is logged too
    for module in (platform, ingest, profiles, value, compliance, callback, campaigns, sidebar):
        app.include_router(module.router, responses=errors.RESPONSES)

    errors.install(app)

    return app
