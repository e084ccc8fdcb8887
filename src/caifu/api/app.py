"""The application factory: ``create_app(settings)`` — settings passed in, never read here."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from caifu import __version__
from caifu.adapters.sor.store import Checkpointer
from caifu.api import (
    compliance,
    dictionary,
    errors,
    ingest,
    metrics,
    platform,
    profiles,
    quality,
    recommend,
    risk,
    value,
)
from caifu.api.limits import BodyLimit
from caifu.api.logs import AccessLog
from caifu.api.ratelimit import LoginThrottle, RateLimiter
from caifu.api.scrm import callback, campaigns, groups, sidebar
from caifu.core.errors import ConfigError
from caifu.services.container import Container
from caifu.services.container import build as build_container
from caifu.services.ingest.realtime import Events
from caifu.services.platform.housekeeping import Housekeeping
from caifu.services.platform.jobs import Jobs
from caifu.services.scrm.callback_apply import WeComEvents
from caifu.services.scrm.callback_intake import Callbacks
from caifu.services.scrm.campaigns import send_due
from caifu.settings import Settings
from caifu.web import console

# every router the service includes, in order (tests that walk the routes read this)
ROUTERS = (platform, ingest, profiles, recommend, value, metrics, quality, compliance, callback,
           campaigns, groups, sidebar, risk, dictionary)


def create_app(settings: Settings, container: Container | None = None) -> FastAPI:
    problem = settings.secret_problem()
    if problem:
        raise ConfigError(f"the service cannot start: {problem}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = container is None
        app.state.container = container or build_container(settings, settings.workspace)
        checkpointer = Checkpointer(app.state.container.engine)
        checkpointer.start()
        app.state.settings = settings
        app.state.limiter = RateLimiter()
        app.state.login_throttle = LoginThrottle(settings.login_failures_per_user,
                                                 settings.login_failures_per_address,
                                                 settings.login_failure_window_seconds)
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
            housekeeping = Housekeeping(app.state.container)

            def every_minute() -> None:
                try:
                    send_due(app.state.container, settings.public_base_url)
                finally:  # erased data's old lake files, once due (checked hourly)
                    housekeeping.tick()

            # WeCom callbacks are stored on arrival and applied here, off the request path
            workers.append(threading.Thread(
                target=WeComEvents(app.state.container).run_worker, args=(stop,),
                kwargs={"flush": lambda: app.state.callbacks.counter.flush(app.state.container),
                        "every_minute": every_minute},
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
        checkpointer.stop()
        if own:
            app.state.container.close()

    app = FastAPI(title="caifu", version=__version__, lifespan=lifespan,
                  description="财富 — broker wealth-business data platform API")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       upload_limit=settings.max_upload_bytes)
    app.add_middleware(AccessLog)  # outermost: a refused body is logged too
    for module in ROUTERS:
        app.include_router(module.router, responses=errors.RESPONSES)
    app.include_router(console.router)  # the console's pages: HTML, out of the OpenAPI document

    errors.install(app)

    return app
