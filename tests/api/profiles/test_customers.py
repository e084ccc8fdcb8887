"""Customer 360 over HTTP: every role against every kind of customer, other tenants' ids,
unmasking, bad credentials — on SQLite and PostgreSQL. Nothing leaks: out of scope is 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.api import create_app
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform import sessions, users
from caifu.services.platform.workspace import create_tenant
from caifu.settings import Settings
from tests.serving import serving, wants_socket

SECRET = "k3y-for-tests-only-0123456789abcdefghijklmnop"
PASSWORD = "correct horse battery"


def _seed(c: Container) -> None:
    create_tenant(c, "beta", "丙丁证券")
    T = CONTRACT_TABLES
    with c.engine.begin() as conn:
        for tenant, branch in (("acme", "YYB001"), ("acme", "YYB002"), ("beta", "YYB001")):
            conn.execute(insert(T["branches"]).values(tenant_id=tenant, branch_id=branch,
                                                      name=f"{tenant}{branch}"))
        for tenant, adv, branch in (("acme", "TG00001", "YYB001"), ("acme", "TG00002", "YYB002"),
                                    ("beta", "TG00001", "YYB001")):
            conn.execute(insert(T["advisors"]).values(
                tenant_id=tenant, advisor_id=adv, name="投顾", branch_id=branch,
                sac_number="A0120612345678", status="active"))
        people = [("acme", "C1", "YYB001", "TG00001", "王一"), ("acme", "C2", "YYB002", "TG00002", "王二"),
                  ("acme", "C3", "YYB002", "TG00002", "王三"), ("beta", "B1", "YYB001", "TG00001", "赵一")]
        for tenant, cid, branch, adv, name in people:
            conn.execute(insert(T["customers"]).values(
                tenant_id=tenant, customer_id=cid, name=name, customer_type="individual",
                id_type="passport", id_number=f"E{cid}12345", mobile="13812345678",
                branch_id=branch, advisor_id=adv, opened_on=dt.date(2024, 1, 2), channel="app",
                status="normal"))
        # C2 follows advisor TG00001 on WeCom (active); C3 followed him once and left
        for cid, status in (("C2", "active"), ("C3", "deleted_by_customer")):
            conn.execute(insert(T["wecom_follows"]).values(
                tenant_id="acme", advisor_id="TG00001", external_userid=f"wm{cid}",
                customer_id=cid, added_at=dt.datetime(2025, 1, 1), status=status))
    for user, role, kw in (("acme.ops", "ops", {}), ("acme.admin", "tenant_admin", {}),
                           ("acme.compliance", "compliance", {}),
                           ("acme.bm", "branch_manager", {"branch_id": "YYB001"}),
                           ("acme.advisor", "advisor", {"advisor_id": "TG00001"})):
        users.add_user(c, user, role, PASSWORD, tenant="acme", **kw)
    users.add_user(c, "root.admin", "platform_admin", PASSWORD, tenant=None)


@pytest.fixture
def client(request: pytest.FixtureRequest, workspace: Container
           ) -> Iterator[tuple[httpx.Client, Container]]:
    _seed(workspace)
    with serving(create_app(Settings(secret_key=SECRET, max_body_bytes=10_000),
                            workspace), wants_socket(request)) as http:
        yield http, workspace


def _token(tc: httpx.Client, user: str) -> dict[str, str]:
    r = tc.post("/v1/auth/login", json={"user_id": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


SEES = {  # who sees which of acme's C1, C2, C3 and beta's B1
    "acme.ops": {"C1", "C2", "C3"}, "acme.admin": {"C1", "C2", "C3"},
    "acme.compliance": {"C1", "C2", "C3"}, "acme.bm": {"C1"},
    "acme.advisor": {"C1", "C2"},  # assigned C1, follows C2; C3 left him
    "root.admin": set(),
}


@pytest.mark.dialect
def test_every_role_sees_exactly_its_scope(client) -> None:  # type: ignore[no-untyped-def]
    tc, _ = client
    for user, sees in SEES.items():
        headers = _token(tc, user)
        for cid in ("C1", "C2", "C3", "B1", "NOPE"):
            r = tc.get(f"/v1/customers/{cid}", headers=headers)
            expected = 200 if cid in sees else 404
            assert r.status_code == expected, (user, cid, r.status_code, r.text)
            if expected == 404:  # the same answer whether it exists elsewhere or not at all
                assert r.json() == {"error": {"code": "not_found", "message": f"no customer {cid!r}"},
                                    "detail": [{"problem": f"no customer {cid!r}"}]}
            else:
                body = r.json()
                assert body["customer"]["customer_id"] == cid
                assert body["customer"]["name"] not in ("王一", "王二", "王三")  # masked


def test_unmask_is_compliance_only_with_a_reason_and_audited(client) -> None:  # type: ignore[no-untyped-def]
    tc, c = client
    comp = _token(tc, "acme.compliance")
    r = tc.get("/v1/customers/C1?unmask=true", headers=comp)
    assert r.status_code == 422 and "needs a reason" in r.text
    r = tc.get("/v1/customers/C1?unmask=true",
               headers={**comp, "X-Caifu-Reason": quote("客户投诉核查")})
    assert r.status_code == 200 and r.json()["customer"]["name"] == "王一"
    assert r.json()["customer"]["id_number"] == "EC112345"
    for user in ("acme.ops", "acme.advisor"):
        r = tc.get("/v1/customers/C1?unmask=true",
                   headers={**_token(tc, user), "X-Caifu-Reason": quote("想看看")})
        assert r.status_code == 403, user
    r = tc.get("/v1/customers/C3?unmask=true",  # out of scope: 404 before anything else
               headers={**_token(tc, "acme.advisor"), "X-Caifu-Reason": quote("想看看")})
    assert r.status_code == 404
    [rec] = audit.records(c, "acme")
    assert (rec.entry.actor, rec.entry.action, rec.entry.customer_ids) == (
        "acme.compliance", "unmask", ("C1",))
    assert rec.entry.reason == "客户投诉核查" and audit.verify(c, "acme").ok


def test_api_keys_act_for_their_tenant_only(client) -> None:  # type: ignore[no-untyped-def]
    tc, c = client
    key = users.create_key(c, "beta", "ops", "crm-sync", "beta.admin")
    h = {"Authorization": f"Bearer {key.secret}"}
    assert tc.get("/v1/customers/B1", headers=h).status_code == 200
    assert tc.get("/v1/customers/C1", headers=h).status_code == 404
    users.revoke_key(c, "beta", key.key_id, "beta.admin")
    assert tc.get("/v1/customers/B1", headers=h).status_code == 401


def test_a_key_over_its_quota_gets_429_with_retry_after(client) -> None:  # type: ignore[no-untyped-def]
    tc, c = client
    key = users.create_key(c, "acme", "ops", "batch-job", "acme.admin", quota_per_minute=3)
    h = {"Authorization": f"Bearer {key.secret}"}
    codes = [tc.get("/v1/customers/C1", headers=h).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = tc.get("/v1/customers/C1", headers=h)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 20
    assert "quota of 3 requests a minute" in r.text
    assert tc.get("/v1/customers/C1", headers=_token(tc, "acme.ops")).status_code == 200


def test_a_console_session_has_the_service_wide_quota_per_user(workspace: Container) -> None:
    _seed(workspace)
    with serving(create_app(Settings(secret_key=SECRET, session_quota_per_minute=3),
                            workspace)) as tc:
        ops, comp = _token(tc, "acme.ops"), _token(tc, "acme.compliance")
        codes = [tc.get("/v1/customers/C1", headers=ops).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert "a console session's quota of 3" in tc.get("/v1/customers/C1",
                                                          headers=ops).text
        assert tc.get("/v1/customers/C1", headers=comp).status_code == 200  # his own bucket


@pytest.mark.real_socket  # the profiles router over uvicorn
def test_bad_credentials_are_401(client) -> None:  # type: ignore[no-untyped-def]
    tc, _ = client
    assert tc.get("/v1/customers/C1").status_code == 401
    for token in ("nonsense", "cf_0a1b2c3d_" + "A" * 43, "ct_e30.AAAA"):
        r = tc.get("/v1/customers/C1", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    expired = sessions.issue(SECRET, Principal("acme", "acme.ops", "ops"), minutes=1,
                             now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert tc.get("/v1/customers/C1",
                  headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    forged = sessions.issue("another-secret-0123456789abcdefghijkl",
                            Principal("acme", "x", "compliance"), minutes=10)
    assert tc.get("/v1/customers/C1",
                  headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    r = tc.post("/v1/auth/login", json={"user_id": "acme.ops", "password": "wrong password"})
    assert r.status_code == 401 and r.json() == {
        "error": {"code": "unauthenticated", "message": "wrong user id or password"},
        "detail": [{"problem": "wrong user id or password"}]}


def test_bad_input_gets_a_clear_4xx(client) -> None:  # type: ignore[no-untyped-def]
    tc, _ = client
    r = tc.post("/v1/auth/login", json={"user_id": "x"})
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["detail"]}
    assert fields == {"body.user_id", "body.password"}
    r = tc.post("/v1/auth/login", content=b"{" * 20_000,
                headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than 10,000 bytes" in r.text
    r = tc.get("/v1/customers/C1?unmask=true",
               headers={**_token(tc, "acme.compliance"), "X-Caifu-Reason": "%FF%FE"})
    assert r.status_code == 422 and "percent-encoded UTF-8" in r.text
    r = tc.get("/v1/customers/" + "9" * 40, headers=_token(tc, "acme.ops"))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "path.customer_id"


def test_health_and_openapi(client) -> None:  # type: ignore[no-untyped-def]
    tc, _ = client
    assert tc.get("/healthz").json() == {"status": "ok"}
    assert tc.get("/readyz").json() == {"status": "ready"}
    ops = {op["operationId"] for path in tc.get("/openapi.json").json()["paths"].values()
           for op in path.values()}
    assert ops == {  # the public surface: a change here is a change of the API (docs/api.md)
        "healthz", "readyz", "login",
        "get_customer", "search_customers", "list_tags", "list_segments", "segment_members",
        "push_events", "upload_file", "list_batches", "list_quarantine",
        "quality_overview", "quality_history",
        "submit_job", "list_jobs", "get_job",
        "list_customer_values", "value_rollup", "redemption_answers", "reassurance_list",
        "export_customer_data", "erase_customer_data", "list_privacy_requests",
        "list_wecom_rejections", "intake_chat_archive", "list_chat_flags", "decide_chat_flag",
        "create_campaign_run", "send_campaign", "poll_campaign", "compare_campaigns",
        "campaign_funnel", "campaign_decisions",
        "intake_risk_documents", "list_risk_stories", "get_risk_story", "list_risk_rejections",
        "classify_risk_story", "list_risk_alerts", "list_risk_tasks", "set_risk_task_status",
        "get_recommendations", "group_content_plan", "metrics", "get_data_dictionary",
        "list_metrics", "query_metric"}


def test_the_service_refuses_a_placeholder_secret() -> None:
    for secret in (None, "changeme", "short", "a" * 40):
        with pytest.raises(ConfigError, match="CAIFU_SECRET_KEY"):
            create_app(Settings(secret_key=secret))


def test_the_fast_encoding_gives_fastapis_json(scored) -> None:  # type: ignore[no-untyped-def]
    """The 360 is encoded by json directly (api.deps.json_response); for real customers it
    must be the same JSON FastAPI's jsonable_encoder would have produced."""
    import json
    from decimal import Decimal

    from fastapi.encoders import jsonable_encoder

    from caifu.api.deps import json_response
    from caifu.services.profiles.build import Build
    from caifu.services.profiles.cards import Cards
    from caifu.services.profiles.customers import customer_view, examples

    c, _, _ = scored
    Build(c).build("acme")
    Cards(c).build("acme")  # features, tags and cards: the 360 at its fullest
    ids = examples(c, "acme", ["dormant", "high_net_worth", "fund_heavy"], n=5)
    assert len(ids) >= 3
    for cid in ids:
        view = customer_view(c, "acme", cid)
        assert view["card"] and view["features"] and view["tags"]
        assert json.loads(json_response(view).body) == jsonable_encoder(view)
    sample = {"d": dt.date(2026, 1, 2), "t": dt.datetime(2026, 1, 2, 3, 4, 5),
              "m": Decimal("12.50"), "n": Decimal("3")}
    assert json.loads(json_response(sample).body) == jsonable_encoder(sample)
