"""Rendering the console's pages: the Jinja environment, the navigation, the headers every page
carries, and the error page. Pages get their data from services; this only shapes HTML."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from caifu.core import money, roles
from caifu.core.identity import SCOPE, Principal
from caifu.web.console.texts import DEFAULT, LANGS, text

WEB: Final = Path(__file__).resolve().parents[1]  # caifu/web
LANG_COOKIE: Final = "caifu_lang"
# the files the static route serves: name → (folder, media type)
ASSETS: Final = {
    "console.css": (WEB / "static" / "console", "text/css"),
    "console.js": (WEB / "static" / "console", "text/javascript"),
    "echarts.min.js": (WEB / "static" / "vendor", "text/javascript"),
    "htmx.min.js": (WEB / "static" / "vendor", "text/javascript"),
}
# no inline or foreign script; ECharts' SVG and htmx set style attributes, hence inline styles
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
              "frame-ancestors 'none'; form-action 'self'")
HEADERS: Final = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin",
                  "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                  "Content-Security-Policy": CSP}


@dataclass(frozen=True)
class NavPage:
    key: str  # its text in texts.py
    path: str
    action: str  # the role action of core/roles the page's route requires


@dataclass(frozen=True)
class Section:
    key: str
    pages: tuple[NavPage, ...]


# the console's eight sections, in the order; a section appears once it has a page
NAV: Final = (
    Section("nav.home", (NavPage("nav.home", "/console/", "kpis.read"),)),
    Section("nav.data", (NavPage("nav.dictionary", "/console/data/dictionary", "dictionary.read"),
                         NavPage("nav.quality", "/console/data/quality", "quality.read"),
                         NavPage("nav.ingest", "/console/data/ingest", "ingest.read"))),
)


def _digest(name: str) -> str:
    folder, _ = ASSETS[name]
    return hashlib.sha256((folder / name).read_bytes()).hexdigest()[:12]


VERSIONS: Final = {name: _digest(name) for name in ASSETS}


def asset(name: str) -> str:
    """The URL of a static file, with its content's hash (cached for a year, busted on change)."""
    return f"/console/static/{name}?v={VERSIONS[name]}"


def when(value: Any) -> str:
    """A UTC time to the minute (``2026-12-08 01:02``): stored naive datetimes and the ISO
    text the services give alike."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.removesuffix("Z"))
        except ValueError:
            return value
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, dt.datetime) else str(value)


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(WEB / "templates" / "console"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(figure=money.figure, pct=money.pct, when=when)
    env.globals.update(asset=asset)
    return env


ENV: Final = _env()


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else DEFAULT


def scope_text(lang: str, p: Principal) -> str:
    kind = SCOPE[p.role]
    if kind == "branch":
        return text(lang, "scope.branch", id=p.branch_id)
    if kind == "own_customers":
        return text(lang, "scope.advisor", id=p.advisor_id)
    return text(lang, "scope.tenant" if kind == "tenant" else "scope.none")


def navigation(p: Principal | None) -> list[dict[str, Any]]:
    """The sections and pages ``p``'s role may open (none before sign-in)."""
    if p is None:
        return []
    out = []
    for s in NAV:
        pages = [pg for pg in s.pages if roles.may(p.role, pg.action)]
        if pages:
            out.append({"key": s.key, "pages": pages})
    return out


def _other_lang_url(request: Request, lang: str) -> str:
    other = "en" if lang == "zh" else "zh"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + "?" + urlencode([*query, ("lang", other)])


def render(request: Request, template: str, status: int = 200, block: str | None = None,
           headers: dict[str, str] | None = None, **ctx: Any) -> HTMLResponse:
    """``template`` (or one ``block`` of it, for an htmx swap) for the signed-in caller."""
    lang = lang_of(request)
    p: Principal | None = getattr(request.state, "principal", None)

    def t(key: str, **values: object) -> str:
        return text(lang, key, **values)

    ctx.update(t=t, lang=lang, me=p, nav=navigation(p), path=request.url.path,
               csrf=getattr(request.state, "csrf", None),
               scope=scope_text(lang, p) if p is not None else "",
               other_lang=_other_lang_url(request, lang))
    tpl = ENV.get_template(template)
    if block is not None:
        html = "".join(tpl.blocks[block](tpl.new_context(ctx)))
    else:
        html = tpl.render(ctx)
    resp = HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
    if request.query_params.get("lang") in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https",
                        path="/console")
    return resp


def error_page(request: Request, status: int, key: str, detail: str = "",
               headers: dict[str, str] | None = None, **values: object) -> HTMLResponse:
    """The refusal as a page: what happened in the reader's language, the service's message
    (which names the rule) beneath it."""
    return render(request, "error.html", status, headers=headers, key=key, values=values,
                  detail=detail, status_code=status)
