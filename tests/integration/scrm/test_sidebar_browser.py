"""The sidebar in a real browser: Debian's headless Chromium driven by Playwright at phone
width, signing in through WeCom's OAuth (the authorize page answered by the test, the code
exchanged with the fake WeCom), showing an allowed customer and refusing one the advisor does
not follow. Nothing leaves loopback: every other request is aborted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from caifu.core.levels import mask
from caifu.services.container import Container
from caifu.services.scrm import sidebar as sb
from tests.conftest import chromium
from tests.integration.scrm.test_sidebar import MOBILE, NAME, make_app, new_fake, seed
from tests.serving import serving_socket

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def wecom_router(fake: Any, visits: list[str], authorize: list[str] | None = None
                 ) -> Callable[[Any], None]:
    """A Playwright route handler. Loopback goes through. The sidebar's redirect to WeCom's
    authorize page is answered as WeCom answers inside its client: straight back to
    ``redirect_uri`` with a fresh code for wangxm and the same state. (Playwright does not
    route the hops of a redirect the browser follows itself, so the redirect is taken here.)
    Anything else is aborted. Every request is noted in ``visits``, every authorize URL in
    ``authorize``."""

    def answer(route: Any) -> None:
        url = urlsplit(route.request.url)
        visits.append(f"{url.hostname}{url.path}")
        if url.hostname != "127.0.0.1":
            route.abort()
            return
        if url.path != "/wecom/acme/sidebar":
            route.continue_()
            return
        resp = route.fetch(max_redirects=0)
        where = resp.headers.get("location", "")
        if resp.status != 302 or not where.startswith(sb.OAUTH_AUTHORIZE):
            route.fulfill(response=resp)
            return
        if authorize is not None:
            authorize.append(where)
        q = parse_qs(urlsplit(where).query)
        back = q["redirect_uri"][0] + "?" + urlencode(
            {"code": fake.issue_oauth_code("wangxm"), "state": q["state"][0]})
        route.fulfill(status=302, headers={"Location": back,
                                           "Set-Cookie": resp.headers["set-cookie"]})

    return answer


def test_the_sidebar_in_chromium(sqlite_workspace: Container, tmp_path: Path) -> None:
    executable = chromium("sidebar browser test")
    from playwright.sync_api import sync_playwright

    fake = new_fake()
    seed(sqlite_workspace, fake)
    visits: list[str] = []
    authorize: list[str] = []

    answer = wecom_router(fake, visits, authorize)

    with serving_socket(make_app(sqlite_workspace)) as http, sync_playwright() as pw:
        origin = str(http.base_url).rstrip("/")
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812},
                                          locale="zh-CN")
            context.route("**/*", answer)
            page = context.new_page()
            page.goto(f"{origin}/wecom/acme/sidebar?ctx=wmC1")
            page.wait_for_selector("[data-testid=customer]", timeout=20_000)
            assert len(authorize) == 1 and "appid=" + fake.corp_id in authorize[0]
            assert page.url == f"{origin}/wecom/acme/sidebar?ctx=wmC1"

            text = page.inner_text("body")
            for heading in ("资产与盈亏", "持仓", "亏损持仓", "近期交易", "待办任务",
                            "标签与依据", "推荐内容"):
                assert page.locator("h2", has_text=heading).count() >= 1, heading
            assert page.locator("tr.holding").count() == 3
            assert "宁德时代" in text and "上证50ETF联接" in text
            assert mask("name", NAME) in text and NAME not in text and MOBILE not in text
            assert page.is_visible("#demo-note") and "?ctx=" in page.inner_text("#demo-note")

            shot = tmp_path / "sidebar.png"
            page.screenshot(path=str(shot), full_page=False)
            from PIL import Image

            image = Image.open(shot).convert("L")
            assert image.size == (375, 812)
            lo, hi = image.getextrema()
            assert hi - lo > 100  # text and coloured bars drawn, not a blank page
            histogram = image.histogram()
            assert max(histogram) < 0.97 * sum(histogram)
            assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll

            # outside WeCom "send" shows the compliant text instead of sending it
            page.locator("button.send").first.click()
            sent = page.locator("pre.send-text").first
            assert sent.is_visible() and "市场有风险，投资需谨慎。" in sent.inner_text()

            # a customer he does not follow: the refusal, and nothing of the customer
            page.goto(f"{origin}/wecom/acme/sidebar?ctx=wmC3")
            page.wait_for_selector("[data-testid=denied]", timeout=20_000)
            body = page.inner_text("body")
            assert "无法查看该客户" in body
            assert page.locator("tr.holding").count() == 0
            assert "宁德时代" not in body and "孙三" not in body and mask("name", "孙三") not in body
        finally:
            browser.close()
    assert visits and all(v.startswith("127.0.0.1/") for v in visits)
