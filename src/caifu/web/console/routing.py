"""How a console route answers what goes wrong: as a page, never as the API's JSON.

``ConsoleRoute`` wraps every console route: a caller who is not signed in is sent to the sign-in
page (303; for an htmx request ``HX-Redirect``), a refusal of the service layer (``CaifuError``:
403 role, 404, 422 input, 429 quota) becomes the error page with its status, and invalid query
parameters a 422 page. The status codes are the API's, so a script or a test sees the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from caifu.api.ratelimit import retry_after_header
from caifu.core.errors import CaifuError, PermissionDeniedError, RateLimitedError
from caifu.web.console.pages import error_page

log = logging.getLogger(__name__)
LOGIN = "/console/login"


class SignInRequired(Exception):
    """No valid console session: the caller goes to the sign-in page."""


class CsrfRefused(PermissionDeniedError):
    """A state-changing console request without the session's CSRF token."""

    code = "forbidden.csrf"


def login_redirect(request: Request) -> Response:
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = LOGIN + ("?" + urlencode({"next": back}) if request.method == "GET" else "")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _message_key(exc: CaifuError) -> str:
    if isinstance(exc, CsrfRefused):
        return "error.csrf"
    return {403: "error.forbidden", 404: "error.not_found", 429: "error.throttled"}.get(
        exc.http_status, "error.invalid" if exc.http_status < 500 else "error.server")


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return login_redirect(request)
            except RequestValidationError as exc:
                detail = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                                   for e in exc.errors()[:3])
                return error_page(request, 422, "error.invalid", detail)
            except CaifuError as exc:
                status = exc.http_status
                if status >= 500:
                    log.error("%s answered %d", exc.code, status, exc_info=exc)
                    return error_page(request, status, "error.server")
                if isinstance(exc, RateLimitedError):
                    wait = retry_after_header(exc.retry_after)
                    return error_page(request, 429, "error.throttled", str(exc),
                                      headers={"Retry-After": wait}, seconds=wait)
                return error_page(request, status, _message_key(exc), str(exc))

        return guarded


def console_router() -> APIRouter:
    """A router of console pages: out of the OpenAPI document, errors as pages."""
    return APIRouter(include_in_schema=False, route_class=ConsoleRoute)
