"""Risk alerts in the WeCom sidebar over HTTP: the chat customer's open alert with its story,
evidence, position, message and task; the task moved one step from the sidebar (audited, the
same workflow as the API); another customer's task refused like another customer; consent
read again; nothing shown for a customer who holds nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import insert, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES, audit_log
from caifu.adapters.sor.risk_models import risk_task_events, risk_tasks
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.risk.tasks import list_tasks
from caifu.services.scrm import sidebar as sb
from tests.integration.risk.holdings import hold, raise_story
from tests.integration.scrm.test_sidebar import make_app, new_fake, seed, sign_in
from tests.serving import serving, wants_socket

TITLE = "宁德时代收到中国证监会立案告知书"
OPS = Principal("acme", "ops.li", "ops")


def seed_risk(c: Container) -> str:
    """On top of ``test_sidebar.seed``: C5, a customer wangxm follows who holds nothing; C1
    (wangxm's chat), C3 (lina's) and C4 (storage only) hold 宁德时代; the story raised — C4
    not alerted (storage only: nobody is asked to contact him). The story id."""
    T = CONTRACT_TABLES
    with c.engine.begin() as conn:
        conn.execute(insert(T["customers"]).values(
            tenant_id="acme", customer_id="C5", name="周五", customer_type="individual",
            id_type="passport", id_number="E5512345", mobile="13900000005",
            branch_id="YYB001", advisor_id="TG00001", opened_on=dt.date(2024, 1, 2),
            channel="app", status="normal"))
        conn.execute(insert(T["wecom_follows"]).values(
            tenant_id="acme", advisor_id="TG00001", external_userid="wmC5", customer_id="C5",
            added_at=dt.datetime(2025, 1, 1), status="active"))
    hold(c, "acme", [("C1", "300750", 500, "110000.00", "98400.00"),
                     ("C3", "300750", 100, "20000.00", "19680.00"),
                     ("C4", "300750", 100, "20000.00", "19680.00")])
    story, report = raise_story(c, "acme", TITLE, "https://news.example.cn/catl/1",
                                "2026-01-05 09:30")
    assert (report.new_alerts, report.restricted) == (2, 1)
    return story


def task_of(c: Container, customer_id: str) -> str:
    """From the table (whoever's scope it is in)."""
    with c.engine.connect() as conn:
        [task] = conn.execute(select(risk_tasks.c.task_id).where(
            risk_tasks.c.customer_id == customer_id)).scalars().all()
    return str(task)


@pytest.fixture
def side(request: pytest.FixtureRequest, workspace: Container
         ) -> Iterator[tuple[httpx.Client, Container, FakeWeCom]]:
    fake = new_fake()
    seed(workspace, fake)
    seed_risk(workspace)
    with serving(make_app(workspace), wants_socket(request)) as http:
        yield http, workspace, fake


def _move(http: httpx.Client, task: str, status: str, reason: str = "",
          ext: str = "wmC1") -> httpx.Response:
    return http.post("/wecom/acme/sidebar/risk-task", json={
        "external_userid": ext, "task_id": task, "status": status, "reason": reason})


def test_the_chat_customers_alert_and_task(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    sign_in(http, fake)
    html = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"}).text
    assert "<h2>风险提示</h2>" in html and html.count('data-testid="risk-alert"') == 1
    section = html[html.index('data-testid="risk"'):html.index("<h2>资产与盈亏</h2>")]
    assert "宁德时代" in section and "300750" in section and "立案调查" in section
    assert f"“{TITLE}”" in section and "2026-01-05 · 1 处公开来源" in section
    assert f'data-testid="risk-evidence">{TITLE}' in section  # the sentence naming it
    assert "98,400.00" in section and "-11,600.00" in section and "500 股" in section
    assert "待处理" in section and 'data-status="acknowledged"' in section
    assert "发送提示到聊天" in section and "不构成投资建议" in section
    assert "客户风险等级：C3" in section
    j = http.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"}).json()
    assert [(a["security_code"], a["status"]) for a in j["risk"]] == [("300750", "open")]
    # the whole page (no script): the alert without the workflow buttons
    page = http.get("/wecom/acme/sidebar/customer", params={"external_userid": "wmC1"}).text
    assert "<h2>风险提示</h2>" in page and "risk-step" not in page


def test_a_customer_who_holds_nothing_has_no_section(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    sign_in(http, fake, ctx="wmC5")
    r = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC5"})
    assert r.status_code == 200 and "风险提示" not in r.text and "risk-alert" not in r.text


def test_moving_the_task_from_the_sidebar_is_audited(side) -> None:  # type: ignore[no-untyped-def]
    http, c, fake = side
    sign_in(http, fake)
    task = task_of(c, "C1")
    r = _move(http, task, "acknowledged")
    assert r.status_code == 200, r.text
    assert "已确认" in r.text and 'data-status="contacted"' in r.text
    r = _move(http, task, "done")  # skips "contacted": refused, says why, nothing written
    assert r.status_code == 422 and 'data-testid="risk-error"' in r.text
    assert "from acknowledged: contacted, dismissed" in r.text and "已确认" in r.text
    r = _move(http, task, "dismissed", "短")
    assert r.status_code == 422 and "至少 4 个字" in r.text
    r = _move(http, task, "dismissed", "客户已知悉并清仓")
    assert r.status_code == 200 and r.text.strip() == ""  # no open alert left: no section
    with c.engine.connect() as conn:
        moves = conn.execute(select(audit_log.c.actor, audit_log.c.customer_ids_json,
                                    audit_log.c.reason)
                             .where(audit_log.c.action == "risk_task")
                             .order_by(audit_log.c.seq)).all()
        history = conn.execute(select(risk_task_events.c.to_status, risk_task_events.c.actor)
                               .where(risk_task_events.c.task_id == task)
                               .order_by(risk_task_events.c.seq)).all()
    assert [(a, json.loads(ids)) for a, ids, _ in moves] == [("wecom:wangxm", ["C1"])] * 2
    assert moves[0][2] == f"task {task}: open → acknowledged"
    assert moves[1][2] == f"task {task}: acknowledged → dismissed; 客户已知悉并清仓"
    assert [tuple(h) for h in history] == [("open", "system"), ("acknowledged", "wecom:wangxm"),
                                           ("dismissed", "wecom:wangxm")]
    card = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"}).text
    assert "风险提示" not in card


def test_another_customers_task_is_refused_like_another_customer(side) -> None:  # type: ignore[no-untyped-def]
    http, c, fake = side
    sign_in(http, fake)
    for customer, ext in (("C3", "wmC1"), ("C3", "wmC3"), ("C1", "wmC5")):
        r = _move(http, task_of(c, customer), "acknowledged", ext=ext)
        assert r.status_code == 403 and sb.DENIED in r.text, (customer, ext)
    with c.engine.connect() as conn:
        statuses = dict(conn.execute(select(risk_tasks.c.customer_id, risk_tasks.c.status)).all())
    assert statuses == {"C1": "open", "C3": "open"}  # storage-only C4 has no task at all
    assert "C4" not in {t["customer_id"] for t in list_tasks(c, OPS)["items"]}
    with c.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.seq).where(
            audit_log.c.action == "risk_task")).first() is None
    r = http.post("/wecom/acme/sidebar/risk-task", json={
        "external_userid": "wmC1", "task_id": "rt00", "status": "open"})
    assert r.status_code == 422  # not a step anybody may ask for
    # lina (signed in now in this client) sees her own customer's alert in her chat with him
    http.cookies.clear()
    sign_in(http, fake, "lina", ctx=None)
    html = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC3"}).text
    assert "19,680.00" in html and "风险提示" in html
    assert _move(http, task_of(c, "C3"), "acknowledged", ext="wmC3").status_code == 200


def test_an_opt_out_after_the_alert_withholds_the_message(side) -> None:  # type: ignore[no-untyped-def]
    http, c, fake = side
    with c.engine.begin() as conn:
        conn.execute(update(CONTRACT_TABLES["customers"]).where(
            CONTRACT_TABLES["customers"].c.customer_id == "C1").values(marketing_consent=False))
        assert conn.execute(select(risk_tasks.c.status)).scalars().all() == ["open"] * 2
    sign_in(http, fake)
    html = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"}).text
    assert 'data-testid="risk-no-send"' in html and "发送提示到聊天" not in html
    assert "客户已退订消息推送" in html
