"""A top-k campaign's sends on the recommendation log (surface ``campaign``): one row per
message actually sent, with the item's rank, score and policy version in the published list;
the tracking link stamps the row; a failed or blocked contact, a repeated send and a run of
another target log nothing; ``recommend outcomes`` converts the rows and ``recommend ope``
leaves them out, saying so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from caifu.adapters.sor.recommend_models import recommendation_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.adapters.sor.scrm_models import campaign_contacts
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.recommend import campaign_log, outcomes
from caifu.services.scrm.campaigns import Campaigns
from caifu.services.scrm.funnel import record_hit
from tests.integration.recommend import world as rworld
from tests.integration.scrm.test_campaigns import ON, URL, _lake, _seed

K = 3
VERSION = rworld.VERSION


def _list(rpt_rank: int, n: int = 6) -> list[dict[str, Any]]:
    """A published list of ``n`` items with RPT1 at ``rpt_rank`` (scores falling by rank)."""
    out = [rworld.item(f"N{i}", "content", "R1", 3.0 - 0.25 * i, "相似客户常看")
           for i in range(1, n)]
    out.insert(rpt_rank - 1, rworld.item("RPT1", "content", "R3", 3.1 - 0.25 * rpt_rank,
                                         "近期看过 3 篇储能研报"))
    return out


# customer → RPT1's rank in his list; C01 and C07 pass the gate, C02 (lowest category) and
# C05 (frequency cap) are blocked, C03 has it outside the top 3 (not targeted)
RANKS = {"C01": 2, "C07": 1, "C02": 3, "C05": 1, "C03": 5}
LISTS = {cid: _list(r) for cid, r in RANKS.items()}


@pytest.fixture
def topk(workspace: Container) -> Iterator[tuple[Container, FakeWeCom]]:
    fake = FakeWeCom()
    _seed(workspace, fake)
    rworld.write_lists(workspace, "acme", LISTS, k=K)
    yield workspace, fake


def _log(c: Container) -> dict[str, Any]:
    t = recommendation_log
    with c.engine.connect() as conn:
        return {r.customer_id: r for r in conn.execute(select(t).where(t.c.tenant_id == "acme"))}


def _tokens(c: Container) -> dict[str, str | None]:
    k = campaign_contacts
    with c.engine.connect() as conn:
        return {r.customer_id: r.tracking_token for r in conn.execute(
            select(k.c.customer_id, k.c.tracking_token).where(k.c.campaign_id == "HD1"))}


def test_each_send_is_logged_with_its_rank_and_its_link_stamps_it(topk) -> None:  # type: ignore[no-untyped-def]
    c, _fake = topk
    svc = Campaigns(c)
    run = svc.create_run("acme", "HD1", actor="acme.ops", recommended_k=K, on=ON)
    assert (run.targeted, run.allowed) == (4, 2)  # C03's rank 5 is outside the top 3
    sent = svc.send("acme", "HD1", actor="acme.ops", link_base="https://caifu.example",
                    on=ON)
    assert (sent.sent, sent.failed, sent.logged, sent.not_logged) == (2, 0, 2, 0)
    log, tokens = _log(c), _tokens(c)
    assert set(log) == {"C01", "C07"}  # the blocked and the untargeted: no row
    for cid, row in log.items():
        listed = LISTS[cid][RANKS[cid] - 1]
        assert listed["item_id"] == "RPT1"
        assert (row.surface, row.item_id, row.item_type) == ("campaign", "RPT1", "content")
        assert (row.rank, row.score) == (RANKS[cid], pytest.approx(listed["score"]))
        assert (row.policy_version, row.propensity, row.explored) == (VERSION, 1.0, False)
        assert (row.shown_at, row.sent_at, row.shown_by) == (ON, ON, "acme.ops")
        assert row.tracking_token == tokens[cid] and row.tracking_token
        assert row.opened_at is None and row.clicked_at is None
    assert log["C01"].list_id != log["C07"].list_id

    # the tracking link: C01 clicks, C07 opens; the contact and the logged row both stamped
    later = ON + dt.timedelta(hours=2)
    assert record_hit(c, tokens["C01"] or "", "click", later) == URL
    assert record_hit(c, tokens["C07"] or "", "open", later + dt.timedelta(hours=1)) == URL
    log = _log(c)
    assert (log["C01"].opened_at, log["C01"].clicked_at) == (later, later)
    assert (log["C07"].opened_at, log["C07"].clicked_at) == (later + dt.timedelta(hours=1),
                                                             None)
    k = campaign_contacts
    with c.engine.connect() as conn:
        clicked = conn.execute(select(k.c.clicked_at).where(k.c.customer_id == "C01")).scalar()
    assert clicked == later

    # sending again: refused, nothing logged twice — and the helper itself skips known tokens
    with pytest.raises(ConfigError, match="no gated run"):
        svc.send("acme", "HD1", actor="acme.ops", link_base="https://caifu.example", on=ON)
    with c.engine.begin() as conn:
        again = campaign_log.log_sends(
            conn, "acme", "RPT1", [campaign_log.Send(cid, tokens[cid]) for cid in log],
            actor="acme.ops", on=ON)
    assert (again.logged, again.already) == (0, 2)
    assert len(_log(c)) == 2


def test_a_failed_send_and_a_list_without_the_item_are_not_logged(topk) -> None:  # type: ignore[no-untyped-def]
    c, fake = topk
    svc = Campaigns(c)
    svc.create_run("acme", "HD1", actor="acme.ops", recommended_k=K, on=ON)
    # C01 (first by id) fails at WeCom; C07's list is re-published without RPT1 before the send
    fake.fail_next("externalcontact/add_msg_template", 40058)
    rworld.write_lists(c, "acme", {**LISTS, "C07": [x for x in LISTS["C07"]
                                                    if x["item_id"] != "RPT1"]}, k=K)
    sent = svc.send("acme", "HD1", actor="acme.ops", link_base="https://caifu.example",
                    on=ON)
    assert (sent.sent, sent.failed, sent.logged, sent.not_logged) == (1, 1, 0, 1)
    assert _log(c) == {}


def test_runs_of_other_targets_are_not_logged(topk) -> None:  # type: ignore[no-untyped-def]
    c, _fake = topk
    svc = Campaigns(c)
    svc.create_run("acme", "HD1", actor="acme.ops", customer_ids=list(RANKS), on=ON)
    sent = svc.send("acme", "HD1", actor="acme.ops", link_base="https://caifu.example",
                    on=ON)
    assert (sent.sent, sent.logged, sent.not_logged) == (2, 0, 0)
    assert _log(c) == {}


def test_outcomes_convert_a_campaign_row_when_the_customer_read_the_item(topk) -> None:  # type: ignore[no-untyped-def]
    c, _fake = topk
    svc = Campaigns(c)
    svc.create_run("acme", "HD1", actor="acme.ops", recommended_k=K, on=ON)
    svc.send("acme", "HD1", actor="acme.ops", link_base="https://caifu.example", on=ON)
    read_at = ON + dt.timedelta(days=1, hours=3)
    _lake(c, "app_events", [  # C01 reads it the next day; C07 read it only before the send
        {"event_id": "E1", "customer_id": "C01", "event_time": read_at,
         "event_type": "view_content", "content_id": "RPT1"},
        {"event_id": "E2", "customer_id": "C07", "event_time": ON - dt.timedelta(days=2),
         "event_type": "view_content", "content_id": "RPT1"}])
    c.clock = FixedClock(ON + dt.timedelta(days=3))
    done = outcomes.convert(c, "acme")
    assert (done.checked, done.converted) == (2, 1)
    log = _log(c)
    assert log["C01"].converted_at == dt.datetime.combine(read_at.date(), dt.time())
    assert log["C07"].converted_at is None


OPS = Principal("acme", "acme.ops", "ops")


def test_ope_leaves_campaign_rows_out_and_says_so(workspace: Container) -> None:
    c = workspace
    rworld.served_days(c)
    with c.engine.begin() as conn:  # a campaign send of N1 to both, clicked: not a list
        clicked = rworld.click_first_slots(conn)
        got = campaign_log.log_sends(conn, "acme", "N1", [
            campaign_log.Send("C1", "tok-c1"), campaign_log.Send("C3", "tok-c3")],
            actor="acme.ops", on=rworld.NOON + dt.timedelta(days=1))
        assert got.logged == 2
        for r in conn.execute(select(recommendation_log.c.rec_id).where(
                recommendation_log.c.surface == "campaign")):
            repo.mark(conn, "acme", r.rec_id, "clicked", rworld.NOON + dt.timedelta(days=1))
    out = rworld.ope_logging(c)
    assert out.exit_code == 0, out.output
    # 10 sidebar lists, one click each: 1.0 per list (with the campaign rows it would be 12
    # lists, 12 clicks — still 1.0 — so the count is what tells them apart)
    assert "10 lists of 2 customers" in out.output
    line = next(x for x in out.output.splitlines() if "logging (on-policy)" in x)
    assert f"{len(clicked) / 10:.4f}" in line
    assert "2 campaign send(s) on the log left out" in " ".join(out.output.split())

    with c.engine.begin() as conn:  # only campaign sends left: refused, naming them
        conn.execute(recommendation_log.delete().where(
            recommendation_log.c.surface != "campaign"))
    out = rworld.ope_logging(c)
    assert out.exit_code == 2
    assert "only 2 campaign send(s)" in " ".join(out.output.split())
