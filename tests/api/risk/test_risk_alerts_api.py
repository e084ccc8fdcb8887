"""Risk alerts and tasks over HTTP, per customer: ``customer_id`` filters within the caller's
scope — an advisor asking for another advisor's customer, or another tenant's, gets nothing —
customers stay masked, and a task out of scope cannot be moved."""

from __future__ import annotations

import pytest

from caifu.api.schemas.risk import RiskAlertPage, RiskTaskPage
from caifu.services.platform import users
from tests.api.profiles.test_customers import _token
from tests.integration.risk.holdings import SNAPSHOT, hold, raise_story

TITLE = "贵州茅台收到中国证监会立案告知书"
HELD = [("C1", "600519", 100, "150000.00", "140000.00"),
        ("C2", "600519", 200, "280000.00", "300000.00"),
        ("C3", "600519", 300, "450000.00", "420000.00"),
        ("C3", "000001", 1000, "12000.00", "11000.00")]


@pytest.fixture
def raised(client):  # type: ignore[no-untyped-def]
    http, c = client
    hold(c, "acme", HELD)
    hold(c, "beta", [("B1", "600519", 50, "75000.00", "70000.00")])
    _, acme = raise_story(c, "acme", TITLE, "https://news.example.cn/a/1", "2026-01-05 09:30")
    _, beta = raise_story(c, "beta", TITLE, "https://news.example.cn/a/1", "2026-01-05 09:30")
    assert (acme.new_alerts, beta.new_alerts) == (3, 1)
    beta_key = users.create_key(c, "beta", "ops", "crm-sync", "beta.admin")
    return http, c, {"Authorization": f"Bearer {beta_key.secret}"}


def _alerts(http, headers, **params) -> RiskAlertPage:  # type: ignore[no-untyped-def]
    r = http.get("/v1/risk/alerts", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return RiskAlertPage.model_validate(r.json())


def _tasks(http, headers, **params) -> RiskTaskPage:  # type: ignore[no-untyped-def]
    r = http.get("/v1/risk/tasks", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return RiskTaskPage.model_validate(r.json())


def test_one_customers_alert_and_task(raised) -> None:  # type: ignore[no-untyped-def]
    http, _, _ = raised
    ops = _token(http, "acme.ops")
    page = _alerts(http, ops, customer_id="C3")
    [a] = page.items  # C3's 000001 is not named in the story
    assert (page.total, a.customer_id, a.security_code, a.company_name) == (
        1, "C3", "600519", "贵州茅台")
    assert (a.quantity, a.market_value, a.cost, a.unrealised_pnl) == (
        300, 420000.0, 450000.0, -30000.0)
    assert a.snapshot_date == SNAPSHOT and a.event_type == "regulatory_investigation"
    assert a.customer_name != "王三" and "*" in (a.customer_name or "")
    assert a.evidence["mention"]["code"] == "600519"
    assert "立案告知书" in a.evidence["mention"]["sentence"]
    assert a.message_may_send and "不构成投资建议" in a.message and a.status == "open"
    tasks = _tasks(http, ops, customer_id="C3")
    assert [(t.task_id, t.customer_id, t.status) for t in tasks.items] == [
        (a.task_id, "C3", "open")]
    assert _alerts(http, ops, customer_id="C9").total == 0  # nobody
    all_ids = {x.customer_id for x in _alerts(http, ops).items}
    assert all_ids == {"C1", "C2", "C3"}


def test_an_advisor_sees_only_his_customers(raised) -> None:  # type: ignore[no-untyped-def]
    http, _, _ = raised
    adv = _token(http, "acme.advisor")  # TG00001: assigned C1, followed by C2; C3 is TG00002's
    assert {x.customer_id for x in _alerts(http, adv).items} == {"C1", "C2"}
    assert [x.customer_id for x in _alerts(http, adv, customer_id="C2").items] == ["C2"]
    assert _alerts(http, adv, customer_id="C3").total == 0
    assert _tasks(http, adv, customer_id="C3").total == 0
    bm = _token(http, "acme.bm")  # branch YYB001: C1 only
    assert _alerts(http, bm, customer_id="C2").total == 0
    assert [x.customer_id for x in _tasks(http, bm, customer_id="C1").items] == ["C1"]

    c3_task = _tasks(http, _token(http, "acme.ops"), customer_id="C3").items[0].task_id
    r = http.post(f"/v1/risk/tasks/{c3_task}/status", json={"status": "acknowledged"},
                  headers=adv)
    assert r.status_code == 404
    c2_task = _tasks(http, adv, customer_id="C2").items[0].task_id
    r = http.post(f"/v1/risk/tasks/{c2_task}/status", json={"status": "acknowledged"},
                  headers=adv)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert [x.status for x in _tasks(http, adv, customer_id="C2").items] == ["acknowledged"]
    assert _tasks(http, adv, customer_id="C2", status="open").total == 0


def test_another_tenant_sees_none_of_them(raised) -> None:  # type: ignore[no-untyped-def]
    http, _, beta = raised
    assert _alerts(http, beta, customer_id="C1").total == 0
    assert _tasks(http, beta, customer_id="C3").total == 0
    [b] = _alerts(http, beta).items
    assert (b.customer_id, b.market_value) == ("B1", 70000.0)
    adv = _token(http, "acme.advisor")
    assert _alerts(http, adv, customer_id="B1").total == 0
    r = http.post(f"/v1/risk/tasks/{b.task_id}/status", json={"status": "acknowledged"},
                  headers=_token(http, "acme.ops"))
    assert r.status_code == 404
