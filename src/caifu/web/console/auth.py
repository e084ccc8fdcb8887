"""Signing in to the console, and the principal every console page acts for.

    GET  /console/login     the form (a signed-in caller goes on to ``next``)
    POST /console/login     user id + password → the session cookie, 303 to ``next``
    POST /console/logout    clears the cookie, 303 to the form

The session is the API's own (``services/platform/sessions``: ``ct_…``, HMAC, expiry
``Settings.session_minutes``), held in the ``caifu_console`` cookie: HttpOnly, SameSite=Strict,
path ``/console``, Secure whenever the request came over https. Sign-in goes through the same
function as ``POST /v1/auth/login`` and its throttle of failed attempts.

CSRF: every state-changing request carries a token — on the sign-in form, the HMAC of a random
nonce kept in its own short-lived cookie (double submit, signed); once signed in, the HMAC of
the session token (``csrf`` form field or ``X-CSRF-Token`` header, which console.js adds to
htmx requests). ``console_principal`` checks it for every method but GET/HEAD, so a route that
depends on the principal — and every console route but the sign-in form and the static files
must (a test lists them) — cannot forget it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Annotated, Final
from urllib.parse import parse_qs

from fastapi import Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from caifu.api.deps import ContainerDep, SettingsDep, charge, enter
from caifu.api.platform import sign_in
from caifu.api.ratelimit import retry_after_header
from caifu.core import roles
from caifu.core.errors import AuthenticationError, RateLimitedError
from caifu.core.identity import Principal
from caifu.services.platform import sessions
from caifu.settings import Settings
from caifu.web.console.pages import render
from caifu.web.console.routing import LOGIN, CsrfRefused, SignInRequired, console_router

SESSION_COOKIE: Final = "caifu_console"
LOGIN_COOKIE: Final = "caifu_console_login"  # the sign-in form's nonce
LOGIN_MINUTES: Final = 30
SAFE: Final = frozenset({"GET", "HEAD"})
HOME: Final = "/console/"
MAX_FORM: Final = 8192  # a console form is a few fields

router = console_router()


def _mac(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def csrf_for(secret: str, session_token: str) -> str:
    """The CSRF token of a session (its HMAC under the service's secret)."""
    return _mac(secret, "console-csrf", session_token)


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value each); anything else is an empty form."""
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return {}
    body = await request.body()  # Starlette keeps it: the route may read it again
    if len(body) > MAX_FORM:
        return {}
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in fields.items()}


def _cookie_args(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https",
            "path": "/console"}


def _session(request: Request, settings: Settings) -> tuple[Principal, str] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not token.isascii() or not settings.secret_key:
        return None
    p = sessions.read(settings.secret_key, token)
    return None if p is None else (p, token)


async def console_principal(request: Request, settings: SettingsDep) -> Principal:
    """The signed-in caller of a console page: his session cookie, his quota, his CSRF token
    on anything but a read; the request then acts for him (``api/deps.enter``). Async, so the
    tenant setting follows the request into the worker thread of a sync route."""
    found = _session(request, settings)
    if found is None:
        raise SignInRequired
    p, token = found
    want = csrf_for(str(settings.secret_key), token)
    if request.method not in SAFE:
        sent = request.headers.get("x-csrf-token") or (await form_of(request)).get("csrf", "")
        if not hmac.compare_digest(sent.encode(), want.encode()):
            raise CsrfRefused("a state-changing console request needs the page's CSRF token")
    charge(request, settings, p)
    enter(request, p)
    request.state.csrf = want
    return p


ConsolePrincipal = Annotated[Principal, Depends(console_principal)]


class Allowed:
    """``Depends(allowed(action))``: the console's caller, if his role may do ``action`` —
    the action table of ``core/roles`` the API's routes declare, so a page shows exactly what
    the role may read over the API."""

    def __init__(self, action: str) -> None:
        roles.allowed(action)  # an unknown action fails when the route is declared
        self.action = action

    async def __call__(self, p: ConsolePrincipal) -> Principal:
        roles.check(p.role, self.action)
        return p

    def __repr__(self) -> str:
        return f"allowed({self.action!r})"


def allowed(action: str) -> Allowed:
    return Allowed(action)


def _next(value: str | None) -> str:
    """Where to go after signing in: a console path of this site, nothing else."""
    if value and re.fullmatch(r"/console(/[^\s\\]*)?", value) and not value.startswith("//"):
        return value
    return HOME


def _form(request: Request, settings: Settings, status: int = 200, error: str | None = None,
          seconds: str = "", user_id: str = "", target: str = HOME,
          headers: dict[str, str] | None = None) -> Response:
    nonce = secrets.token_urlsafe(24)
    resp = render(request, "login.html", status, headers=headers, error=error,
                  seconds=seconds, user_id=user_id, target=target,
                  login_csrf=_mac(str(settings.secret_key), "console-login", nonce))
    resp.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_MINUTES * 60, **_cookie_args(request))
    return resp


@router.get(LOGIN, name="console_login_form")
def login_form(request: Request, settings: SettingsDep,
               then: Annotated[str | None, Query(alias="next", max_length=2000)] = None
               ) -> Response:
    if _session(request, settings) is not None:
        return RedirectResponse(_next(then), status_code=303)
    return _form(request, settings, target=_next(then))


@router.post(LOGIN, name="console_login")
async def login(request: Request, c: ContainerDep, settings: SettingsDep) -> Response:
    """The form's user id and password: a session cookie and on to ``next``; a wrong pair
    401, too many failures 429 — the form again, saying so."""
    form = await form_of(request)
    user_id, password = form.get("user_id", "").strip(), form.get("password", "")
    target = _next(form.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    want = _mac(str(settings.secret_key), "console-login", nonce)
    if not nonce or not hmac.compare_digest(form.get("csrf", "").encode(), want.encode()):
        return _form(request, settings, 403, "login.expired", user_id=user_id, target=target)
    if not 1 <= len(user_id) <= 64 or not 1 <= len(password) <= 256 or \
            any(ord(ch) < 32 for ch in user_id):
        return _form(request, settings, 422, "login.invalid", target=target)
    try:
        # argon2 takes tens of milliseconds: off the event loop
        token, _ = await run_in_threadpool(sign_in, request, c, settings, user_id, password)
    except RateLimitedError as exc:
        wait = retry_after_header(exc.retry_after)
        return _form(request, settings, 429, "login.throttled", seconds=wait,
                     user_id=user_id, target=target, headers={"Retry-After": wait})
    except AuthenticationError:
        return _form(request, settings, 401, "login.wrong", user_id=user_id, target=target)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, max_age=settings.session_minutes * 60,
                    **_cookie_args(request))
    resp.delete_cookie(LOGIN_COOKIE, **_cookie_args(request))
    return resp


@router.post("/console/logout", name="console_logout")
def logout(request: Request, _: ConsolePrincipal) -> Response:
    """Clears the session cookie (the CSRF token is checked by the principal)."""
    resp = RedirectResponse(LOGIN, status_code=303)
    resp.delete_cookie(SESSION_COOKIE, **_cookie_args(request))
    return resp
