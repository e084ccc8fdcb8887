"""Every console route acts for the signed-in principal, through the service layer.

The routes are read from the app ``caifu serve`` runs (``create_app``), not from a list kept
here: a new page that forgets ``auth.console_principal`` (and with it the session, the CSRF
check on writes, the quota and the tenant's row-level security) fails the first test; only the
sign-in form and the static files are public, by name. Each page names one role action of
``core/roles`` (the API's own), the navigation names the same, and the console's modules
import nothing that reads storage directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import caifu
from caifu.api.app import create_app
from caifu.core import roles
from caifu.settings import Settings
from caifu.web.console import home
from caifu.web.console.auth import Allowed, ConsolePrincipal, console_principal
from caifu.web.console.pages import NAV
from caifu.web.console.texts import LANGS, TEXTS
from tests.unit.platform.test_import_boundaries import imports_of, module_name

SECRET = "k3y-for-tests-only-0123456789abcdefghijklmnop"
PUBLIC = {("GET", "/console/login"), ("POST", "/console/login"),
          ("GET", "/console/static/{name}")}
SRC = Path(caifu.__file__).resolve().parent
TEMPLATES = SRC / "web" / "templates" / "console"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(secret_key=SECRET))  # no lifespan: the routes only


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The app's routes, through included routers (FastAPI ≥ 0.16x keeps them nested)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)
        elif isinstance(r, APIRoute):
            yield r


def console_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every console route of the app."""
    return [(method, r.path, r) for r in api_routes(app.routes)
            if r.path.startswith("/console") for method in sorted(r.methods)]


def calls(d: Dependant) -> Iterator[Any]:
    """Every dependency a route resolves, however deep."""
    for sub in d.dependencies:
        yield sub.call
        yield from calls(sub)


def acts_for_principal(route: APIRoute) -> bool:
    return console_principal in set(calls(route.dependant))


def actions(route: APIRoute) -> list[str]:
    return [c.action for c in calls(route.dependant) if isinstance(c, Allowed)]


def test_every_console_route_but_the_public_ones_depends_on_the_console_principal(
        app: FastAPI) -> None:
    routes = console_routes(app)
    assert len(routes) >= 8  # home, a metric, three data pages, sign-in, sign-out, static
    found = {(m, p) for m, p, _ in routes}
    assert found >= PUBLIC, "a public route is gone: drop it from PUBLIC"
    missing = [(m, p) for m, p, r in routes if (m, p) not in PUBLIC and not acts_for_principal(r)]
    assert missing == []
    assert not any(acts_for_principal(r) for m, p, r in routes if (m, p) in PUBLIC)


def test_the_check_fails_for_a_route_that_forgets_the_principal() -> None:
    router = APIRouter()

    @router.get("/console/forgot")
    def forgot() -> str:
        return "figures"

    @router.get("/console/remembered")
    def remembered(_: ConsolePrincipal) -> str:
        return "figures"

    @router.get("/console/through-an-action")
    def through(_: home.KpiReader) -> str:  # the principal beneath allowed("kpis.read")
        return "figures"

    by_path = {r.path: r for r in router.routes if isinstance(r, APIRoute)}
    assert not acts_for_principal(by_path["/console/forgot"])
    assert acts_for_principal(by_path["/console/remembered"])
    assert acts_for_principal(by_path["/console/through-an-action"])


def test_each_page_names_one_known_role_action(app: FastAPI) -> None:
    for method, path, route in console_routes(app):
        if (method, path) in PUBLIC:
            continue
        named = actions(route)
        if path == "/console/logout":  # any signed-in user may sign out
            assert named == []
            continue
        assert len(named) == 1 and named[0] in roles.POLICY, (method, path, named)
    pages = {p: actions(r) for m, p, r in console_routes(app) if m == "GET"}
    assert pages["/console/"] == ["kpis.read"]
    assert pages["/console/data/quality"] == ["quality.read"]
    assert pages["/console/data/ingest"] == ["ingest.read"]
    assert pages["/console/data/dictionary"] == ["dictionary.read"]


def test_the_navigation_links_pages_that_exist_under_their_own_action(app: FastAPI) -> None:
    pages = {p: actions(r) for m, p, r in console_routes(app) if m == "GET"}
    linked = [pg for s in NAV for pg in s.pages]
    assert len(linked) >= 4
    for pg in linked:
        assert pages.get(pg.path) == [pg.action], pg


def test_console_routes_stay_out_of_the_openapi_document(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert paths and not [p for p in paths if p.startswith("/console")]


def test_the_console_reads_only_through_services() -> None:
    """No SQL in console code: nothing from adapters, no database or engine library."""
    banned = ("caifu.adapters", "sqlalchemy", "duckdb", "ibis", "deltalake", "pyarrow")
    folder = SRC / "web" / "console"
    modules = sorted(folder.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        found = [i.target for i in imports_of(module_name(path), path.read_text("utf-8"),
                                              path.name == "__init__.py")
                 if i.target.startswith(banned)]
        assert found == [], path.name


def test_both_languages_have_every_text_and_the_templates_use_only_known_ones() -> None:
    assert set(LANGS) == set(TEXTS)
    assert set(TEXTS["zh"]) == set(TEXTS["en"])
    used: set[str] = set()
    for path in [*TEMPLATES.glob("*.html"), *(SRC / "web" / "console").glob("*.py")]:
        if path.name != "texts.py":  # a key built with ~ ("role." ~ me.role) is added below
            used |= set(re.findall(r"""\bt(?:ext)?\((?:lang, )?["']([a-z_.]+)["'](?!\s*~)""",
                                   path.read_text("utf-8")))
        # keys named as data (the error and sign-in messages a route picks)
        used |= set(re.findall(r"""["']((?:error|login)\.(?!html)[a-z_]+)["']""",
                               path.read_text("utf-8")))
    used |= {f"role.{r}" for r in roles.ROLES} | {f"drill.{d}" for d in home.DRILLS}
    used |= {pg.key for s in NAV for pg in s.pages} | {s.key for s in NAV}
    assert len(used) > 60
    assert used - set(TEXTS["zh"]) == set()
    # every Chinese text is Chinese (the English one leaked nowhere)
    assert all(re.search(r"[\u4e00-\u9fff]", v) for k, v in TEXTS["zh"].items()
               if k not in ("lang_other",)), [k for k, v in TEXTS["zh"].items()
                                              if not re.search(r"[\u4e00-\u9fff]", v)]
