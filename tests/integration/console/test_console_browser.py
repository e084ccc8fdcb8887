"""The console in a real browser: Debian's headless Chromium driven by Playwright against the
service on a loopback socket, on the small demo broker (600 customers) plus an empty tenant.

Signed in through the form as each user, the pages must show the metric layer's own numbers —
every figure of the home page equals ``GET /v1/metrics/{name}`` for the same user and range,
an advisor's are his customers' (and differ from the tenant's), another tenant's user sees none
of them — render Chinese on a non-blank page, fit 1366×768 and a 390×844 phone without
sideways scrolling, and the data pages show the real rows of the quality and ingest services.
Nothing leaves loopback (every other request is aborted and counted), and no page logs a
script error or a Content-Security-Policy violation.

``CAIFU_CONSOLE_SCREENSHOTS=docs/img`` also writes the screenshots there (docs/console.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, or_, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.api import create_app
from caifu.services.container import Container
from caifu.services.metrics.board import HEADLINE
from caifu.services.platform import users
from caifu.services.platform.workspace import create_tenant
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET
from tests.conftest import Broker, chromium
from tests.serving import serving_socket

pytestmark = pytest.mark.slow  # a demo broker and a browser: `-m "not slow"` skips it

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
END = "2026-10-31"  # the demo broker's history ends 2026-10-30
RANGE = {"from": "2025-11-01", "to": END}
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    origin: str
    http: httpx.Client
    c: Container
    browser: Any
    advisor: str
    tokens: dict[str, dict[str, str]]
    outside: list[str] = field(default_factory=list)  # requests that tried to leave loopback
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions


@pytest.fixture(scope="module")
def site(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    executable = chromium("console browser test")
    from playwright.sync_api import sync_playwright

    c = small_broker.copy(tmp_path_factory.mktemp("console") / "ws")
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        advisor = conn.execute(select(t.c.advisor_id).where(
            t.c.tenant_id == "acme", t.c.advisor_id.is_not(None)).group_by(t.c.advisor_id)
            .order_by(func.count().desc()).limit(1)).scalar_one()
    users.add_user(c, "con.ops", "ops", PASSWORD, tenant="acme")
    users.add_user(c, "con.adv", "advisor", PASSWORD, tenant="acme", advisor_id=advisor)
    users.add_user(c, "con.root", "platform_admin", PASSWORD, tenant=None)
    create_tenant(c, "beta", "丙丁证券")
    users.add_user(c, "beta.ops", "ops", PASSWORD, tenant="beta")
    app = create_app(Settings(secret_key=SECRET, run_jobs=False, run_events=False), c)
    with serving_socket(app) as http, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        tokens = {}
        for user in ("con.ops", "con.adv", "beta.ops"):
            r = http.post("/v1/auth/login", json={"user_id": user, "password": PASSWORD})
            assert r.status_code == 200, r.text
            tokens[user] = {"Authorization": f"Bearer {r.json()['token']}"}
        s = Site(str(http.base_url).rstrip("/"), http, c, browser, advisor, tokens)
        try:
            yield s
        finally:
            browser.close()
    c.close()


@contextmanager
def signed_in(site: Site, user: str | None, viewport: dict[str, int] = DESKTOP
              ) -> Iterator[Any]:
    """A fresh browser context (no cookies) with a page signed in as ``user`` through the
    form; ``None``: not signed in."""
    context = site.browser.new_context(viewport=viewport, locale="zh-CN")
    # a page's first figures compile their metrics' SQL: on a busy two-core machine (the
    # suite's other worker, a Spark job) that can pass Playwright's 30 s default
    context.set_default_timeout(90_000)
    context.set_default_navigation_timeout(90_000)

    def route(r: Any) -> None:
        if urlsplit(r.request.url).hostname != "127.0.0.1":
            site.outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    # an error status is asserted where it is expected; anything else logged is a fault
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource: the server responded with a status of")
        and site.errors.append(m.text))
    page.on("pageerror", lambda e: site.errors.append(str(e)))
    try:
        if user is not None:
            page.goto(f"{site.origin}/console/login")
            page.fill("input[name=user_id]", user)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{site.origin}/console/")
        yield page
    finally:
        context.close()


def visit(site: Site, page: Any, path: str) -> Any:
    resp = page.goto(site.origin + path)
    page.wait_for_load_state("load")
    return resp


def charts_drawn(page: Any) -> None:
    page.wait_for_function("""() => Array.from(document.querySelectorAll('[data-chart]'))
        .every(el => el.querySelector('svg'))""", timeout=90_000)


CELLS = """() => Array.from(document.querySelectorAll(
    'table[data-testid=months] td[data-period] a.num')).map(a => ({
        metric: a.dataset.metric, period: a.closest('td').dataset.period,
        value: a.dataset.value, withheld: a.dataset.withheld === '1',
        text: a.textContent.trim()}))"""


def api_rows(site: Site, user: str, metric: str, **params: str) -> dict[Any, dict[str, Any]]:
    r = site.http.get(f"/v1/metrics/{metric}", params={**RANGE, **params},
                      headers=site.tokens[user])
    assert r.status_code == 200, r.text
    by = params.get("by")
    return {(row[by] if by else row["period"]): row for row in r.json()["rows"]}


def as_text(v: Any) -> str:
    return "" if v is None else str(v)


def shown(v: Any, fmt: str) -> str:
    """How a person reads the value, written here independently of the page's code."""
    if fmt == "count":
        return f"{int(v):,}"
    if fmt == "money":
        return f"{Decimal(str(v)):,.2f}"
    return f"{100 * float(v):.2f}%"


def reconcile(site: Site, user: str, cells: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Every cell against the API's answer for ``user``; the values by (metric, period)."""
    formats = {m["name"]: m["format"] for m in site.http.get(
        "/v1/metrics", headers=site.tokens[user]).json()["metrics"]}
    assert {x["metric"] for x in cells} == set(HEADLINE)
    assert len(cells) == 12 * len(HEADLINE)
    out = {}
    for name in HEADLINE:
        want = api_rows(site, user, name)
        mine = [x for x in cells if x["metric"] == name]
        assert [x["period"] for x in mine] == sorted(x["period"] for x in mine)
        for x in mine:
            row = want.get(x["period"])
            where = (user, name, x["period"], x, row)
            if row is not None and row["suppressed"]:
                assert x["withheld"] and x["value"] == "" and x["text"] == "不予显示", where
                out[(name, x["period"])] = "withheld"
                continue
            value = None if row is None else row["value"]
            assert not x["withheld"] and x["value"] == as_text(value), where
            assert x["text"] == ("—" if value is None else shown(value, formats[name])), where
            out[(name, x["period"])] = value
    return out


def alive_customers(c: Container, advisor: str | None = None) -> int:
    """Customers opened by the end and not closed by then (an advisor's: assigned to him or
    following him on WeCom), counted on the system of record — not by the metric layer."""
    t, f = CONTRACT_TABLES["customers"], CONTRACT_TABLES["wecom_follows"]
    q = select(func.count()).select_from(t).where(
        t.c.tenant_id == "acme", t.c.opened_on <= END,
        or_(t.c.closed_on.is_(None), t.c.closed_on > END))
    if advisor is not None:
        follows = select(f.c.customer_id).where(f.c.tenant_id == "acme",
                                                f.c.advisor_id == advisor,
                                                f.c.status == "active")
        q = q.where(or_(t.c.advisor_id == advisor, t.c.customer_id.in_(follows)))
    with c.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def not_blank(path: Path, size: tuple[int, int]) -> None:
    from PIL import Image

    image = Image.open(path).convert("L")
    assert image.size == size
    lo, hi = image.getextrema()
    assert hi - lo > 100  # text and charts drawn
    histogram = image.histogram()
    assert max(histogram) < 0.95 * sum(histogram)


def keep_screenshot(path: Path, name: str) -> None:
    folder = os.environ.get("CAIFU_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / name)


def no_sideways_scroll(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate("document.body.scrollWidth") <= width


# --- tests ---------------------------------------------------------------------------------


def test_sign_in_in_the_browser_refuses_a_wrong_password(site: Site) -> None:
    with signed_in(site, None) as page:
        page.goto(f"{site.origin}/console/data/quality")
        assert urlsplit(page.url).path == "/console/login"  # 303 to the form
        page.fill("input[name=user_id]", "con.ops")
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=login-error]")
        assert "用户名或密码错误" in page.inner_text("[data-testid=login-error]")
        assert not [c for c in page.context.cookies() if c["name"] == "caifu_console"]
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{site.origin}/console/data/quality")  # back where he was going
        [cookie] = [c for c in page.context.cookies() if c["name"] == "caifu_console"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/console"
        assert page.evaluate("document.cookie").find("caifu_console=") == -1  # HttpOnly
        # sign out: the form carries the CSRF token; afterwards pages send him to sign in
        page.click("header form button[type=submit]")
        page.wait_for_url(f"{site.origin}/console/login")
        page.goto(f"{site.origin}/console/")
        assert urlsplit(page.url).path == "/console/login"


def test_home_figures_are_the_apis_for_the_same_user_and_range(site: Site,
                                                             tmp_path: Path) -> None:
    with signed_in(site, "con.ops") as page:
        visit(site, page, f"/console/?to={END}")
        charts_drawn(page)
        assert page.locator("[data-testid=tile]").count() == len(HEADLINE)
        values = reconcile(site, "con.ops", page.evaluate(CELLS))
        # one figure checked against the system of record itself, not the metric layer
        assert values[("customers_total", "2026-10-01")] == alive_customers(site.c) > 0
        # each tile's big number is the newest month's and links to the definition
        tile = page.locator("[data-testid=tile][data-metric=aum] .big a.num")
        assert tile.get_attribute("data-value") == as_text(values[("aum", "2026-10-01")])
        assert tile.get_attribute("href").startswith("/console/metrics/aum")
        links = page.evaluate("""() => Array.from(document.querySelectorAll('a.num'))
            .map(a => a.getAttribute('href'))""")
        assert links and all(h.startswith("/console/metrics/") for h in links)
        text = page.inner_text("body")
        for label in ("核心指标", "客户总数", "证券资产规模（AUM）", "按营业部", "数据字典"):
            assert label in text, label
        shot = tmp_path / "console-home.png"
        page.screenshot(path=str(shot))
        not_blank(shot, (1366, 768))
        keep_screenshot(shot, "console-home.png")
        no_sideways_scroll(page, 1366)
    assert site.outside == [] and site.errors == []


def test_an_advisor_sees_his_customers_figures_only(site: Site) -> None:
    with signed_in(site, "con.ops") as page:
        visit(site, page, f"/console/?to={END}")
        tenant = reconcile(site, "con.ops", page.evaluate(CELLS))
    with signed_in(site, "con.adv") as page:
        visit(site, page, f"/console/?to={END}")
        assert f"投顾 {site.advisor}" in page.inner_text("[data-testid=who]")
        mine = reconcile(site, "con.adv", page.evaluate(CELLS))
        assert mine[("customers_total", "2026-10-01")] == alive_customers(site.c, site.advisor)
        assert 0 < mine[("customers_total", "2026-10-01")] < tenant[("customers_total",
                                                                       "2026-10-01")]
        differ = [k for k in mine if mine[k] != tenant[k] and mine[k] != "withheld"]
        assert len(differ) > 20
        # a tenant-wide figure: a clear refusal, not an error
        resp = visit(site, page, "/console/metrics/quarantine_rate")
        assert resp.status == 403
        refusal = page.inner_text("[data-testid=refusal]")
        assert "全租户口径" in refusal and "tenant-wide" in refusal
        assert page.locator("[data-testid=definition]").count() == 1
        assert page.locator("a.num").count() == 0
        # and the operational pages are not his
        assert visit(site, page, "/console/data/ingest").status == 403
        assert "您的角色无权查看此页面" in page.inner_text("main")
        nav = page.inner_text("header nav")
        assert "数据字典" in nav and "数据质量" not in nav and "导入日志" not in nav
    assert site.outside == [] and site.errors == []


def test_drill_down_by_branch_then_advisor_matches_the_api(site: Site) -> None:
    with signed_in(site, "con.ops") as page:
        visit(site, page, f"/console/?to={END}")
        page.click("[data-testid=tile][data-metric=customers_total] .drills >> text=按营业部")
        page.wait_for_url("**/console/metrics/customers_total?by=branch*")
        charts_drawn(page)
        want = api_rows(site, "con.ops", "customers_total", by="branch", grain="all")
        got = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=figures] tr[data-group]')).map(tr => [tr.dataset.group,
            tr.querySelector('a.num').dataset.value])""")
        assert len(got) == len(want) > 1
        assert dict(got) == {g: as_text(r["value"]) for g, r in want.items()}
        # another cut through htmx: the section swapped, the address pushed, no reload
        page.evaluate("window.__same_document = true")
        page.click("nav.cuts >> text=服务投顾")
        page.wait_for_selector("[data-testid=figures][data-by=advisor]")
        assert page.evaluate("window.__same_document") is True
        assert "by=advisor" in page.url
        charts_drawn(page)
        want = api_rows(site, "con.ops", "customers_total", by="advisor", grain="all")
        got = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=figures] tr[data-group]')).map(tr => [tr.dataset.group,
            tr.querySelector('a.num').dataset.value])""")
        assert dict(got) == {("" if g is None else g): as_text(r["value"])
                                          for g, r in want.items()}
    assert site.outside == [] and site.errors == []


def test_a_metric_page_shows_its_definition_and_lineage(site: Site) -> None:
    listing = {m["name"]: m for m in site.http.get(
        "/v1/metrics", headers=site.tokens["con.ops"]).json()["metrics"]}
    with signed_in(site, "con.ops") as page:
        visit(site, page, f"/console/metrics/aum?to={END}")
        aum = listing["aum"]
        assert page.inner_text("[data-testid=version]") == str(aum["version"])
        assert page.inner_text("[data-testid=hash]") == aum["definition_hash"]
        assert page.inner_text("[data-testid=level]") == str(aum["level"])
        assert page.inner_text("[data-testid=owner]") == aum["owner"] == "wealth-ops"
        dims = page.inner_text("[data-testid=dimensions]")
        assert all(d in dims for d in aum["dimensions"])
        # SUM(market_value) over positions: its value comes from that contract column
        sources = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=lineage] .edge')).map(e => e.dataset.source)""")
        assert "positions.market_value" in sources and "positions.snapshot_date" in sources
        by_month = api_rows(site, "con.ops", "aum")
        got = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=figures] td[data-period] a.num')).map(a => [
            a.closest('td').dataset.period, a.dataset.value])""")
        assert len(got) == 12
        assert set(by_month) <= {p for p, _ in got}  # a month without data has no row
        assert dict(got) == {
            p: as_text(by_month[p]["value"]) if p in by_month else "" for p, _ in got}
        assert sum(v != "" for _, v in got) >= 4
        # a column of the lineage leads to the dictionary
        page.click("[data-testid=lineage] .edge[data-source='positions.market_value'] a")
        page.wait_for_url("**/console/data/dictionary#t-positions")
        assert page.locator("details#t-positions tr[data-column=market_value]").count() == 1
    assert site.outside == [] and site.errors == []


def test_another_tenants_user_sees_nothing_of_this_tenant(site: Site) -> None:
    with signed_in(site, "con.ops") as page:
        visit(site, page, f"/console/?to={END}")
        acme = {x["value"] for x in page.evaluate(CELLS)} - {""}
    assert len(acme) > 20
    with signed_in(site, "beta.ops") as page:
        visit(site, page, f"/console/?to={END}")
        cells = page.evaluate(CELLS)
        assert len(cells) == 12 * len(HEADLINE)
        assert all(x["value"] == "" or Decimal(x["value"]) == 0 for x in cells), cells
        assert reconcile(site, "beta.ops", cells)  # still the API's answer for beta
        visit(site, page, f"/console/metrics/customers_total?by=advisor&to={END}")
        assert page.locator("[data-testid=figures] tr[data-group]").count() == 0
        assert site.advisor not in page.inner_text("body")
        for path in ("/console/data/ingest", "/console/data/quality"):
            visit(site, page, path)
            body = page.inner_text("main")
            assert "customers" not in body and ".csv" not in body, path  # acme's loads
    with signed_in(site, "con.root") as page:
        resp = visit(site, page, "/console/")
        assert resp.status == 403 and page.locator("a.num").count() == 0
        assert "您的角色无权查看此页面" in page.inner_text("main")
    assert site.outside == [] and site.errors == []


def test_chinese_renders_with_a_cjk_font(site: Site, tmp_path: Path) -> None:
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    assert "Noto Sans CJK SC" in fonts.stdout, "install fonts-noto-cjk: Chinese would be boxes"
    with signed_in(site, "con.ops") as page:
        visit(site, page, "/console/data/quality")
        charts_drawn(page)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        title = page.locator("h1")
        assert title.inner_text() == "数据质量"
        assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '数据质量')")
        # the heading is drawn with glyphs of its own width, not one fallback box per character
        box = title.bounding_box()
        assert box is not None and box["width"] > 3 * box["height"] * 0.8
        shot = tmp_path / "quality.png"
        page.screenshot(path=str(shot))
        not_blank(shot, (1366, 768))
        keep_screenshot(shot, "console-quality.png")
        # English on request
        visit(site, page, "/console/data/quality?lang=en")
        assert page.locator("h1").inner_text() == "Data quality"
    assert site.outside == [] and site.errors == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366x768", "390x844"])
def test_every_page_fits_the_screen(site: Site, viewport: dict[str, int],
                                    tmp_path: Path) -> None:
    with signed_in(site, "con.ops", viewport) as page:
        for path in (f"/console/?to={END}", f"/console/metrics/aum?by=advisor&to={END}",
                     "/console/metrics/net_inflow", "/console/data/dictionary",
                     "/console/data/quality", "/console/data/ingest", "/console/login"):
            resp = visit(site, page, path)
            assert resp.status == 200, path
            if page.locator("[data-chart]").count():
                charts_drawn(page)
            no_sideways_scroll(page, viewport["width"])
        if viewport == PHONE:
            visit(site, page, f"/console/?to={END}")
            charts_drawn(page)
            shot = tmp_path / "phone.png"
            page.screenshot(path=str(shot))
            not_blank(shot, (390, 844))
            keep_screenshot(shot, "console-home-phone.png")
    assert site.outside == [] and site.errors == []


def test_the_data_pages_show_the_services_rows(site: Site) -> None:
    ops = site.tokens["con.ops"]
    quality = site.http.get("/v1/quality", headers=ops).json()
    batches = site.http.get("/v1/ingest/batches", params={"limit": 100}, headers=ops).json()
    dictionary = site.http.get("/v1/dictionary", headers=ops).json()
    assert quality["tables"] and batches["items"]
    with signed_in(site, "con.ops") as page:
        visit(site, page, "/console/data/quality")
        charts_drawn(page)
        rows = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=status] tr[data-table]')).map(tr => [tr.dataset.table,
            tr.children[1].textContent.trim()])""")
        assert dict(rows) == {t["table"]: t["newest_date"] or "—"
                                           for t in quality["tables"]}
        visit(site, page, "/console/data/ingest")
        rows = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid=batches] tr[data-batch]')).map(tr => ({batch: tr.dataset.batch,
            rows_in: tr.querySelector('[data-col=rows_in]').textContent,
            quarantined: tr.querySelector('[data-col=quarantined]').textContent}))""")
        assert [r["batch"] for r in rows] == [b["batch_id"] for b in batches["items"]]
        for r, b in zip(rows, batches["items"], strict=True):
            assert (r["rows_in"], r["quarantined"]) == (f"{b['rows_in']:,}",
                                                       f"{b['quarantined']:,}")
        assert sum(b["rows_in"] for b in batches["items"]) > 10_000  # the broker's loads
        visit(site, page, "/console/data/dictionary")
        tables = page.evaluate("""() => Array.from(document.querySelectorAll(
            'details[data-table]')).map(d => [d.dataset.table,
            d.querySelectorAll('tr[data-column]').length])""")
        assert dict(tables) == {t["name"]: len(t["columns"])
                                             for t in dictionary["tables"]}
        assert len(tables) >= 18
    assert site.outside == [] and site.errors == []
