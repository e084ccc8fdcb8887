"""The sidebar's ranked recommendations in a real browser (Debian's headless Chromium via
Playwright, the setup of ``test_sidebar_browser``), inside a stand-in for WeCom's client (a
``ww`` object injected before the page runs, as the WeCom JS-SDK provides it): the ranked
items with their reasons; "发送到聊天" sends through ``ww.sendChatMessage`` and is stamped
sent, "不合适" dismissed (both audited); an assessment with a lower level made after the
list was published takes the unsuitable item off the page at once. Nothing leaves loopback."""

from __future__ import annotations

import datetime as dt

import pytest

from caifu.adapters.sor.repos import recommend as repo
from caifu.services.compliance import audit
from caifu.services.container import Container
from tests.conftest import chromium
from tests.integration.recommend.world import assess
from tests.integration.scrm.test_sidebar import make_app, new_fake, seed
from tests.integration.scrm.test_sidebar_browser import ARGS, wecom_router
from tests.integration.scrm.test_sidebar_recommend import RANKED, publish_for_c1
from tests.serving import serving_socket

pytestmark = pytest.mark.slow  # a browser: `-m "not slow"` skips it

# what the WeCom client gives the page: the chat's contact, and a send that succeeds
WECOM = """
window.__sent = [];
window.ww = {
  register: function () {},
  getCurExternalContact: function () { return Promise.resolve({ userId: "wmC1" }); },
  sendChatMessage: function (msg) { window.__sent.push(msg.text.content); return Promise.resolve({}); }
};
"""
TITLES = {"N4": "创业板成长股四季度展望", "N1": "宁德时代三季报点评：盈利修复",
          "A:subscribe_level2": "订阅 Level-2 深度行情", "N3": "货币基金与国债逆回购入门"}


def test_ranked_recommendations_in_chromium(sqlite_workspace: Container) -> None:
    executable = chromium("sidebar recommendations browser test")
    from playwright.sync_api import expect, sync_playwright

    c = sqlite_workspace
    fake = new_fake()
    seed(c, fake)
    publish_for_c1(c)
    visits: list[str] = []

    with serving_socket(make_app(c)) as http, sync_playwright() as pw:
        origin = str(http.base_url).rstrip("/")
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812},
                                          locale="zh-CN")
            context.route("**/*", wecom_router(fake, visits))
            context.add_init_script(WECOM)
            page = context.new_page()
            page.goto(f"{origin}/wecom/acme/sidebar")
            page.wait_for_selector("[data-testid=ranked]", timeout=20_000)
            assert not page.is_visible("#demo-note")  # inside "WeCom": no ?ctx= needed

            items = page.locator("[data-testid=rec-item]")
            assert [items.nth(i).locator("b").inner_text() for i in range(items.count())] == [
                TITLES[x["item_id"]] for x in RANKED]
            reasons = page.locator("[data-testid=rec-reason]")
            assert [reasons.nth(i).inner_text() for i in range(reasons.count())] == [
                x["reason"] for x in RANKED]
            assert page.evaluate("document.documentElement.scrollWidth") <= 375

            # send the third (the action) through WeCom; dismiss the fourth
            items.nth(2).locator("button.send").click()
            expect(items.nth(2).locator("button.send")).to_have_text("已发送", timeout=10_000)
            sent = page.evaluate("window.__sent")
            assert len(sent) == 1 and sent[0].startswith("【服务】订阅 Level-2 深度行情")
            assert "市场有风险，投资需谨慎。" in sent[0] and "执业编号 S0010120080012" in sent[0]
            items.nth(3).locator("button.rec-dismiss").click()
            page.wait_for_selector("li.dismissed[data-rec]", timeout=10_000)
            with c.engine.connect() as conn:
                log = {r.item_id: r for r in repo.log_rows(conn, "acme", "C1")}
            assert log["A:subscribe_level2"].sent_at is not None
            assert log["N3"].dismissed_at is not None and log["N3"].sent_at is None
            assert log["N4"].sent_at is None and log["N4"].dismissed_at is None
            assert [r.entry.action for r in audit.records(c, "acme")
                    if r.entry.action.startswith("recommend_")] == ["recommend_send",
                                                                   "recommend_dismiss"]

            # this morning the customer was assessed again, one level lower
            assess(c, "acme", "S1-today", "C1", "C2", on=dt.date.today())
            page.reload()
            page.wait_for_selector("[data-testid=recommended]", timeout=20_000)
            shown = page.locator("[data-testid=rec-item] b")
            assert [shown.nth(i).inner_text() for i in range(shown.count())] == [TITLES["N1"]]
            body = page.inner_text("body")
            assert TITLES["N4"] not in body
            assert "另有 1 条推荐因客户或产品信息变化" in page.inner_text("[data-testid=rec-refused]")
            assert "已发送或标记不合适的 2 条推荐暂不重复列出" in body
        finally:
            browser.close()
    assert visits and all(v.startswith("127.0.0.1/") for v in visits)
