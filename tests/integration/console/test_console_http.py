"""The console over HTTP, without a browser: signing in and out, the throttle shared with the
API, CSRF, the redirect to the sign-in page, refusals by role as pages, languages, static files.
The two-tenant workspace of the API tests (acme with one user per role, beta), on SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from caifu.api import create_app
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.platform import sessions
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET, _seed
from tests.serving import serving, wants_socket

FAILURES = 3  # the throttle's limit per user id in these tests


@pytest.fixture
def console(request: pytest.FixtureRequest, workspace: Container
            ) -> Iterator[tuple[httpx.Client, Container]]:
    _seed(workspace)
    settings = Settings(secret_key=SECRET, login_failures_per_user=FAILURES, run_jobs=False,
                        run_events=False)
    with serving(create_app(settings, workspace), wants_socket(request)) as http:
        yield http, workspace


def login_form(http: httpx.Client, path: str = "/console/login") -> str:
    """The sign-in form's CSRF token (its nonce cookie is now in the client)."""
    r = http.get(path)
    assert r.status_code == 200, r.text
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', r.text)
    assert m, r.text
    return m.group(1)


def sign_in(http: httpx.Client, user: str, password: str = PASSWORD,
            next_: str = "/console/") -> httpx.Response:
    token = login_form(http)
    return http.post("/console/login", data={"user_id": user, "password": password,
                                             "csrf": token, "next": next_})


def page_csrf(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', html)
    assert m, html[:500]
    return m.group(1)


@pytest.mark.real_socket
def test_sign_in_sets_a_strict_http_only_session_cookie_and_goes_on(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    r = http.get("/console/data/ingest", params={"x": "1"})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fdata%2Fingest%3Fx%3D1"
    r = sign_in(http, "acme.ops", next_="/console/data/ingest?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/console/data/ingest?x=1"
    cookie = [c for c in r.headers.get_list("set-cookie") if c.startswith("caifu_console=")]
    assert len(cookie) == 1
    attrs = {a.strip().split("=")[0].lower() for a in cookie[0].split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attrs and "secure" not in attrs
    assert "samesite=strict" in cookie[0].lower() and "path=/console" in cookie[0].lower()
    token = cookie[0].split(";")[0].split("=", 1)[1]
    p = sessions.read(SECRET, token)
    assert p == Principal("acme", "acme.ops", "ops")
    r = http.get("/console/")
    assert r.status_code == 200 and "acme.ops" in r.text and "运营" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_a_wrong_password_is_refused_and_failures_are_throttled_with_the_api(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    r = sign_in(http, "acme.ops", "not the password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert not any(c.startswith("caifu_console=") for c in r.headers.get_list("set-cookie"))
    assert http.get("/console/").status_code == 303
    # the API's sign-in counts against the same throttle
    for _ in range(FAILURES - 1):
        assert http.post("/v1/auth/login", json={"user_id": "acme.ops",
                                                 "password": "wrong-again"}).status_code == 401
    r = sign_in(http, "acme.ops")  # the right password, too late
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "登录失败次数过多" in r.text and r.headers["retry-after"] in r.text
    assert http.get("/console/").status_code == 303
    assert http.post("/v1/auth/login", json={"user_id": "acme.ops",
                                             "password": PASSWORD}).status_code == 429
    # another user is not held back by acme.ops's failures
    assert sign_in(http, "acme.admin").status_code == 303


def test_state_changes_need_the_csrf_token(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    # the sign-in form: without its token, or with a token of another nonce
    login_form(http)
    r = http.post("/console/login", data={"user_id": "acme.ops", "password": PASSWORD})
    assert r.status_code == 403 and "登录表单已过期" in r.text
    r = http.post("/console/login", data={"user_id": "acme.ops", "password": PASSWORD,
                                          "csrf": "0" * 64})
    assert r.status_code == 403
    assert sign_in(http, "acme.ops").status_code == 303
    home = http.get("/console/")
    token = page_csrf(home.text)
    # sign-out without the token is refused and the session lives on
    r = http.post("/console/logout")
    assert r.status_code == 403 and "安全令牌" in r.text
    r = http.post("/console/logout", data={"csrf": "f" * 64})
    assert r.status_code == 403
    assert http.get("/console/").status_code == 200
    # with it (as a form field, or as the header htmx sends) the cookie is cleared
    r = http.post("/console/logout", headers={"X-CSRF-Token": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    cleared = [c for c in r.headers.get_list("set-cookie") if c.startswith("caifu_console=")]
    assert cleared and "max-age=0" in cleared[0].lower()
    assert http.get("/console/").status_code == 303


def test_a_forged_or_expired_session_goes_to_the_sign_in_page(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    p = Principal("acme", "acme.ops", "ops")
    import datetime as dt

    forged = sessions.issue("another-secret-0123456789abcdefghijklmnopq", p, 60)
    old = sessions.issue(SECRET, p, 1, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    for token in (forged, old, "ct_garbage", "cf_not_a_session"):
        r = http.get("/console/", headers={"Cookie": f"caifu_console={token}"})
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login"), token
    # an htmx request is told where to go instead of being handed the form
    r = http.get("/console/metrics/aum", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["hx-redirect"].startswith("/console/login")


def test_only_console_paths_are_followed_after_sign_in(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    for target in ("https://evil.example.com/", "//evil.example.com/console/", "/v1/jobs",
                   "/console\\..\\x"):
        http.cookies.clear()
        r = sign_in(http, "acme.ops", next_=target)
        assert r.status_code == 303 and r.headers["location"] == "/console/", target


def test_each_role_sees_the_pages_its_actions_allow(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    assert sign_in(http, "acme.advisor").status_code == 303
    home = http.get("/console/")
    assert home.status_code == 200
    assert "/console/data/dictionary" in home.text and "/console/data/quality" not in home.text
    assert "投顾 TG00001" in home.text  # his scope, named
    r = http.get("/console/data/quality")
    assert r.status_code == 403 and "您的角色无权查看此页面" in r.text
    assert "a advisor may not see data quality" in r.text or "may not see data quality" in r.text
    assert http.get("/console/data/ingest").status_code == 403
    assert http.get("/console/data/dictionary").status_code == 200
    # a tenant-wide metric: the definition, and why no figure
    r = http.get("/console/metrics/quarantine_rate")
    assert r.status_code == 403 and "全租户口径" in r.text and "tenant-wide figure" in r.text
    assert 'data-testid="definition"' in r.text and 'data-testid="figures"' not in r.text

    http.cookies.clear()
    assert sign_in(http, "root.admin").status_code == 303
    r = http.get("/console/")
    assert r.status_code == 403 and "您的角色无权查看此页面" in r.text
    assert 'class="num"' not in r.text and "root.admin · 平台管理员 · 无客户数据" in r.text
    assert "/console/data/" not in r.text  # no page of the navigation is his


def test_bad_parameters_and_unknown_metrics_are_pages_with_the_reason(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    sign_in(http, "acme.ops")
    r = http.get("/console/", params={"to": "2026-13-01"})
    assert r.status_code == 422 and "请求参数有误" in r.text and "to" in r.text
    r = http.get("/console/metrics/aun")
    assert r.status_code == 422 and "did you mean aum" in r.text
    r = http.get("/console/metrics/aum", params={"by": "nothing"})
    assert r.status_code == 422 and "unknown dimension 'nothing'" in html.unescape(r.text)


def test_english_on_request_and_kept_in_a_cookie(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    sign_in(http, "acme.ops")
    r = http.get("/console/", params={"lang": "en"})
    assert r.status_code == 200 and "Key figures" in r.text and "核心指标" not in r.text
    assert '<html lang="en">' in r.text
    assert "Key figures" in http.get("/console/").text  # the cookie keeps it
    assert "核心指标" in http.get("/console/", params={"lang": "zh"}).text


def test_a_cut_is_a_fragment_for_htmx(console) -> None:  # type: ignore[no-untyped-def]
    http, _ = console
    sign_in(http, "acme.ops")
    whole = http.get("/console/metrics/customers_total", params={"by": "branch"})
    part = http.get("/console/metrics/customers_total", params={"by": "branch"},
                    headers={"HX-Request": "true"})
    assert whole.status_code == part.status_code == 200
    assert part.text.lstrip().startswith('<section id="figures"') and "<html" not in part.text
    assert part.text.strip() in whole.text.replace(page_csrf(whole.text), "")


def test_static_files_are_the_vendored_ones_and_public(console) -> None:  # type: ignore[no-untyped-def]
    from caifu.web.console.pages import ASSETS, VERSIONS, asset

    http, _ = console
    r = http.get(asset("echarts.min.js"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "immutable" in r.headers["cache-control"]
    folder, _ = ASSETS["echarts.min.js"]
    assert r.content == (folder / "echarts.min.js").read_bytes()
    assert VERSIONS["htmx.min.js"] in asset("htmx.min.js")
    assert http.get("/console/static/htmx.min.js").headers["cache-control"] == "no-cache"
    assert http.get("/console/static/..%2Fsettings.py").status_code == 404
    assert http.get("/console/static/LICENSE.echarts").status_code == 404
