"""A campaign end to end on SQLite and PostgreSQL, against the fake WeCom: the gate's
decisions stored with their rule version, the send with footer and per-customer tracking
links, delivery, opens and clicks through the public link, conversions inside and outside
the attribution window, the funnel, and the comparison with a historical campaign."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import (
    campaign_contacts,
    campaign_decisions,
    contact_ways,
    preference_group_members,
    preference_groups,
    wecom_groups,
)
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.api import create_app
from caifu.api.scrm import campaigns as campaigns_api
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.data.contracts.arrow import contract_schema
from caifu.data.contracts.tables import TABLES
from caifu.scrm.campaigns import DECISION_RULE_VERSION, qr_state
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform import users
from caifu.services.scrm import wecom_app
from caifu.services.scrm.campaigns import Campaigns
from caifu.services.scrm.funnel import CampaignFunnel
from caifu.settings import Settings
from tests.serving import serving

ON = dt.datetime(2025, 3, 3, 2, 0)
SAC = "A0120612345678"
URL = "https://research.example/r/1"
T = CONTRACT_TABLES
CONTRACT = {t.name: t for t in TABLES}
# customer → (level, valid_until, lowest category, consent, advisor followed, expected rule)
PEOPLE = {
    "C01": ("C4", dt.date(2026, 1, 1), False, True, "TG1", "OK"),
    "C02": ("C1", dt.date(2026, 1, 1), True, True, "TG1", "LOWEST_CATEGORY"),
    "C03": ("C4", dt.date(2025, 1, 1), False, True, "TG1", "ASSESSMENT_EXPIRED"),
    "C04": ("C4", dt.date(2026, 1, 1), False, False, "TG1", "NO_CONSENT"),
    "C05": ("C4", dt.date(2026, 1, 1), False, True, "TG1", "FREQUENCY_CAP"),
    "C06": ("C4", dt.date(2026, 1, 1), False, True, "TG2", "FOOTER_MISSING"),
    "C07": ("C5", dt.date(2026, 1, 1), False, True, "TG1", "OK"),
    "C08": ("C4", dt.date(2026, 1, 1), False, True, None, "NOT_REACHABLE"),
    "C09": ("C2", dt.date(2026, 1, 1), False, True, "TG1", "LEVEL_MISMATCH"),
}


def _lake(c: Container, table: str, rows: list[dict[str, Any]]) -> None:
    contract = CONTRACT[table]
    schema = contract_schema(contract)
    data = pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema})
    data = data.append_column("_batch_id", pa.array(["test"] * len(rows), pa.string()))
    c.lake.append("acme", contract, data, f"test-{table}")


def _seed(c: Container, fake: FakeWeCom) -> None:
    with c.engine.begin() as conn:
        conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id="YYB001",
                                                  name="总部"))
        for adv, name, sac, userid in (("TG1", "李四", SAC, "lisi"),
                                       ("TG2", "王五", None, "wangwu")):
            conn.execute(insert(T["advisors"]).values(
                tenant_id="acme", advisor_id=adv, name=name, branch_id="YYB001", sac_number=sac,
                wecom_userid=userid, status="active"))
            fake.add_member(userid, name)
        conn.execute(insert(T["content_items"]).values(
            tenant_id="acme", content_id="RPT1", content_type="research_report",
            title="新能源行业周报：储能景气延续", risk_level="R3", published_at=ON, url=URL))
        conn.execute(insert(T["content_items"]).values(
            tenant_id="acme", content_id="BAD1", content_type="product_intro",
            title="稳健理财，保本保收益", risk_level="R1", published_at=ON, url=URL))
        for cid, name, channel, content, goal in (
                ("HD1", "储能周报推送", "mass_send", "RPT1", "funded"),
                ("HD2", "保本理财推送", "mass_send", "BAD1", "fund_purchase"),
                ("HD3", "新能源群推送", "group", "RPT1", "fund_purchase"),
                ("HD4", "春季开户活码", "channel_qr", None, "account_opened"),
                ("HIST1", "2024 基金定投节", "sms", None, "fund_purchase")):
            conn.execute(insert(T["campaigns"]).values(
                tenant_id="acme", campaign_id=cid, name=name, channel=channel, content_id=content,
                goal=goal, starts_on=dt.date(2025, 3, 1) if cid != "HIST1"
                else dt.date(2024, 4, 1)))
        for cid, (level, valid, low, consent, adv, _) in PEOPLE.items():
            conn.execute(insert(T["customers"]).values(
                tenant_id="acme", customer_id=cid, name="客户", customer_type="individual",
                id_type="passport", id_number=f"E{cid}123", branch_id="YYB001",
                advisor_id=adv or "TG1", opened_on=dt.date(2024, 1, 2), channel="app",
                status="normal", marketing_consent=consent))
            conn.execute(insert(T["suitability_assessments"]).values(
                tenant_id="acme", assessment_id=f"A{cid}", customer_id=cid,
                questionnaire_version="v1", assessed_on=dt.date(2024, 1, 2), score=70,
                risk_level=level, no_loss_tolerance=low, no_civil_capacity=False,
                valid_until=valid))
            if adv:
                userid = "lisi" if adv == "TG1" else "wangwu"
                conn.execute(insert(T["wecom_follows"]).values(
                    tenant_id="acme", advisor_id=adv, external_userid=f"wm{cid}",
                    customer_id=cid, added_at=ON - dt.timedelta(days=30), status="active"))
                fake.add_contact(f"wm{cid}")
                fake.add_follow(userid, f"wm{cid}")
        for old in ("OLD1", "OLD2"):  # C05 was reached twice in the last week
            conn.execute(insert(campaign_contacts).values(
                tenant_id="acme", campaign_id=old, customer_id="C05",
                targeted_at=ON - dt.timedelta(days=3), sent_at=ON - dt.timedelta(days=3)))
    wecom_app.configure(c, "acme", corp_id=fake.corp_id, agent_id=fake.agent_id, token="tok",
                    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                    secret=fake.secret, api_base_url="https://qyapi.weixin.qq.com/cgi-bin/")
    c.wecom_transport = httpx.MockTransport(fake.handler)


@pytest.fixture
def world(workspace: Container) -> Iterator[tuple[Container, FakeWeCom]]:
    fake = FakeWeCom()
    _seed(workspace, fake)
    yield workspace, fake


def _decisions(c: Container, campaign_id: str) -> dict[str, Any]:
    d = campaign_decisions
    with c.engine.connect() as conn:
        return {r.customer_id: r for r in conn.execute(
            select(d).where(d.c.tenant_id == "acme", d.c.campaign_id == campaign_id))}


def _contacts(c: Container, campaign_id: str) -> dict[str, Any]:
    k = campaign_contacts
    with c.engine.connect() as conn:
        return {r.customer_id: r for r in conn.execute(
            select(k).where(k.c.tenant_id == "acme", k.c.campaign_id == campaign_id))}


def test_campaign_gate_send_track_convert_and_compare(world) -> None:  # type: ignore[no-untyped-def]
    c, fake = world
    svc, funnels = Campaigns(c), CampaignFunnel(c)
    summary = svc.create_run("acme", "HD1", actor="acme.ops", customer_ids=list(PEOPLE), on=ON)
    assert (summary.targeted, summary.allowed) == (9, 2)
    decided = _decisions(c, "HD1")
    for cid, person in PEOPLE.items():  # every rule blocks with its own code
        row = decided[cid]
        assert row.rule == person[-1], (cid, row.rule, row.reasons_json)
        assert row.outcome == ("send" if person[-1] == "OK" else "blocked")
        assert row.rule_version == DECISION_RULE_VERSION and row.product_level == "R3"
        assert row.investor_level == person[0]
        assert json.loads(row.reasons_json)
    assert "风险承受能力最低类别" in decided["C02"].reasons_json
    assert "执业注册编号" in decided["C06"].reasons_json

    # sending: one mass send per allowed customer, his own link, the advisor's footer
    sent = svc.send("acme", "HD1", actor="acme.ops", link_base="https://caifu.example", on=ON)
    assert (sent.sent, sent.failed) == (2, 0)
    contacts = _contacts(c, "HD1")
    assert len(contacts) == 9 and {k for k, r in contacts.items() if r.sent_at} == {"C01", "C07"}
    texts = {next(iter(s["recipients"]))[1]: s["text"]["content"]
             for s in fake.mass_sends.values()}
    for cid in ("C01", "C07"):
        text = texts[f"wm{cid}"]
        assert f"https://caifu.example/t/{contacts[cid].tracking_token}" in text
        assert "市场有风险，投资需谨慎。" in text and SAC in text and "R3" in text
        assert "仅供参考，不构成投资建议" in text
    [record] = [r for r in audit.records(c, "acme") if r.entry.action == "campaign_send"]
    assert set(record.entry.customer_ids) == {"C01", "C07"}
    with pytest.raises(ConfigError, match="already sent"):
        svc.create_run("acme", "HD1", actor="acme.ops", customer_ids=["C01"])

    # delivery: pending until the advisor confirms, then polled
    assert svc.poll("acme", "HD1", on=ON) == 0
    for msgid in list(fake.mass_sends):
        fake.deliver(msgid)
    assert svc.poll("acme", "HD1", on=ON + dt.timedelta(minutes=5)) == 2

    # the public tracking link: C01 clicks, C07 only opens; unknown tokens are 404
    app = create_app(Settings(secret_key="k3y-for-tests-only-0123456789abcdefghijklmnop",
                              run_jobs=False, run_events=False), c)
    app.include_router(campaigns_api.router)
    users.add_user(c, "acme.ops", "ops", "correct horse battery", tenant="acme")
    users.add_user(c, "acme.advisor", "advisor", "correct horse battery", tenant="acme",
                      advisor_id="TG2")
    with serving(app, real_socket=True) as http:  # the campaigns router over uvicorn
        r = http.get(f"/t/{contacts['C01'].tracking_token}", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == URL
        r = http.get(f"/t/{contacts['C07'].tracking_token}/open.gif")
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        for bad in ("nope-not-a-token", "x" * 40, "%27%20OR%201%3D1"):
            r = http.get(f"/t/{bad}", follow_redirects=False)
            assert r.status_code == 404 and "C0" not in r.text and URL not in r.text

        # conversions: C01 deposits two days after the send, C07 three weeks after (outside)
        _lake(c, "cash_flows", [
            {"flow_id": "F1", "customer_id": "C01", "fund_account": "A1",
             "flow_time": ON + dt.timedelta(days=2), "direction": "in",
             "amount": Decimal("50000.00")},
            {"flow_id": "F2", "customer_id": "C07", "fund_account": "A7",
             "flow_time": ON + dt.timedelta(days=21), "direction": "in",
             "amount": Decimal("80000.00")},
            {"flow_id": "F3", "customer_id": "C07", "fund_account": "A7",
             "flow_time": ON + dt.timedelta(days=1), "direction": "out",
             "amount": Decimal("100.00")}])
        login = http.post("/v1/auth/login", json={"user_id": "acme.ops",
                                                  "password": "correct horse battery"})
        ops = {"Authorization": f"Bearer {login.json()['token']}"}
        r = http.post("/v1/campaigns/HD1/poll", headers=ops)
        assert r.status_code == 200 and r.json() == {"delivered": 0, "converted": 1}
        r = http.get("/v1/campaigns/HD1/funnel", headers=ops)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {s: body["funnel"][s] for s in ("targeted", "sent", "delivered", "opened",
                                               "clicked", "converted")} == {
            "targeted": 9, "sent": 2, "delivered": 2, "opened": 2, "clicked": 1, "converted": 1}
        assert body["funnel"]["clicked_rate"] == 0.5 and body["conversions"] == {"funded": 1}
        assert body["blocked"]["LOWEST_CATEGORY"] == 1 and sum(body["blocked"].values()) == 7
        assert body["rule_version"] == DECISION_RULE_VERSION

        # an advisor sees only his own customers' decisions, and may not run campaigns
        login = http.post("/v1/auth/login", json={"user_id": "acme.advisor",
                                                  "password": "correct horse battery"})
        adv = {"Authorization": f"Bearer {login.json()['token']}"}
        r = http.get("/v1/campaigns/HD1/decisions", headers=adv)
        assert r.status_code == 200
        assert [i["customer_id"] for i in r.json()["items"]] == ["C06"]
        assert r.json()["items"][0]["rule_version"] == DECISION_RULE_VERSION
        assert http.post("/v1/campaigns/HD1/send", headers=adv).status_code == 403
        assert http.get("/v1/campaigns/HD1/funnel", headers=adv).status_code == 403

        # the comparison: the live run beside a historical campaign from the lake
        _lake(c, "campaign_touches", [
            {"touch_id": f"T{i}{s}", "campaign_id": "HIST1", "customer_id": f"C0{i}",
             "touched_at": dt.datetime(2024, 4, 1, 1), "stage": stage}
            for i in range(1, 5) for s, stage in enumerate(
                ("targeted", "sent", "delivered", "opened", "clicked", "converted"))
            if s <= {1: 5, 2: 3, 3: 1, 4: 0}[i]])
        r = http.get("/v1/campaigns/compare", headers=ops)
        assert r.status_code == 200
        rows = {x["campaign_id"]: x for x in r.json()["items"]}
    assert rows["HD1"]["source"] == "live" and rows["HD1"]["converted"] == 1
    assert rows["HD1"]["name"] == "储能周报推送" and rows["HD1"]["conversion_rate"] == 0.1111
    hist = rows["HIST1"]
    assert hist["source"] == "history" and hist["name"] == "2024 基金定投节"
    assert [hist[s] for s in ("targeted", "sent", "delivered", "opened", "clicked",
                              "converted")] == [4, 3, 2, 2, 1, 1]
    assert hist["delivered_rate"] == 0.6667 and hist["conversion_rate"] == 0.25
    assert funnels.refresh("acme", "HD1") == 0  # C07's late deposit stays outside the window


def test_prohibited_content_blocks_everyone(world) -> None:  # type: ignore[no-untyped-def]
    c, fake = world
    summary = Campaigns(c).create_run("acme", "HD2", actor="acme.ops",
                                      customer_ids=["C01", "C07"], on=ON)
    assert summary.allowed == 0 and summary.blocked == {"CONTENT_PROHIBITED": 2}
    row = _decisions(c, "HD2")["C01"]
    assert "保本" in row.reasons_json and row.rule_version == DECISION_RULE_VERSION
    assert Campaigns(c).send("acme", "HD2", actor="acme.ops", link_base="https://x",
                             on=ON).sent == 0
    assert fake.mass_sends == {}


def test_group_is_judged_against_its_lowest_member(world) -> None:  # type: ignore[no-untyped-def]
    c, fake = world
    chat = fake.add_group_chat("lisi", ["wmC01", "wmC09"], name="新能源交流群")
    now = ON - dt.timedelta(days=1)
    with c.engine.begin() as conn:
        conn.execute(insert(wecom_groups).values(
            tenant_id="acme", chat_id=chat, name="新能源交流群", owner="lisi", status="active",
            needs_resync=False, created_at=now, updated_at=now))
        conn.execute(insert(preference_groups).values(
            tenant_id="acme", group_id="新能源", name="新能源", rule="tag:新能源",
            level_policy="lowest_member", chat_id=chat, created_at=now, updated_at=now))
        for cid in ("C01", "C09", "C07"):
            conn.execute(insert(preference_group_members).values(
                tenant_id="acme", group_id="新能源", customer_id=cid,
                status="left" if cid == "C07" else "member", reason="标签", risk_level=None,
                updated_at=now))
    svc = Campaigns(c)
    summary = svc.create_run("acme", "HD3", actor="acme.ops", group_id="新能源", on=ON)
    assert summary.targeted == 2 and summary.blocked == {"LEVEL_MISMATCH": 2}  # C2 < R3
    rows = _decisions(c, "HD3")
    assert {r.investor_level for r in rows.values()} == {"C2"}
    assert "最低成员等级 C2" in rows["C01"].reasons_json
    with c.engine.begin() as conn:  # C09 leaves: the group is C4 and the report may go
        conn.execute(preference_group_members.update().where(
            preference_group_members.c.customer_id == "C09").values(status="left"))
    assert svc.create_run("acme", "HD3", actor="acme.ops", group_id="新能源", on=ON).allowed == 1
    assert svc.send("acme", "HD3", actor="acme.ops", link_base="https://x", on=ON).sent == 1
    [send] = fake.mass_sends.values()
    assert send["chat_type"] == "group" and "市场有风险" in send["text"]["content"]
    fake.deliver(send["msgid"])
    assert svc.poll("acme", "HD3", on=ON) == 1


def test_channel_qr_records_its_state_and_funnel(world) -> None:  # type: ignore[no-untyped-def]
    c, fake = world
    svc = Campaigns(c)
    svc.create_run("acme", "HD4", actor="acme.ops", advisor_ids=["TG1"], on=ON)
    assert svc.send("acme", "HD4", actor="acme.ops", link_base="https://x",
                    on=ON).contact_ways == 1
    state = qr_state("HD4")
    with c.engine.connect() as conn:
        [way] = conn.execute(select(contact_ways)).all()
    assert (way.state, way.campaign_id, way.advisor_id) == (state, "HD4", "TG1")
    assert fake.contact_ways[way.config_id]["state"] == state and len(state) <= 30
    with c.engine.begin() as conn:  # a new customer adds TG1 through the code, opens next day
        conn.execute(insert(T["customers"]).values(
            tenant_id="acme", customer_id="N01", name="新客", customer_type="individual",
            id_type="passport", id_number="EN01123", branch_id="YYB001", advisor_id="TG1",
            opened_on=dt.date(2025, 3, 5), channel="app", status="normal"))
        conn.execute(insert(T["wecom_follows"]).values(
            tenant_id="acme", advisor_id="TG1", external_userid="wmN01", customer_id="N01",
            added_at=ON + dt.timedelta(days=1), state=state, status="active"))
    assert CampaignFunnel(c).refresh("acme", "HD4") == 1
    f = CampaignFunnel(c).funnel(Principal("acme", "test", "ops"), "HD4")["funnel"]
    assert (f["targeted"], f["converted"]) == (1, 1)


def test_a_scheduled_run_is_sent_when_its_time_comes(world) -> None:  # type: ignore[no-untyped-def]
    """The service's worker calls ``send_due`` each minute: nothing before the time, the run
    once after it, never twice."""
    from caifu.services.scrm.campaigns import send_due

    c, fake = world
    at = ON + dt.timedelta(hours=3)
    Campaigns(c).create_run("acme", "HD1", actor="acme.ops", customer_ids=list(PEOPLE), on=ON,
                            scheduled_at=at)
    assert send_due(c, "https://caifu.example", now=at - dt.timedelta(minutes=1)) == []
    assert Campaigns(c).run("acme", "HD1")["status"] == "gated" and fake.mass_sends == {}
    sent = send_due(c, "https://caifu.example", now=at)
    assert [(s.campaign_id, s.sent) for s in sent] == [("HD1", 2)]
    assert Campaigns(c).run("acme", "HD1")["status"] == "sent"
    assert send_due(c, "https://caifu.example", now=at + dt.timedelta(minutes=5)) == []
    assert len(fake.mass_sends) == 2
