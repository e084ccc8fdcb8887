"""The WeCom sidebar (聊天工具栏) H5 page and its calls — outside the ``/v1`` API-key auth.

    GET  /wecom/{tenant}/sidebar                 the page (or 302 to WeCom OAuth without a session)
    GET  /wecom/{tenant}/sidebar/oauth           OAuth redirect target: code + state → session cookie
    POST /wecom/{tenant}/sidebar/context         {"external_userid"} → the customer view as JSON
    POST /wecom/{tenant}/sidebar/card            {"external_userid"} → the same as an HTML fragment
    GET  /wecom/{tenant}/sidebar/customer        ?external_userid= → the same as a whole page
    POST /wecom/{tenant}/sidebar/risk-task       {"external_userid", "task_id", "status",
                                                 "reason"} → the risk section re-rendered
    POST /wecom/{tenant}/sidebar/recommendation  {"external_userid", "rec_id", "outcome":
                                                 sent | dismissed} → {"stamped": bool}
    GET  /wecom/{tenant}/sidebar/jsapi           ?url= → {corpId, agentId, timestamp, nonceStr, signature}
    GET  /wecom/{tenant}/sidebar/static/{name}   sidebar.js / sidebar.css (nothing from a CDN)

Cookies: the session (``caifu_sidebar``, 15 minutes) and the OAuth state nonce are HttpOnly,
``SameSite=Lax`` and scoped to the tenant's sidebar path; ``Secure`` is set whenever the
request came over https (behind a TLS proxy, run uvicorn with ``--proxy-headers``). Lax, not
None: the sidebar is a top-level page in WeCom's webview and all its calls are same-origin,
so None would gain nothing, would need Secure (Chromium drops ``SameSite=None`` without it,
which breaks plain-http localhost), and would send the cookie on cross-site requests.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from caifu.adapters.sor import rls
from caifu.api.deps import ContainerDep, SettingsDep, json_response
from caifu.core import money
from caifu.core.errors import CaifuError
from caifu.services.compliance import audit
from caifu.services.scrm import sidebar as sb

router = APIRouter(include_in_schema=False)

WEB = Path(__file__).resolve().parents[2] / "web"  # caifu/web, from caifu/api/scrm/
STATIC = {"sidebar.js": "text/javascript", "sidebar.css": "text/css",
          "wecom-jssdk.js": "text/javascript"}  # the last one only if a deployment adds it
Tenant = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Ctx = Annotated[str | None, Query(max_length=64, description="demo: the chat's external_userid")]


def _pct(v: Any) -> str:
    return money.pct(v, digits=2, signed=True)


def _tone(v: Any) -> str:  # A-share convention: red up, green down
    try:
        d = Decimal(str(v))
    except (InvalidOperation, TypeError):
        return ""
    return "up" if d > 0 else "down" if d < 0 else ""


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(WEB / "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(yuan=money.yuan, signed=money.signed_yuan, pct=_pct, tone=_tone)
    return env


ENV = _env()


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = ENV.get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        # no inline or foreign script may run in a page showing holdings; connections are
        # left open for the WeCom JS-SDK
        "Content-Security-Policy": "script-src 'self'; object-src 'none'; base-uri 'none'"})


def _denied(tenant: str, exc: sb.Denied, fragment: bool = False) -> HTMLResponse:
    return _page("sidebar_denied.html", exc.status, message=exc.message, fragment=fragment,
                 base=f"/wecom/{tenant}/sidebar")


async def _scoped(tenant: Tenant) -> str:
    """On PostgreSQL every transaction of the request runs under the tenant's row-level
    security (async, so the setting follows the request into the worker thread)."""
    rls.enter(tenant)
    return tenant


ScopedTenant = Annotated[str, Depends(_scoped)]


def _cookie_args(request: Request, tenant: str) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https",
            "path": f"/wecom/{tenant}/sidebar"}


def _advisor(request: Request, c: Any, secret: str, tenant: str) -> Any:
    s = sb.read_session(secret, request.cookies.get(sb.SESSION_COOKIE), tenant)
    return None if s is None else sb.principal(c, s)


class ContextIn(BaseModel):
    external_userid: str = Field(max_length=64)


@router.get("/wecom/{tenant}/sidebar", name="sidebar_page")
def sidebar_page(tenant: ScopedTenant, request: Request, c: ContainerDep,
                 settings: SettingsDep, ctx: Ctx = None) -> Response:
    """The page for a signed-in advisor; otherwise off to WeCom's OAuth and back."""
    secret = str(settings.secret_key)
    try:
        app = sb.wecom_app(c, tenant)
    except sb.Denied as exc:
        return _denied(tenant, exc)
    who = _advisor(request, c, secret, tenant)
    if who is None:
        state, nonce = sb.issue_state(secret, tenant, ctx)
        target = str(request.url_for("sidebar_oauth", tenant=tenant))
        resp = RedirectResponse(sb.oauth_url(app, target, state), status_code=302)
        resp.set_cookie(sb.STATE_COOKIE, nonce, max_age=sb.STATE_MINUTES * 60,
                        **_cookie_args(request, tenant))
        return resp
    p, advisor = who
    return _page("sidebar.html", mode="shell", fragment=False, tenant=tenant,
                 base=f"/wecom/{tenant}/sidebar", ctx=ctx, advisor=advisor, corp_id=app.corp_id,
                 agent_id=app.agent_id, jssdk=(WEB / "static" / "wecom-jssdk.js").is_file())


@router.get("/wecom/{tenant}/sidebar/oauth", name="sidebar_oauth")
def sidebar_oauth(tenant: ScopedTenant, request: Request, c: ContainerDep,
                  settings: SettingsDep, code: Annotated[str, Query(max_length=512)] = "",
                  state: Annotated[str, Query(max_length=2000)] = "") -> Response:
    """WeCom redirects here with ``code`` and our ``state``: check the state against this
    browser's nonce cookie, exchange the code (once), start the advisor's session."""
    secret = str(settings.secret_key)
    try:
        ctx = sb.check_state(secret, tenant, state, request.cookies.get(sb.STATE_COOKIE))
        session = sb.sign_in(c, tenant, code)
    except sb.Denied as exc:
        return _denied(tenant, exc)
    except CaifuError:  # no WeCom app, WeCom unreachable: say so without details
        return _denied(tenant, sb.Denied("暂时无法连接企业微信，请稍后重试。", 503))
    audit.append(c, tenant, f"wecom:{session.wecom_userid}", "login",
                 reason="企业微信侧边栏登录")
    back = f"/wecom/{tenant}/sidebar" + (f"?{urlencode({'ctx': ctx})}" if ctx else "")
    resp = RedirectResponse(back, status_code=303)
    args = _cookie_args(request, tenant)
    resp.set_cookie(sb.SESSION_COOKIE, sb.issue_session(secret, session),
                    max_age=sb.SESSION_MINUTES * 60, **args)
    resp.delete_cookie(sb.STATE_COOKIE, **args)
    return resp


def _view(request: Request, c: Any, secret: str, tenant: str, external_userid: str
          ) -> dict[str, Any]:
    who = _advisor(request, c, secret, tenant)
    if who is None:
        raise sb.Denied("登录已过期，请重新打开侧边栏。", 401)
    return sb.view(c, who[0], who[1], external_userid, link_base=str(request.base_url))


@router.post("/wecom/{tenant}/sidebar/context")
def sidebar_context(tenant: ScopedTenant, body: ContextIn, request: Request, c: ContainerDep,
                    settings: SettingsDep) -> Response:
    """The chat's customer as JSON, after the follow and scope checks; 403 otherwise."""
    try:
        return json_response(_view(request, c, str(settings.secret_key), tenant,
                                   body.external_userid))
    except sb.Denied as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)


@router.post("/wecom/{tenant}/sidebar/card")
def sidebar_card(tenant: ScopedTenant, body: ContextIn, request: Request, c: ContainerDep,
                 settings: SettingsDep) -> Response:
    """The customer section of the page, rendered here (the page's script inserts it)."""
    try:
        v = _view(request, c, str(settings.secret_key), tenant, body.external_userid)
    except sb.Denied as exc:
        return _denied(tenant, exc, fragment=True)
    return _page("sidebar.html", mode="customer", fragment=True, v=v, tenant=tenant)


class RiskTaskIn(BaseModel):
    external_userid: str = Field(max_length=64)
    task_id: str = Field(max_length=40, pattern="^rt[a-f0-9]+$")
    status: Literal["acknowledged", "contacted", "done", "dismissed"]
    reason: str = Field("", max_length=500)


@router.post("/wecom/{tenant}/sidebar/risk-task")
def sidebar_risk_task(tenant: ScopedTenant, body: RiskTaskIn, request: Request,
                      c: ContainerDep, settings: SettingsDep) -> Response:
    """One step of a risk task of the chat's customer (the service behind ``POST
    /v1/risk/tasks/{id}/status``, with the sidebar's session and follow check); answers the
    customer's risk section as it now is (empty when no open alert is left), or with why not."""
    who = _advisor(request, c, str(settings.secret_key), tenant)
    if who is None:
        return _denied(tenant, sb.Denied("登录已过期，请重新打开侧边栏。", 401), fragment=True)
    p = who[0]
    try:
        customer_id = sb.move_risk_task(c, p, body.external_userid, body.task_id, body.status,
                                        body.reason)
        error, status = None, 200
    except sb.Denied as exc:
        if exc.status != 422:
            return _denied(tenant, exc, fragment=True)
        try:  # passed a moment ago, unless the customer unfollowed meanwhile
            customer_id = sb.customer_for(c, p, body.external_userid)
        except sb.Denied as gone:
            return _denied(tenant, gone, fragment=True)
        error, status = exc.message, 422
    return _page("sidebar.html", status, mode="customer", fragment="risk",
                 risk=sb.risk_alerts(c, p, customer_id), actions=True, error=error)


class RecommendationIn(BaseModel):
    external_userid: str = Field(max_length=64)
    rec_id: str = Field(pattern="^[a-f0-9]{32}$")
    outcome: Literal["sent", "dismissed"]


@router.post("/wecom/{tenant}/sidebar/recommendation")
def sidebar_recommendation(tenant: ScopedTenant, body: RecommendationIn, request: Request,
                           c: ContainerDep, settings: SettingsDep) -> Response:
    """The advisor sent a recommendation into the chat (the page reports it once WeCom
    accepted the message) or dismissed it: stamped on the log, audited. A recommendation
    that is not the chat customer's is refused like a customer out of scope."""
    who = _advisor(request, c, str(settings.secret_key), tenant)
    if who is None:
        return JSONResponse({"detail": "登录已过期，请重新打开侧边栏。"}, status_code=401)
    try:
        stamped = sb.recommendation_outcome(c, who[0], body.external_userid, body.rec_id,
                                            body.outcome)
    except sb.Denied as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    return JSONResponse({"stamped": stamped}, headers={"Cache-Control": "no-store"})


@router.get("/wecom/{tenant}/sidebar/customer")
def sidebar_customer(tenant: ScopedTenant, request: Request, c: ContainerDep,
                     settings: SettingsDep,
                     external_userid: Annotated[str, Query(max_length=64)] = "") -> Response:
    """The same view as a whole page (a link, or a browser without script)."""
    try:
        v = _view(request, c, str(settings.secret_key), tenant, external_userid)
    except sb.Denied as exc:
        return _denied(tenant, exc)
    return _page("sidebar.html", mode="customer", fragment=False, v=v, tenant=tenant,
                 base=f"/wecom/{tenant}/sidebar", ctx=None, advisor=v["advisor"],
                 corp_id="", agent_id="", jssdk=False)


@router.get("/wecom/{tenant}/sidebar/jsapi")
def sidebar_jsapi(tenant: ScopedTenant, request: Request, c: ContainerDep,
                  settings: SettingsDep, url: Annotated[str, Query(max_length=2000)]) -> Response:
    """The agent-config signature for a page of this sidebar (no other URL is signed)."""
    if _advisor(request, c, str(settings.secret_key), tenant) is None:
        return JSONResponse({"detail": "登录已过期，请重新打开侧边栏。"}, status_code=401)
    own = f"{request.base_url}wecom/{tenant}/sidebar"
    if not (url == own or url.startswith((own + "?", own + "/", own + "#"))):
        return JSONResponse({"detail": "只能为本侧边栏页面签名"}, status_code=422)
    try:
        return JSONResponse(sb.agent_config(c, tenant, url),
                            headers={"Cache-Control": "no-store"})
    except CaifuError:
        return JSONResponse({"detail": "暂时无法连接企业微信，请稍后重试。"}, status_code=503)


@router.get("/wecom/{tenant}/sidebar/static/{name}")
def sidebar_static(name: Annotated[str, PathParam(max_length=40)]) -> Response:
    path = WEB / "static" / name
    if name not in STATIC or not path.is_file():
        return JSONResponse({"detail": "not found"}, status_code=404)
    return FileResponse(path, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})
