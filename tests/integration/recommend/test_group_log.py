"""Group posts on the recommendation log (surface ``group``): a post of an item in the group's
content plan is one row per member the plan counts, with the item's place, its vote (or its
readers, for a popularity item) and the lists' policy version; a failed post, an item outside
the plan and a repeated send log nothing more; ``recommend outcomes`` converts the rows and
``recommend ope`` leaves them out, saying so.

The world is ``test_campaigns``' (ON, advisors, customers C01..C09, content RPT1 R3 and
BAD1) with a preference group ``新能源`` whose chat holds C01, C05 and C07 (C09 left it) and
whose stored plan has C01 and C07 as members. Published lists (from ``test_campaign_log``):
C01 [N1, N2, RPT1, …], C07 [RPT1, N1, …]. With the plan's k = 10 the votes are
N1 1 + 0.9 = 1.9, RPT1 0.8 + 1 = 1.8 (N2..N5 are not in the catalogue); then popularity fills
in N9 (2 readers); OLD1 is past its validity and BAD1 fails the lexicon."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.recommend_models import recommendation_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.adapters.sor.scrm_models import (
    preference_group_members,
    preference_groups,
    wecom_group_members,
    wecom_groups,
)
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.cli import app
from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.recommend import group_log, outcomes
from caifu.services.scrm.campaigns import Campaigns
from tests.integration.recommend import world as rworld
from tests.integration.recommend.test_campaign_log import _list
from tests.integration.scrm.test_campaigns import ON, _lake, _seed

T = CONTRACT_TABLES
GROUP = "新能源"
LISTS = {"C01": _list(3), "C07": _list(1)}
CHAT = ("C01", "C05", "C07")  # the chat's active members linked to customers


@pytest.fixture
def posts(workspace: Container) -> Iterator[tuple[Container, FakeWeCom]]:
    c, fake = workspace, FakeWeCom()
    _seed(c, fake)
    chat = fake.add_group_chat("lisi", [f"wm{m}" for m in CHAT], name="新能源交流群")
    now = ON - dt.timedelta(days=1)
    with c.engine.begin() as conn:
        for cid, title, published in (
                ("N1", "新能源基金月报", ON - dt.timedelta(days=1)),
                ("N9", "储能产业链图谱", ON - dt.timedelta(days=2)),
                ("OLD1", "去年新能源回顾", ON - dt.timedelta(days=200))):
            conn.execute(insert(T["content_items"]).values(
                tenant_id="acme", content_id=cid, content_type="research_report", title=title,
                risk_level="R1", published_at=published, url="https://research.example/x"))
        for cid, content in (("HD5", "OLD1"), ("HD6", "N9")):
            conn.execute(insert(T["campaigns"]).values(
                tenant_id="acme", campaign_id=cid, name=f"群推送 {content}", channel="group",
                content_id=content, goal="fund_purchase", starts_on=dt.date(2025, 3, 1)))
        conn.execute(insert(wecom_groups).values(
            tenant_id="acme", chat_id=chat, name="新能源交流群", owner="lisi", status="active",
            needs_resync=False, created_at=now, updated_at=now))
        for cid in (*CHAT, "C09"):
            conn.execute(insert(wecom_group_members).values(
                tenant_id="acme", chat_id=chat, member_id=f"wm{cid}", member_type="external",
                active=cid != "C09", joined_at=now - dt.timedelta(days=5),
                left_at=now if cid == "C09" else None))
        conn.execute(insert(preference_groups).values(
            tenant_id="acme", group_id=GROUP, name=GROUP, rule="tag:新能源",
            level_policy="lowest_member", chat_id=chat, created_at=now, updated_at=now))
        for cid in ("C01", "C07"):
            conn.execute(insert(preference_group_members).values(
                tenant_id="acme", group_id=GROUP, customer_id=cid, status="member",
                reason="标签", risk_level=None, updated_at=now))
    rworld.write_lists(c, "acme", LISTS, k=3)
    _lake(c, "app_events", [  # N9's readers over the last 90 days: C01 and C09
        {"event_id": f"V{i}", "customer_id": cid, "event_time": ON - dt.timedelta(days=1),
         "event_type": "view_content", "content_id": "N9"}
        for i, cid in enumerate(("C01", "C09", "C01"))])
    c.clock = FixedClock(ON)
    yield c, fake


def _log(c: Container) -> dict[tuple[str, str], Any]:
    t = recommendation_log
    with c.engine.connect() as conn:
        return {(r.item_id, r.customer_id): r
                for r in conn.execute(select(t).where(t.c.tenant_id == "acme"))}


def _post(c: Container, campaign_id: str, on: dt.datetime) -> Any:
    svc = Campaigns(c)
    svc.create_run("acme", campaign_id, actor="acme.ops", group_id=GROUP, on=on)
    return svc.send("acme", campaign_id, actor="acme.ops", link_base="https://x", on=on)


def test_a_planned_post_is_one_row_per_member_with_its_place_in_the_plan(posts) -> None:  # type: ignore[no-untyped-def]
    c, fake = posts
    sent = _post(c, "HD3", ON)
    assert (sent.sent, sent.failed, sent.logged, sent.not_logged) == (2, 0, 3, 0)
    assert len(fake.mass_sends) == 1  # one post to the chat
    log = _log(c)
    assert set(log) == {("RPT1", m) for m in CHAT}  # C05 is in the chat, not in the plan
    for row in log.values():
        assert (row.surface, row.item_type, row.rank) == ("group", "content", 2)
        assert row.score == pytest.approx(1.8)
        assert (row.policy_version, row.propensity, row.explored) == (rworld.VERSION, 1.0,
                                                                      False)
        assert (row.shown_at, row.sent_at, row.shown_by) == (ON, ON, "acme.ops")
        assert row.tracking_token is None
        assert row.opened_at is None and row.clicked_at is None
    assert len({r.list_id for r in log.values()}) == 3

    # an hour later N9: RPT1 is now refused as recently posted, so N1 first and N9 second —
    # filled by popularity: its score is its 2 readers, its version the fallback's
    later = ON + dt.timedelta(hours=1)
    sent = _post(c, "HD6", later)
    assert (sent.sent, sent.logged, sent.not_logged) == (2, 3, 0)
    log = _log(c)
    for m in CHAT:
        row = log[("N9", m)]
        assert (row.rank, row.score, row.policy_version) == (2, 2.0, "group-popularity")
        assert row.shown_at == later
    assert len(log) == 6

    # OLD1 is past its validity: the plan does not hold it, the post is no recommendation
    sent = _post(c, "HD5", later + dt.timedelta(hours=1))
    assert (sent.sent, sent.logged, sent.not_logged) == (2, 0, 3)
    assert len(_log(c)) == 6
    out = CliRunner().invoke(app, ["campaign", "send", "HD5", "-t", "acme", "-w", str(c.root)])
    assert out.exit_code != 0  # sent already: refused, nothing more logged
    assert len(_log(c)) == 6


def test_a_failed_post_logs_nothing_and_a_repeat_is_not_logged_twice(posts) -> None:  # type: ignore[no-untyped-def]
    c, fake = posts
    fake.fail_next("externalcontact/add_msg_template", 40058)
    sent = _post(c, "HD3", ON)
    assert (sent.sent, sent.failed, sent.logged, sent.not_logged) == (0, 2, 0, 0)
    assert _log(c) == {}
    with pytest.raises(ConfigError, match="no gated run"):
        Campaigns(c).send("acme", "HD3", actor="acme.ops", link_base="https://x", on=ON)

    # the same campaign's post logged again (a send retried after its rows were written):
    # the rows are keyed by (campaign, member) and not written twice
    placed = group_log.place(c, "acme", GROUP, "RPT1", ["C01", "C07"], ON)
    assert (placed.rank, placed.members) == (2, CHAT)
    with c.engine.begin() as conn:
        first = group_log.log_post(conn, "acme", "HD9", placed, actor="acme.ops", on=ON)
    with c.engine.begin() as conn:
        again = group_log.log_post(conn, "acme", "HD9", placed, actor="acme.ops",
                                   on=ON + dt.timedelta(minutes=5))
    assert (first.logged, first.already, again.logged, again.already) == (3, 0, 0, 3)
    assert {r.shown_at for r in _log(c).values()} == {ON}


def test_outcomes_convert_a_member_who_read_the_item_after_the_post(posts) -> None:  # type: ignore[no-untyped-def]
    c, _fake = posts
    _post(c, "HD3", ON)
    read_at = ON + dt.timedelta(days=1, hours=3)
    _lake(c, "app_events", [  # C05 reads RPT1 the next day; C01 read it only before the post
        {"event_id": "E1", "customer_id": "C05", "event_time": read_at,
         "event_type": "view_content", "content_id": "RPT1"},
        {"event_id": "E2", "customer_id": "C01", "event_time": ON - dt.timedelta(days=2),
         "event_type": "view_content", "content_id": "RPT1"}])
    c.clock = FixedClock(ON + dt.timedelta(days=3))
    done = outcomes.convert(c, "acme")
    assert (done.checked, done.converted) == (3, 1)
    log = _log(c)
    assert log[("RPT1", "C05")].converted_at == dt.datetime.combine(read_at.date(), dt.time())
    assert log[("RPT1", "C01")].converted_at is None
    assert log[("RPT1", "C07")].converted_at is None


OPS = Principal("acme", "acme.ops", "ops")


def test_ope_leaves_group_rows_out_and_says_so(workspace: Container) -> None:
    c = workspace
    rworld.served_days(c)
    placed = group_log.Placement("N1", 1, 1.5, rworld.VERSION, ("C1", "C3"))
    with c.engine.begin() as conn:
        clicked = rworld.click_first_slots(conn)
        got = group_log.log_post(conn, "acme", "HDG", placed, actor="acme.ops",
                                 on=rworld.NOON + dt.timedelta(days=1))
        assert got.logged == 2
        for cid in ("C1", "C3"):  # even if they were stamped, they are no list's clicks
            repo.mark(conn, "acme", group_log.rec_id("HDG", cid), "clicked",
                      rworld.NOON + dt.timedelta(days=1))
    out = rworld.ope_logging(c)
    assert out.exit_code == 0, out.output
    assert "10 lists of 2 customers" in out.output
    line = next(x for x in out.output.splitlines() if "logging (on-policy)" in x)
    assert f"{len(clicked) / 10:.4f}" in line
    assert "2 group post row(s) on the log left out" in " ".join(out.output.split())

    with c.engine.begin() as conn:  # only group rows left: refused, naming them
        conn.execute(recommendation_log.delete().where(recommendation_log.c.surface != "group"))
    out = rworld.ope_logging(c)
    assert out.exit_code == 2
    assert "only 2 group post row(s)" in " ".join(out.output.split())
