"""The one error shape of every API answer, its handlers, and its place in the OpenAPI.

Every refusal — a ``CaifuError`` from a service, FastAPI's request validation, Starlette's
unknown path or wrong method, the body limit — answers::

    {"error": {"code": "not_found", "message": "no customer 'C9'"},
     "detail": [{"problem": "no customer 'C9'"}]}

``error.code`` is the stable code of ``caifu.core.errors`` (what a client switches on);
``detail`` lists the problems, with ``field`` (``body.user_id``, ``query.offset``) where one
field is at fault. ``detail`` keeps the shape it had before ``error`` was added, so clients
reading ``detail[0].problem`` still work.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from caifu.api.ratelimit import retry_after_header
from caifu.core.errors import (
    AuthenticationError,
    CaifuError,
    ConfigError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

# The codes of refusals that FastAPI or Starlette make, not a CaifuError: the same code as the
# CaifuError that means the same thing, so a client handles e.g. "not found" once.
HTTP_CODES = {400: "bad_request", 401: AuthenticationError.code, 403: PermissionDeniedError.code,
              404: NotFoundError.code, 405: "method_not_allowed",
              413: PayloadTooLargeError.code, 422: ConfigError.code,
              429: RateLimitedError.code}
# A 500's message can hold a server path or a table name; the caller gets this instead (the
# log has the rest, under the same request id)
HIDDEN = "internal error; the service log has the details"


class ErrorInfo(BaseModel):
    code: str = Field(description="stable error code (see docs/api.md); switch on this")
    message: str = Field(description="what went wrong, for a person")


class Problem(BaseModel):
    field: str | None = Field(None, description="where: body.x, query.x, path.x, header, …")
    problem: str


class ErrorResponse(BaseModel):
    """Every error answer of the API."""

    error: ErrorInfo
    detail: list[Problem]


DESCRIPTIONS = {400: "Bad request", 401: "No valid credentials", 403: "Not allowed for this role",
                404: "Not found for this caller", 413: "Body larger than allowed",
                422: "Invalid input", 429: "Over the quota; see Retry-After"}
# declared on every route when the routers are included; 422 replaces FastAPI's
# HTTPValidationError, which is not what the handler below sends
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in DESCRIPTIONS.items()}


def error_response(status: int, code: str, message: str,
                   detail: Sequence[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error answer; ``detail`` defaults to the message as the single problem."""
    problems = list(detail) if detail else [{"problem": message}]
    return JSONResponse({"error": {"code": code, "message": message},
                         "detail": jsonable_encoder(problems)},
                        status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every refusal into ``ErrorResponse``."""

    @app.exception_handler(CaifuError)
    async def caifu_error(_: Request, exc: CaifuError) -> JSONResponse:
        status = exc.http_status
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimitedError):
            headers = {"Retry-After": retry_after_header(exc.retry_after)}
        message = str(exc)
        if status >= 500:
            log.error("%s answered %d", exc.code, status, exc_info=exc)
            if status == 500:
                message = HIDDEN
        return error_response(status, exc.code, message, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (unparsable body, unknown path, wrong method)
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if isinstance(exc.detail, list):  # problems with their fields (api/limits.BodyTooLarge)
            message = "; ".join(f"{d['field']}: {d['problem']}" for d in exc.detail)
            return error_response(exc.status_code, code, message, exc.detail,
                                  headers=exc.headers)
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(x) for x in e["loc"]), "problem": e["msg"]}
                  for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in detail[:3])
        if len(detail) > 3:
            message += f"; and {len(detail) - 3} more"
        return error_response(422, ConfigError.code, message or "invalid request", detail)
