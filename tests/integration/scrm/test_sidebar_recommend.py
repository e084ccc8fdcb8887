"""The sidebar's recommendations over HTTP (WeCom faked), on SQLite and PostgreSQL: before a
publish the newest content, labelled so; after it the ranked list with a reason per item,
logged as shown by the advisor; send and dismiss stamped on the log and audited, only for the
chat's own customer; an assessment made after publishing takes effect at once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES, audit_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.services.container import Container
from caifu.services.scrm import sidebar as sb
from tests.integration.recommend.world import assess, item, write_lists
from tests.integration.scrm.test_sidebar import make_app, new_fake, seed, sign_in
from tests.serving import serving, wants_socket

# C1 (C3, growth, long) as published: an R3 note first, then R2, an action and R1
RANKED = [item("N4", "content", "R3", 3.0, "近一年交易过创业板股票；近期看过 4 次创业板相关内容"),
          item("N1", "content", "R2", 2.0, "近期看过 2 篇研报"),
          item("A:subscribe_level2", "action", "R1", 1.0, "近 90 天有 2 笔交易", valid_from=None),
          item("N3", "content", "R1", 0.5, "C3 投资者近期热门")]


def publish_for_c1(c: Container) -> None:
    """N4, an R3 advisor view, beside the sidebar test's N1–N3; C1's list published."""
    with c.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["content_items"]).values(
            tenant_id="acme", content_id="N4", content_type="advisor_view",
            title="创业板成长股四季度展望", risk_level="R3", published_at=dt.datetime(2026, 10, 29),
            url="https://research.example.com/N4"))
    write_lists(c, "acme", {"C1": RANKED})


Side = tuple[httpx.Client, Container, FakeWeCom]


@pytest.fixture
def side(request: pytest.FixtureRequest, workspace: Container) -> Iterator[Side]:
    """The sidebar test's world (``test_sidebar.seed``), served."""
    fake = new_fake()
    seed(workspace, fake)
    with serving(make_app(workspace), wants_socket(request)) as http:
        yield http, workspace, fake


def test_before_a_publish_the_newest_content_is_labelled(side: Side) -> None:
    http, _, fake = side
    sign_in(http, fake)
    html = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"}).text
    assert 'data-testid="newest-content"' in html and "尚未生成个性化推荐" in html
    assert 'data-testid="recommended"' not in html


@pytest.mark.dialect
def test_the_ranked_list_with_reasons_logged_and_acted_on(side: Side) -> None:
    http, c, fake = side
    publish_for_c1(c)
    sign_in(http, fake)
    r = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"})
    assert r.status_code == 200, r.text
    html = r.text
    assert 'data-testid="recommended"' in html and "尚未生成个性化推荐" not in html
    titles = ["创业板成长股四季度展望", "宁德时代三季报点评：盈利修复", "订阅 Level-2 深度行情",
              "货币基金与国债逆回购入门"]
    assert [html.index(t) for t in titles] == sorted(html.index(t) for t in titles)  # ranked
    for x in RANKED:
        assert x["reason"] in html
    assert "适当性：C3 可推荐 R3" in html
    assert html.count(str(http.base_url).rstrip("/") + "/t/") == 3  # N4, N1, N3 carry links
    with c.engine.connect() as conn:
        shown = repo.log_rows(conn, "acme", "C1")
    assert [(x.rank, x.item_id, x.surface, x.shown_by) for x in shown] == [
        (n, i["item_id"], "sidebar", "wecom:wangxm") for n, i in enumerate(RANKED, 1)]
    n4, n1 = shown[0].rec_id, shown[1].rec_id
    assert f'data-rec="{n4}"' in html
    # sent (the page reports it once WeCom took the message) and dismissed
    for rec, outcome, stamped in ((n4, "sent", True), (n4, "sent", False),
                                  (n1, "dismissed", True)):
        a = http.post("/wecom/acme/sidebar/recommendation",
                      json={"external_userid": "wmC1", "rec_id": rec, "outcome": outcome})
        assert a.status_code == 200 and a.json() == {"stamped": stamped}
    with c.engine.connect() as conn:
        marks = {x.rec_id: (x.sent_at is not None, x.dismissed_at is not None)
                 for x in repo.log_rows(conn, "acme", "C1")}
        actions = conn.execute(select(audit_log.c.action, audit_log.c.customer_ids_json).where(
            audit_log.c.action.like("recommend_%"))).all()
    assert marks[n4] == (True, False) and marks[n1] == (False, True)
    assert [(a, json.loads(ids)) for a, ids in actions] == [
        ("recommend_send", ["C1"]), ("recommend_send", ["C1"]), ("recommend_dismiss", ["C1"])]
    # not the chat's customer, a chat he may not see, a forged id: the one refusal
    for ext, rec in (("wmC3", n4), ("wmC2", n4), ("wmC1", "f" * 32)):
        a = http.post("/wecom/acme/sidebar/recommendation",
                      json={"external_userid": ext, "rec_id": rec, "outcome": "sent"})
        assert a.status_code == 403 and a.json() == {"detail": sb.DENIED}
    bad = http.post("/wecom/acme/sidebar/recommendation",
                    json={"external_userid": "wmC1", "rec_id": n4, "outcome": "converted"})
    assert bad.status_code == 422
    # the next view: N4 was sent, N1 dismissed — both held back
    again = http.post("/wecom/acme/sidebar/context", json={"external_userid": "wmC1"}).json()
    assert [i["item_id"] for i in again["recommended"]["items"]] == ["A:subscribe_level2", "N3"]
    assert again["recommended"]["withheld"] == {"RECENTLY_SENT": 1, "DISMISSED": 1}
    assert again["content"] is None


def test_an_assessment_after_publishing_counts_at_once(side: Side) -> None:
    http, c, fake = side
    publish_for_c1(c)
    assess(c, "acme", "S1-today", "C1", "C2", on=dt.date.today())
    sign_in(http, fake)
    html = http.post("/wecom/acme/sidebar/card", json={"external_userid": "wmC1"}).text
    assert "创业板成长股四季度展望" not in html and "宁德时代三季报点评" in html
    assert "另有 1 条推荐因客户或产品信息变化" in html and "适当性：C2" in html
    assert c.counters.value("caifu_recommend_recheck_refused_total", tenant="acme",
                            surface="sidebar", rule="LEVEL_MISMATCH") == 1
