"""Request bounds applied before any route runs: the body size and NUL characters.

The body is counted as it streams in, not trusted to declare its length: a chunked request
has no ``Content-Length``, and without the count its whole body would be read (even on
``/v1/auth/login``, before anyone signs in). A declared length over the limit is refused at
once; an undeclared one as soon as the bytes received pass it. Two routes count their own
bytes and are left alone: the upload (``Settings.max_upload_bytes``, streamed to disk) and
the WeCom callback (64 KB, a counted ``TOO_LARGE`` rejection).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caifu.api.errors import error_response
from caifu.core.errors import ConfigError, PayloadTooLargeError

UPLOAD_PATH = "/v1/ingest/files"


class BodyTooLarge(HTTPException):
    """Raised from inside a route's body read; the app's handler answers it (an
    HTTPException is the one kind FastAPI's body parsing passes on unchanged)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, [{"field": "body", "problem": f"larger than {limit:,} bytes"}])


def _is_callback(path: str) -> bool:
    return path.startswith("/wecom/") and path.endswith("/callback")


class BodyLimit:
    """Refuse a body larger than the settings allow (413), and a NUL character in the path or
    query (422). Plain ASGI: it runs on every request, and Starlette's BaseHTTPMiddleware
    costs a task and a stream per request."""

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
                return error_response(422, ConfigError.code, f"{field}: contains a NUL "
                                      "character", [{"field": field, "problem":
                                                     "contains a NUL character"}])
        path = scope.get("path", "")
        if _is_callback(path):
            return None
        limit = self.upload_limit if path == UPLOAD_PATH else self.limit
        length = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                       if k == b"content-length"), None)
        if length is not None and (not (length.isascii() and length.isdigit())
                                   or int(length) > limit):
            return too_large(limit)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await refused(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == UPLOAD_PATH or _is_callback(path):
            await self.app(scope, receive, send)
            return
        limit, received, started = self.limit, 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # raised inside the route's body read: FastAPI passes an HTTPException
                    # on, and the app's handler answers it in the error shape
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:  # a streaming answer already begun: nothing left to say
                raise
            await too_large(limit)(scope, receive, send)


def too_large(limit: int) -> JSONResponse:
    problem = f"larger than {limit:,} bytes"
    return error_response(413, PayloadTooLargeError.code, f"body: {problem}",
                          [{"field": "body", "problem": problem}])
