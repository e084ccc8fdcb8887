"""Structured service logs: one JSON object per line, and never personal data.

A record carries only fields from ``FIELDS`` — an ``extra`` key outside it is dropped at
the formatter, so a careless ``log.info(..., extra={"mobile": …})`` cannot leak. The access
line names the route *template* (``/v1/customers/{customer_id}``), not the path, and no
query string: ids and search keys stay out of the log. Messages are fixed phrases.

Each request gets an id (the caller's ``X-Request-ID`` when it is a plain token — 8 to 64 of
``A-Za-z0-9._-``, the whole value — else a new one); it is returned in ``X-Request-ID``, written on every log line of the request and on
the audit records the request causes (``services/audit.current_request``).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caifu.core.tracebacks import frames
from caifu.services.compliance import audit

FIELDS = ("request_id", "tenant", "role", "actor", "method", "route", "status", "ms",
          "job_id", "kind", "error_type", "trace", "reason")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
access_log = logging.getLogger("caifu.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage() if record.name.startswith("caifu") else record.msg}
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # the type and the frames, not the message: it may quote a customer's data
            out["error_type"] = record.exc_info[0].__name__
            out["trace"] = frames(record.exc_info[2])
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str = "info") -> None:
    """JSON lines on stderr for caifu's loggers and uvicorn's own (its access log is off:
    it prints raw paths)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("caifu", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level.upper())
        lg.propagate = False


class AccessLog:
    """One log line per request, and its id (plain ASGI, like ``BodyLimit``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                      if k == b"x-request-id"), "")
        # fullmatch: ``match`` with ``$`` would let a trailing newline through into the log
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})  # what request.state reads and writes
        state["request_id"] = rid
        token = audit.current_request.set(rid)
        t0 = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            audit.current_request.reset(token)
            route = scope.get("route")
            who = state.get("principal")
            access_log.info("request", extra={
                "request_id": rid, "method": scope.get("method"),
                "route": getattr(route, "path", "(no route)"), "status": status,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
                "tenant": getattr(who, "tenant_id", None), "role": getattr(who, "role", None),
                "actor": getattr(who, "subject", None)})
