"""A risk alert in the sidebar in a real browser (Debian's headless Chromium via Playwright,
the setup of ``test_sidebar_browser``): the chat customer's alert is shown, "确认知悉" moves
its task (the section re-rendered, the move audited), a customer who holds nothing has no
section. Nothing leaves loopback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import audit_log
from caifu.adapters.sor.risk_models import risk_tasks
from caifu.services.container import Container
from tests.conftest import chromium
from tests.integration.scrm.test_sidebar import make_app, new_fake, seed
from tests.integration.scrm.test_sidebar_browser import ARGS, wecom_router
from tests.integration.scrm.test_sidebar_risk import TITLE, seed_risk, task_of
from tests.serving import serving_socket

pytestmark = pytest.mark.slow  # a browser: `-m "not slow"` skips it


def test_a_risk_alert_acknowledged_in_chromium(sqlite_workspace: Container) -> None:
    executable = chromium("sidebar risk browser test")
    from playwright.sync_api import sync_playwright

    c = sqlite_workspace
    fake = new_fake()
    seed(c, fake)
    seed_risk(c)
    task = task_of(c, "C1")
    visits: list[str] = []

    answer = wecom_router(fake, visits)  # as in test_sidebar_browser

    with serving_socket(make_app(c)) as http, sync_playwright() as pw:
        origin = str(http.base_url).rstrip("/")
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812},
                                          locale="zh-CN")
            context.route("**/*", answer)
            page = context.new_page()
            page.goto(f"{origin}/wecom/acme/sidebar?ctx=wmC1")
            page.wait_for_selector("[data-testid=customer]", timeout=20_000)

            alert = page.locator("[data-testid=risk-alert]")
            assert alert.count() == 1 and alert.get_attribute("data-task") == task
            text = alert.inner_text()
            for shown in ("宁德时代", "300750", "立案调查", TITLE, "1 处公开来源", "98,400.00",
                          "-11,600.00", "500 股"):
                assert shown in text, shown
            assert page.inner_text("[data-testid=risk-task-status]") == "待处理"
            assert page.evaluate("document.documentElement.scrollWidth") <= 375

            # the message: outside WeCom "send" shows the text that would go out
            alert.locator("button.send").click()
            assert "不构成投资建议" in alert.locator("pre.send-text").inner_text()

            alert.locator("button.risk-step[data-status=acknowledged]").click()
            page.locator("[data-testid=risk-task-status]", has_text="已确认").wait_for(
                timeout=10_000)  # the section re-rendered by the server's answer
            assert page.inner_text("[data-testid=risk-task-status]") == "已确认"
            assert page.locator("button.risk-step[data-status=contacted]").count() == 1
            assert page.locator("[data-testid=risk-error]").count() == 0

            # a customer who holds nothing: no risk section at all
            page.goto(f"{origin}/wecom/acme/sidebar?ctx=wmC5")
            page.wait_for_selector("[data-testid=customer]", timeout=20_000)
            assert page.locator("[data-testid=risk]").count() == 0
            assert "风险提示" not in page.inner_text("body")
        finally:
            browser.close()
    assert visits and all(v.startswith("127.0.0.1/") for v in visits)
    with c.engine.connect() as conn:
        status = conn.execute(select(risk_tasks.c.status).where(
            risk_tasks.c.task_id == task)).scalar_one()
        moves = conn.execute(select(audit_log.c.actor, audit_log.c.customer_ids_json,
                                    audit_log.c.reason)
                             .where(audit_log.c.action == "risk_task")).all()
    assert status == "acknowledged"
    assert [(a, json.loads(ids), r) for a, ids, r in moves] == [
        ("wecom:wangxm", ["C1"], f"task {task}: open → acknowledged")]
