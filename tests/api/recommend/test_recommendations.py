"""``GET /v1/customers/{id}/recommendations`` and ``GET /metrics`` over HTTP, on SQLite and
PostgreSQL: every role gets its scope (404 outside it, as for the customer 360), the answer
is the list judged again now, each call audited and logged; the re-check's refusals show in
the metrics, a tenant's roles seeing only their tenant's series."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import recommend as repo
from caifu.api.schemas.recommend import RecommendationList
from caifu.core.clock import FixedClock
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.recommend import serving
from tests.api.profiles.test_customers import SEES, _token
from tests.integration.recommend.world import NOON, VERSION, assess, item, write_lists

LIST = [item("N1", "content", "R2", 2.0, "近期看过 2 篇研报"),
        item("A:subscribe_level2", "action", "R1", 1.5, "近 90 天有 8 笔交易", valid_from=None),
        item("N2", "content", "R3", 1.0, "C3 投资者近期热门")]


def _publish(c: Container) -> None:
    """Content N1 (R2, a URL) and N2 (R3); C1 and C2 assessed C3; lists for acme's C1 and C2
    and beta's B1 (C3 of acme is left out of the publish)."""
    T = CONTRACT_TABLES
    with c.engine.begin() as conn:
        for tenant in ("acme", "beta"):
            for cid, level, url in (("N1", "R2", "https://research.example.com/N1"),
                                    ("N2", "R3", None)):
                conn.execute(insert(T["content_items"]).values(
                    tenant_id=tenant, content_id=cid, content_type="research_report",
                    title=f"研报{cid}", risk_level=level,
                    published_at=dt.datetime(2026, 10, 28), url=url))
    for tenant, aid, cid in (("acme", "S1", "C1"), ("acme", "S2", "C2"), ("beta", "S9", "B1")):
        assess(c, tenant, aid, cid, "C3")
    write_lists(c, "acme", {"C1": LIST, "C2": LIST})
    write_lists(c, "beta", {"B1": LIST[:1]}, k=1)
    c.clock = FixedClock(NOON)


@pytest.mark.dialect
def test_every_role_gets_its_scope_audited(client: tuple[httpx.Client, Container]) -> None:
    tc, c = client
    _publish(c)
    answered = 0
    for user, sees in SEES.items():
        headers = _token(tc, user)
        for cid in ("C1", "C2", "C3", "B1", "NOPE"):
            r = tc.get(f"/v1/customers/{cid}/recommendations", headers=headers)
            if user == "root.admin":  # no tenant's customer data at all
                assert r.status_code == 403, r.text
                continue
            assert r.status_code == (200 if cid in sees else 404), (user, cid, r.text)
            if r.status_code == 404:
                assert r.json()["error"]["message"] == f"no customer {cid!r}"
                continue
            answered += 1
            body = RecommendationList.model_validate(r.json())
            if cid == "C3":
                assert not body.published and body.items == []
                assert body.notes == ["no list for this customer in the last publish"]
            else:
                assert [i.item_id for i in body.items] == ["N1", "A:subscribe_level2", "N2"]
    views = [(r.entry.actor, r.entry.customer_ids) for r in audit.records(c, "acme")
             if r.entry.action == "recommend_view"]
    assert len(views) == answered and ("acme.advisor", ("C2",)) in views
    assert audit.verify(c, "acme").ok


def test_the_answer_is_judged_now_and_logged(client: tuple[httpx.Client, Container]) -> None:
    tc, c = client
    _publish(c)
    advisor = _token(tc, "acme.advisor")
    r = tc.get("/v1/customers/C1/recommendations?k=2", headers=advisor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["k"], body["as_of"], body["policy_version"], body["investor_level"]) == (
        2, "2026-10-30", VERSION, "C3")
    n1, level2 = body["items"]
    assert (n1["item_id"], n1["rank"], n1["reason"], n1["rule"], n1["rule_version"]) == (
        "N1", 1, "近期看过 2 篇研报", "OK", "suitability-2017-sac.1")
    link = n1["text"].splitlines()[1]  # the request's own base, as a campaign's links
    assert link.startswith(str(tc.base_url).rstrip("/") + "/t/"), link
    hit = tc.get(link, follow_redirects=False)  # the customer taps it: no sign-in
    assert hit.status_code == 302 and hit.headers["location"] == "https://research.example.com/N1"
    assert "投资顾问：投顾（执业编号 A0120612345678）" in n1["text"]  # the calling advisor
    assert level2["title"] == "订阅 Level-2 深度行情" and level2["type"] == "服务"
    with c.engine.connect() as conn:
        logged = repo.log_rows(conn, "acme", "C1")
    assert [(x.rec_id, x.surface, x.shown_by, x.rank, x.shown_at, x.clicked_at)
            for x in logged] == [(n1["rec_id"], "api", "acme.advisor", 1, NOON, NOON),
                                 (level2["rec_id"], "api", "acme.advisor", 2, NOON, None)]
    for bad in ("0", "51", "x"):
        assert tc.get(f"/v1/customers/C1/recommendations?k={bad}",
                      headers=advisor).status_code == 422


def test_refusals_show_in_the_metrics_by_tenant(client: tuple[httpx.Client, Container]) -> None:
    tc, c = client
    _publish(c)
    assess(c, "acme", "S1-new", "C1", "C2", on=dt.date(2026, 10, 30))
    ops = _token(tc, "acme.ops")
    body = tc.get("/v1/customers/C1/recommendations", headers=ops).json()
    assert [i["item_id"] for i in body["items"]] == ["N1", "A:subscribe_level2"]
    assert body["refused"] == {"LEVEL_MISMATCH": 1}
    c.counters.inc(serving.REFUSED, 7, tenant="beta", surface="sidebar", rule="NO_CONSENT")
    series = 'caifu_recommend_recheck_refused_total{rule="LEVEL_MISMATCH",surface="api",tenant="acme"} 1'
    theirs = 'tenant="beta"'
    r = tc.get("/metrics", headers=ops)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert series in r.text.splitlines() and theirs not in r.text
    assert "# TYPE caifu_recommend_recheck_refused_total counter" in r.text
    everything = tc.get("/metrics", headers=_token(tc, "root.admin")).text
    assert series in everything.splitlines() and theirs in everything
    assert tc.get("/metrics", headers=_token(tc, "acme.advisor")).status_code == 403
    assert tc.get("/metrics").status_code == 401
