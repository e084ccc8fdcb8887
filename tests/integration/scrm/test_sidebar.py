"""The WeCom sidebar over real HTTP (uvicorn on loopback, WeCom faked by MockTransport), on
SQLite and PostgreSQL: OAuth state bound to the browser, single-use codes, the follow and
scope checks before anything is shown, masking, audit, and session expiry."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from caifu.adapters.sor.models import (
    CONTRACT_TABLES,
    audit_log,
    customer_cards,
    restricted_customers,
    tag_assignments,
    tag_definitions,
)
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.adapters.wecom.tokens import jsapi_signature
from caifu.api import create_app
from caifu.api.scrm import sidebar as sidebar_api
from caifu.core.ids import resident_id_for
from caifu.core.levels import mask
from caifu.services.container import Container
from caifu.services.scrm import sidebar as sb
from caifu.services.scrm import wecom_app as wecom
from caifu.settings import Settings
from tests.serving import serving, wants_socket

SECRET = "k3y-for-sidebar-tests-0123456789abcdefghijk"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
NAME, MOBILE = "王一明", "13812345678"
ID_NUMBER = resident_id_for("110105", dt.date(1980, 1, 1), 11)
D = "2026-10-30"


def _card(cid: str) -> dict[str, Any]:
    """A card in the shape ``services/cards.shape_card`` writes (decimals as strings)."""
    return {
        "version": 1, "customer_id": cid, "as_of": D,
        "aum": {"total": "268400.00", "stocks": "186400.00", "funds": "82000.00",
                "stock_share": 0.6945},
        "stocks": {"snapshot_date": D, "value": "186400.00", "cost": "190000.00",
                   "unrealised_pnl": "-3600.00", "positions": [
                       {"security_code": "300750", "name": "宁德时代", "board": "chinext",
                        "quantity": 500, "cost": "110000.00", "market_value": "98400.00",
                        "unrealised_pnl": "-11600.00", "unrealised_pnl_pct": -0.1055},
                       {"security_code": "600000", "name": "浦发银行", "board": "main",
                        "quantity": 8000, "cost": "80000.00", "market_value": "88000.00",
                        "unrealised_pnl": "8000.00", "unrealised_pnl_pct": 0.1}]},
        "funds": {"value": "82000.00", "known_cost": "80000.00", "pnl": "2000.00",
                  "positions_without_cost": 0, "positions": [
                      {"fund_code": "510050", "name": "上证50ETF联接", "fund_type": "index",
                       "risk_level": "R3", "shares": "30000.00", "value": "82000.00",
                       "cost": "80000.00", "pnl": "2000.00", "pnl_pct": 0.025,
                       "held_days": 400, "drawdown": 0.04}]},
        "recent_trades": [
            {"trade_id": "T1", "trade_date": "2026-10-28", "trade_time": "2026-10-28T02:15:00",
             "security_code": "300750", "name": "宁德时代", "side": "B", "quantity": 100,
             "price": "196.800", "amount": "19680.00", "fee": "5.00", "channel": "app"},
            {"trade_id": "T2", "trade_date": "2026-10-20", "trade_time": "2026-10-20T06:01:00",
             "security_code": "600000", "name": "浦发银行", "side": "S", "quantity": 2000,
             "price": "11.000", "amount": "22000.00", "fee": "5.00", "channel": "app"}],
        "pnl": {"unrealised": "-1600.00", "stock_unrealised": "-3600.00",
                "fund_unrealised": "2000.00", "stock_realised": "1250.00",
                "stock_realised_method": "均价法"},
        "losing_positions": [{"kind": "stock", "code": "300750", "name": "宁德时代",
                              "value": "98400.00", "pnl": "-11600.00", "pnl_pct": -0.1055}],
        "suitability": {"risk_level": "C3", "lowest_category": False, "score": 55,
                        "assessed_on": "2025-06-01", "valid_until": "2027-06-01",
                        "expired": False, "objective": "growth", "horizon": "long",
                        "questionnaire_version": "v3", "assessment_id": "S1"},
        "lifecycle": {"stage": "at_risk", "stage_name": "流失预警", "since": "2026-10-01",
                      "days_in_stage": 29, "trigger": "aum_drop",
                      "trigger_text": "近30天资产下降超过10%", "as_of": D},
        "scores": None, "value": None,
        "tasks": {"as_of": D, "open": [{"task_id": "K1", "kind": "reassure_fund_holder",
                                        "advisor_id": "TG00001", "rank": 1, "score": 87,
                                        "reasons": "基金回撤 4%，近期浏览赎回页面",
                                        "created_on": D, "as_of": D}]},
        "notes": []}


def seed(c: Container, fake: FakeWeCom) -> None:
    """acme: advisor TG00001 (WeCom wangxm) follows C1 (active, assigned to TG00002), was
    deleted by C2, has a storage-only C4 and an unidentified contact; C3 is TG00002's own."""
    T = CONTRACT_TABLES
    now = dt.datetime(2025, 1, 1)
    with c.engine.begin() as conn:
        for b in ("YYB001", "YYB002"):
            conn.execute(insert(T["branches"]).values(tenant_id="acme", branch_id=b, name=b))
        for adv, name, branch, userid, status in (
                ("TG00001", "王晓明", "YYB001", "wangxm", "active"),
                ("TG00002", "李娜", "YYB002", "lina", "active"),
                ("TG00003", "赵离", "YYB001", "gone", "left")):
            conn.execute(insert(T["advisors"]).values(
                tenant_id="acme", advisor_id=adv, name=name, branch_id=branch,
                sac_number="S0010120080012", wecom_userid=userid, status=status))
        for cid, adv, name in (("C1", "TG00002", NAME), ("C2", "TG00001", "钱二"),
                               ("C3", "TG00002", "孙三"), ("C4", "TG00001", "李四")):
            conn.execute(insert(T["customers"]).values(
                tenant_id="acme", customer_id=cid, name=name, customer_type="individual",
                id_type="resident_id", id_number=ID_NUMBER, mobile=MOBILE, gender="M",
                branch_id="YYB002", advisor_id=adv, opened_on=dt.date(2024, 1, 2),
                channel="app", status="normal"))
        for adv, ext, cid, status in (("TG00001", "wmC1", "C1", "active"),
                                      ("TG00001", "wmC2", "C2", "deleted_by_customer"),
                                      ("TG00002", "wmC3", "C3", "active"),
                                      ("TG00001", "wmC4", "C4", "active"),
                                      ("TG00001", "wmX", None, "active")):
            conn.execute(insert(T["wecom_follows"]).values(
                tenant_id="acme", advisor_id=adv, external_userid=ext, customer_id=cid,
                added_at=now, status=status))
        conn.execute(insert(restricted_customers).values(
            tenant_id="acme", customer_id="C4", since=now, request_id="R1",
            legal_basis="证券法：交易记录保存不少于二十年"))
        for cid in ("C1", "C3"):
            conn.execute(insert(customer_cards).values(
                tenant_id="acme", customer_id=cid, as_of=dt.date(2026, 10, 30),
                card_json=json.dumps(_card(cid), ensure_ascii=False), built_at=now,
                lifecycle_stage="at_risk"))
        conn.execute(insert(tag_definitions).values(
            tenant_id="acme", tag_id="recent_loss", version=1, kind="rule", name="近期亏损",
            spec_json="{}", first_used_at=now))
        conn.execute(insert(tag_assignments).values(
            tenant_id="acme", customer_id="C1", tag_id="recent_loss", tag_version=1,
            kind="rule", as_of=dt.date(2026, 10, 30), gained_at=now, updated_at=now,
            evidence_json=json.dumps({"definition": "recent_loss", "version": 1,
                                      "when": "unrealised_pnl < 0 and aum_trend_30d <= -0.1",
                                      "features": {"unrealised_pnl": "-1600.00",
                                                   "aum_trend_30d": -0.12}})))
        conn.execute(insert(T["suitability_assessments"]).values(
            tenant_id="acme", assessment_id="S1", customer_id="C1", questionnaire_version="v3",
            assessed_on=dt.date(2025, 6, 1), score=55, risk_level="C3",
            no_loss_tolerance=False, no_civil_capacity=False, objective="growth",
            horizon="long", valid_until=dt.date(2099, 6, 1)))
        for content_id, title, level, day, code in (
                ("N1", "宁德时代三季报点评：盈利修复", "R2", 28, "300750"),
                ("N2", "量化私募新品：高波动策略", "R4", 29, None),
                ("N3", "货币基金与国债逆回购入门", "R1", 10, None)):
            conn.execute(insert(T["content_items"]).values(
                tenant_id="acme", content_id=content_id, content_type="research_report",
                title=title, risk_level=level, published_at=dt.datetime(2026, 10, day),
                security_code=code, url=f"https://research.example.com/{content_id}"))
    wecom.configure(c, "acme", corp_id=fake.corp_id, agent_id=fake.agent_id, token="tok123",
                    encoding_aes_key=AES_KEY, secret=fake.secret)
    c.wecom_transport = httpx.MockTransport(fake.handler)
    for userid in ("wangxm", "lina", "gone", "outsider"):
        fake.add_member(userid)


def new_fake() -> FakeWeCom:
    """A fake WeCom with a corp id of its own: the service caches tokens and tickets per
    process by corp and secret, so one fake's token must not meet another fake."""
    return FakeWeCom(corp_id="wwsidebar" + secrets.token_hex(6))


def make_app(c: Container) -> FastAPI:
    """The service app with the sidebar router (added here until ``api/app.py`` includes it)."""
    app = create_app(Settings(secret_key=SECRET, run_jobs=False, run_events=False), c)
    if not any(getattr(r, "path", "") == "/wecom/{tenant}/sidebar" for r in app.routes):
        app.include_router(sidebar_api.router)
    return app


@pytest.fixture
def side(request: pytest.FixtureRequest, workspace: Container
         ) -> Iterator[tuple[httpx.Client, Container, FakeWeCom]]:
    fake = new_fake()
    seed(workspace, fake)
    with serving(make_app(workspace), wants_socket(request)) as http:
        yield http, workspace, fake


def _origin(http: httpx.Client) -> str:
    return str(http.base_url).rstrip("/")


def sign_in(http: httpx.Client, fake: FakeWeCom, userid: str = "wangxm",
            ctx: str | None = "wmC1") -> httpx.Response:
    """The OAuth round trip a browser makes; returns the answer of the redirect target."""
    r = http.get("/wecom/acme/sidebar", params={"ctx": ctx} if ctx else None)
    assert r.status_code == 302, r.text
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    return http.get("/wecom/acme/sidebar/oauth",
                    params={"code": fake.issue_oauth_code(userid), "state": state})


def test_oauth_redirect_carries_the_app_and_a_signed_state(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    r = http.get("/wecom/acme/sidebar", params={"ctx": "wmC1"})
    assert r.status_code == 302
    url = urlsplit(r.headers["location"])
    q = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == sb.OAUTH_AUTHORIZE
    assert url.fragment == "wechat_redirect"
    assert q["appid"] == [fake.corp_id] and q["agentid"] == [fake.agent_id]
    assert q["scope"] == ["snsapi_base"] and q["response_type"] == ["code"]
    assert q["redirect_uri"] == [f"{_origin(http)}/wecom/acme/sidebar/oauth"]
    assert q["state"][0].startswith("st_")
    cookie = r.headers["set-cookie"]
    assert sb.STATE_COOKIE in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Path=/wecom/acme/sidebar" in cookie


@pytest.mark.real_socket  # the sidebar router (cookies on the wire) over uvicorn
def test_sign_in_sets_a_short_session_and_returns_to_the_chat(side) -> None:  # type: ignore[no-untyped-def]
    http, c, fake = side
    r = sign_in(http, fake)
    assert r.status_code == 303 and r.headers["location"] == "/wecom/acme/sidebar?ctx=wmC1"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(sb.SESSION_COOKIE))
    assert "HttpOnly" in cookie and f"Max-Age={sb.SESSION_MINUTES * 60}" in cookie
    page = http.get(r.headers["location"])
    assert page.status_code == 200 and "投顾：王晓明" in page.text and "sidebar.js" in page.text
    with c.engine.connect() as conn:
        actors = conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "login")
                              ).scalars().all()
    assert actors == ["wecom:wangxm"]


@pytest.mark.real_socket  # a second browser: another client of the same server
def test_state_is_checked_against_this_browser(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    r = http.get("/wecom/acme/sidebar")
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    tampered = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    stale, _ = sb.issue_state(SECRET, "acme", None, dt.datetime.now(dt.UTC)
                              - dt.timedelta(minutes=sb.STATE_MINUTES + 1))
    other, _ = sb.issue_state(SECRET, "beta", None)
    for bad in (tampered, "", "st_x.y", stale, other):
        a = http.get("/wecom/acme/sidebar/oauth",
                     params={"code": fake.issue_oauth_code("wangxm"), "state": bad})
        assert a.status_code == 400 and "state 无效" in a.text, bad
    # a valid state replayed from another browser (no nonce cookie there) is refused too
    with httpx.Client(base_url=http.base_url) as elsewhere:
        a = elsewhere.get("/wecom/acme/sidebar/oauth",
                          params={"code": fake.issue_oauth_code("wangxm"), "state": state})
        assert a.status_code == 400 and sb.SESSION_COOKIE not in a.headers.get("set-cookie", "")
    ok = http.get("/wecom/acme/sidebar/oauth",
                  params={"code": fake.issue_oauth_code("wangxm"), "state": state})
    assert ok.status_code == 303


@pytest.mark.real_socket  # a second browser: another client of the same server
def test_a_code_works_once(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    code = fake.issue_oauth_code("wangxm")
    answers = []
    for _ in range(2):  # two browsers, the same code
        with httpx.Client(base_url=http.base_url) as browser:
            r = browser.get("/wecom/acme/sidebar")
            state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
            answers.append(browser.get("/wecom/acme/sidebar/oauth",
                                       params={"code": code, "state": state}))
    assert answers[0].status_code == 303
    assert answers[1].status_code == 401 and "授权码无效、已使用或已过期" in answers[1].text
    assert fake.call_count("auth/getuserinfo") == 2


@pytest.mark.parametrize("userid", ["outsider", "gone"])
def test_only_active_advisors_sign_in(side, userid: str) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    r = sign_in(http, fake, userid)
    assert r.status_code == 403 and "未关联在职投顾" in r.text
    assert sb.SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_allowed_customer_is_shown_masked_and_audited(side) -> None:  # type: ignore[no-untyped-def]
    http, c, fake = side
    sign_in(http, fake)
    r = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"})
    assert r.status_code == 200, r.text
    html = r.text
    assert mask("name", NAME) in html and mask("mobile", MOBILE) in html
    for secret in (NAME, MOBILE, ID_NUMBER, mask("resident_id", ID_NUMBER), "wmC1"):
        assert secret not in html
    for heading in ("资产与盈亏", "持仓", "亏损持仓", "近期交易", "待办任务", "标签与依据",
                    "生命周期", "推荐内容"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count('class="holding"') == 3 and "宁德时代" in html and "上证50ETF联接" in html
    assert "268,400.00" in html and "-11,600.00" in html and "流失预警" in html
    assert "赎回前安抚" in html and "近期亏损" in html
    assert "规则 unrealised_pnl &lt; 0" in html  # the evidence, escaped
    # content: R2 (related to a holding) and R1 suit a C3; the R4 item is withheld
    assert "宁德时代三季报点评" in html and "与持仓「宁德时代」相关" in html
    assert "货币基金与国债逆回购入门" in html and "量化私募新品" not in html
    assert "另有 1 条内容不符合该客户适当性" in html
    assert "市场有风险，投资需谨慎。" in html and "仅供参考，不构成投资建议" in html
    j = http.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"})
    assert j.status_code == 200
    body = j.json()
    assert body["customer"]["name"] == mask("name", NAME) and "id_number" not in body["customer"]
    assert [i["content_id"] for i in body["content"]["items"]] == ["N1", "N3"]
    assert body["content"]["items"][0]["rule"] == "OK"
    page = http.get("/wecom/acme/sidebar/customer", params={"external_userid": "wmC1"})
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert mask("name", NAME) in page.text and MOBILE not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    with c.engine.connect() as conn:
        views = conn.execute(select(audit_log.c.actor, audit_log.c.customer_ids_json).where(
            audit_log.c.action == "sidebar_view")).all()
    assert [(a, json.loads(ids)) for a, ids in views] == [("wecom:wangxm", ["C1"])] * 3


DENIALS = ["wmC2", "wmC3", "wmC4", "wmX", "wmNOPE", "bad id!"]


def test_everything_else_is_refused_the_same_way(side) -> None:  # type: ignore[no-untyped-def]
    """Deleted by the customer, another advisor's customer, storage only, unidentified,
    unknown, malformed: one answer, nothing about the customer, nothing audited."""
    http, c, fake = side
    sign_in(http, fake)
    html, js = set(), set()
    for ext in DENIALS:
        r = http.post("/wecom/acme/sidebar/card", json={"external_userid": ext})
        assert r.status_code == 403, ext
        html.add(r.text)
        j = http.post("/wecom/acme/sidebar/context", json={"external_userid": ext})
        assert j.status_code == 403
        js.add(j.text)
        page = http.get("/wecom/acme/sidebar/customer", params={"external_userid": ext})
        assert page.status_code == 403 and sb.DENIED in page.text
    assert len(html) == 1 and len(js) == 1 and sb.DENIED in html.pop()
    assert json.loads(js.pop()) == {"detail": sb.DENIED}
    with c.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.seq).where(
            audit_log.c.action == "sidebar_view")).first() is None


def test_the_other_advisor_sees_his_own_customer(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    sign_in(http, fake, "lina", ctx=None)
    assert http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC3"}
                     ).status_code == 200
    # C1 is assigned to him, but this chat contact is not his follow: no
    assert http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"}
                     ).status_code == 403


@pytest.mark.real_socket  # a second browser: another client of the same server
def test_sessions_expire_and_are_not_credentials_elsewhere(side) -> None:  # type: ignore[no-untyped-def]
    http, c, fake = side
    past = int(dt.datetime.now(dt.UTC).timestamp()) - 1
    expired = sb.issue_session(SECRET, sb.Session("acme", "TG00001", "wangxm", past))
    with httpx.Client(base_url=http.base_url, cookies={sb.SESSION_COOKIE: expired}) as b:
        r = b.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"})
        assert r.status_code == 401 and "登录已过期" in r.json()["detail"]
        assert b.get("/wecom/acme/sidebar").status_code == 302  # back through OAuth
        assert b.get("/wecom/acme/sidebar/jsapi",
                     params={"url": f"{_origin(http)}/wecom/acme/sidebar"}).status_code == 401
    live = sb.issue_session(SECRET, sb.Session("acme", "TG00001", "wangxm", past + 900))
    # signed for acme: not a session for another tenant's sidebar
    assert sb.read_session(SECRET, live, "beta") is None
    # not a bearer token for the API, and a console token is not a sidebar session
    assert http.get("/v1/customers/C1", headers={"Authorization": f"Bearer {live}"}
                    ).status_code == 401
    forged = "sb_" + live[3:].split(".")[0] + "." + "A" * 43
    with httpx.Client(base_url=http.base_url, cookies={sb.SESSION_COOKIE: forged}) as b:
        assert b.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"}
                      ).status_code == 401
    # an advisor who left is out at once, though his cookie is still within its 15 minutes
    sign_in(http, fake)
    assert http.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"}
                     ).status_code == 200
    t = CONTRACT_TABLES["advisors"]
    with c.engine.begin() as conn:
        conn.execute(t.update().where(t.c.advisor_id == "TG00001").values(status="left"))
    assert http.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"}
                     ).status_code == 401


def test_jsapi_signs_only_the_sidebar_page(side) -> None:  # type: ignore[no-untyped-def]
    http, _, fake = side
    sign_in(http, fake)
    url = f"{_origin(http)}/wecom/acme/sidebar?ctx=wmC1"
    r = http.get("/wecom/acme/sidebar/jsapi", params={"url": url + "#top"})
    assert r.status_code == 200
    cfg = r.json()
    assert cfg["corpId"] == fake.corp_id and cfg["agentId"] == fake.agent_id
    assert cfg["signature"] == jsapi_signature(fake.jsapi_ticket, cfg["nonceStr"],
                                               cfg["timestamp"], url)
    assert http.get("/wecom/acme/sidebar/jsapi",
                    params={"url": "https://evil.example.com/wecom/acme/sidebar"}
                    ).status_code == 422


def test_static_files_are_served_and_nothing_else(side) -> None:  # type: ignore[no-untyped-def]
    http, _, _ = side
    js = http.get("/wecom/acme/sidebar/static/sidebar.js")
    assert js.status_code == 200 and "getCurExternalContact" in js.text
    assert http.get("/wecom/acme/sidebar/static/sidebar.css").status_code == 200
    for name in ("sidebar.html", "..%2Fsidebar.py", "wecom-jssdk.js"):
        assert http.get(f"/wecom/acme/sidebar/static/{name}").status_code == 404
