"""Serving a published list (``services/recommend/serving``) against the facts as they are
now, on SQLite and (where the SQL differs: COPY, row-level security) PostgreSQL: exactly k when
k pass, refusals by rule in the re-check counter, the log's values, outcomes, tenants apart."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import delete, select, update

from caifu.adapters.sor import rls
from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.recommend_models import recommendation_lists, recommendation_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.workspace import create_tenant
from caifu.services.recommend import outcomes, serving
from caifu.services.scrm.funnel import record_hit
from tests.integration.recommend.world import (
    AS_OF,
    C1_LIST,
    NOON,
    VERSION,
    assess,
    item,
    seed,
    write_lists,
)

OPS = Principal("acme", "acme.ops", "ops")
ADVISOR = Principal("acme", "wecom:wangxm", "advisor", "YYB001", "TG00001")
LINKS = "https://caifu.example.com"


@pytest.fixture
def world(workspace: Container) -> Container:
    seed(workspace)
    write_lists(workspace, "acme", {"C1": C1_LIST, "C2": C1_LIST})
    workspace.clock = FixedClock(NOON)
    return workspace


def _ids(served: serving.Served) -> list[str]:
    return [i["item_id"] for i in served.items]


def _refused(c: Container, **labels: str) -> float:
    return c.counters.value(serving.REFUSED, **labels)


@pytest.mark.dialect
def test_the_first_k_that_pass_are_served_and_logged(world: Container) -> None:
    c = world
    with rls.tenant_scope("acme"):  # as the API serves it: under row-level security
        served = serving.for_customer(c, OPS, "C1", 3, "api", link_base=LINKS)
    assert _ids(served) == ["N1", "F000001", "N2"]
    assert (served.published, served.as_of, served.policy_version, served.investor_level) == (
        True, AS_OF, VERSION, "C3")
    assert served.refused == {"NOT_VALID": 1} and served.withheld == {}  # N3 expired 09-30
    first = served.items[0]
    assert (first["rank"], first["type"], first["title"], first["risk_level"], first["score"],
            first["reason"], first["verdict"], first["rule"], first["suitability"]) == (
        1, "研报", "宁德时代三季报点评", "R2", 2.5, "近期看过 3 篇研报；本周新发布", "suitable",
        "OK", "C3 可推荐 R2")
    assert served.items[1]["type"] == "混合基金" and served.items[1]["title"] == "成长混合A"
    # the send text: the sidebar's rules, the advisor of the customer, a tracking link
    with c.engine.connect() as conn:
        [token] = conn.execute(select(recommendation_log.c.tracking_token).where(
            recommendation_log.c.tracking_token.is_not(None))).scalars().all()
    assert first["text"] == ("【研报】宁德时代三季报点评\n"
                             f"{LINKS}/t/{token}\n"
                             "风险等级：R2｜仅供参考，不构成投资建议\n"
                             "市场有风险，投资需谨慎。\n"
                             "投资顾问：王晓明（执业编号 S0010120080012）")
    assert "research.example.com" not in first["text"]
    with c.engine.connect() as conn:
        rows = repo.log_rows(conn, "acme", "C1")
    assert [(r.rec_id, r.rank, r.item_id, r.item_type, r.surface, r.score, r.propensity,
             r.policy_version, r.shown_at, r.shown_by) for r in rows] == [
        (i["rec_id"], n, i["item_id"], t, "api", s, 1.0, VERSION, NOON, "acme.ops")
        for n, (i, t, s) in enumerate(zip(served.items, ("content", "fund", "content"),
                                          (2.5, 1.9, 1.4), strict=True), 1)]
    assert [bool(r.tracking_token) for r in rows] == [True, False, False]  # N1 has a URL
    assert all(r.sent_at is r.opened_at is r.clicked_at is r.converted_at is r.dismissed_at
               is None for r in rows)
    assert _refused(c, tenant="acme", surface="api", rule="NOT_VALID") == 1


def test_a_new_assessment_counts_at_once_and_the_spares_fill(world: Container) -> None:
    c = world
    assess(c, "acme", "S1-new", "C1", "C2", on=AS_OF, objective="income")  # this morning
    served = serving.for_customer(c, OPS, "C1", 3, "sidebar")
    assert _ids(served) == ["N1", "A:subscribe_level2", "F000002"]
    assert served.investor_level == "C2"
    assert served.refused == {"LEVEL_MISMATCH": 2, "NOT_VALID": 1}  # F000001, N2 are R3
    assert [i["suitability"] for i in served.items] == ["C2 可推荐 R2", "C2 可推荐 R1",
                                                       "C2 可推荐 R1"]
    assert _refused(c, tenant="acme", rule="LEVEL_MISMATCH") == 2
    assert _refused(c, tenant="acme", surface="sidebar") == 3
    # fewer than k pass: all of them, no more
    served = serving.for_customer(c, OPS, "C1", 5, "sidebar")
    assert _ids(served) == ["N1", "A:subscribe_level2", "F000002"]


def test_the_varieties_the_customer_chose_bind_the_sidebar(world: Container) -> None:
    c = world
    # this morning C1 answered cash and fixed income only: the hybrid fund F000001 (equity)
    # goes, the money fund F000002 (cash) and the content (no variety) stay
    assess(c, "acme", "S1-new", "C1", "C3", on=AS_OF, varieties="cash,fixed_income")
    served = serving.for_customer(c, OPS, "C1", 3, "sidebar")
    assert _ids(served) == ["N1", "N2", "A:subscribe_level2"]
    assert served.refused == {"VARIETY_MISMATCH": 1, "NOT_VALID": 1}
    assert _refused(c, tenant="acme", rule="VARIETY_MISMATCH") == 1
    # not asked (NULL) restricts nothing: F000001 is served again
    assess(c, "acme", "S1-newer", "C1", "C3", on=AS_OF)
    assert _ids(serving.for_customer(c, OPS, "C1", 3, "sidebar")) == ["N1", "F000001", "N2"]


def test_expired_or_missing_assessment_blocks_everything(world: Container) -> None:
    c = world
    assess(c, "acme", "S1-old", "C1", "C3", on=AS_OF, valid_until=AS_OF - dt.timedelta(days=1))
    served = serving.for_customer(c, OPS, "C1", 3)
    assert served.items == [] and served.refused == {"ASSESSMENT_EXPIRED": 6}
    assert served.blocked == "风险测评已于 2026-10-29 过期"


def test_withdrawn_consent_and_items_are_refused(world: Container) -> None:
    c = world
    served = serving.for_customer(c, OPS, "C2", 3)  # C2 refused marketing
    assert served.items == [] and served.refused == {"NO_CONSENT": 6}
    with c.engine.begin() as conn:  # withdrawn from the catalogue, and re-rated
        conn.execute(delete(CONTRACT_TABLES["content_items"]).where(
            CONTRACT_TABLES["content_items"].c.content_id == "N1"))
        t = CONTRACT_TABLES["fund_products"]
        conn.execute(update(t).where(t.c.fund_code == "000002").values(risk_level="R4"))
    served = serving.for_customer(c, OPS, "C1", 3)
    assert _ids(served) == ["F000001", "N2", "A:subscribe_level2"]
    assert served.refused == {"NOT_VALID": 2, "LEVEL_MISMATCH": 1}


def test_a_preview_logs_and_counts_nothing(world: Container) -> None:
    c = world
    served = serving.for_customer(c, OPS, "C1", 3, record=False, link_base=LINKS)
    assert _ids(served) == ["N1", "F000001", "N2"]
    assert "https://research.example.com/N1" in served.items[0]["text"]  # no token: raw URL
    with c.engine.connect() as conn:
        assert repo.log_rows(conn, "acme", "C1") == []
    assert _refused(c) == 0


def test_sent_and_dismissed_items_are_held_back_then_the_cap(world: Container) -> None:
    c = world
    first = serving.for_customer(c, ADVISOR, "C1", 3, "sidebar", link_base=LINKS)
    n1, f1 = first.items[0]["rec_id"], first.items[1]["rec_id"]
    assert outcomes.mark(c, ADVISOR, "C1", n1, "sent") is True
    assert outcomes.mark(c, ADVISOR, "C1", n1, "sent") is False  # stamped once
    c.clock = FixedClock(NOON + dt.timedelta(minutes=5))
    assert outcomes.mark(c, ADVISOR, "C1", f1, "dismissed") is True
    with c.engine.connect() as conn:
        got = {r.rec_id: (r.sent_at, r.dismissed_at) for r in repo.log_rows(conn, "acme", "C1")}
    assert got[n1] == (NOON, None) and got[f1] == (None, NOON + dt.timedelta(minutes=5))
    again = serving.for_customer(c, ADVISOR, "C1", 3, "sidebar")
    assert _ids(again) == ["N2", "A:subscribe_level2", "F000002"]
    assert again.withheld == {"RECENTLY_SENT": 1, "DISMISSED": 1}
    records = [(r.entry.actor, r.entry.action, r.entry.customer_ids)
               for r in audit.records(c, "acme")]
    assert records == [("wecom:wangxm", "recommend_send", ("C1",))] * 2 + [
        ("wecom:wangxm", "recommend_dismiss", ("C1",))]
    # a tenant whose cap is one send a week: after N1, nothing more this week
    (c.root / "recommend").mkdir(exist_ok=True)
    (c.root / "recommend" / "acme.yaml").write_text(
        "caps: {per_customer_per_7_days: 1, resend_after_days: 30}\n", "utf-8")
    capped = serving.for_customer(c, ADVISOR, "C1", 3, "sidebar")
    assert capped.items == [] and capped.withheld == {"FREQUENCY_CAP": 5}
    c.clock = FixedClock(NOON + dt.timedelta(days=8))  # a week on: the cap has passed
    later = serving.for_customer(c, ADVISOR, "C1", 3, "sidebar")
    assert _ids(later) == ["N2", "A:subscribe_level2", "F000002"]


def test_outcomes_belong_to_their_customer(world: Container) -> None:
    c = world
    shown = serving.for_customer(c, OPS, "C1", 3)
    rec = shown.items[0]["rec_id"]
    with pytest.raises(NotFoundError):
        outcomes.mark(c, OPS, "C2", rec, "sent")
    with pytest.raises(ConfigError, match="sent, dismissed"):
        outcomes.mark(c, OPS, "C1", rec, "converted")
    with pytest.raises(NotFoundError):
        outcomes.mark(c, Principal("beta", "beta.ops", "ops"), "C1", rec, "sent")


def test_the_tracking_link_marks_opened_and_clicked(world: Container) -> None:
    c = world
    shown = serving.for_customer(c, ADVISOR, "C1", 3, "sidebar", link_base=LINKS)
    token = shown.items[0]["text"].split("/t/")[1].split("\n")[0]
    click = NOON + dt.timedelta(hours=2)
    assert record_hit(c, token, "click", click) == "https://research.example.com/N1"
    assert record_hit(c, token, "click", click + dt.timedelta(hours=1)) is not None
    assert record_hit(c, "no-such-token", "click") is None
    with c.engine.connect() as conn:
        row = repo.shown(conn, "acme", shown.items[0]["rec_id"])
    assert row is not None and (row.opened_at, row.clicked_at) == (click, click)


def test_scope_and_publication(world: Container) -> None:
    c = world
    with pytest.raises(NotFoundError):  # C1 is TG00001's; TG00002 does not see him
        serving.for_customer(c, Principal("acme", "x", "advisor", "YYB001", "TG00002"), "C1")
    with pytest.raises(NotFoundError):
        serving.for_customer(c, OPS, "NOPE")
    assert ADVISOR.advisor_id == "TG00001" and serving.for_customer(c, ADVISOR, "C1").published
    other = serving.for_customer(c, OPS, "C3")  # not in the last publish
    assert not other.published and other.items == []
    assert other.notes == ["no list for this customer in the last publish"]
    write_lists(c, "acme", {})
    none = serving.for_customer(c, OPS, "C1")
    assert not none.published and "caifu recommend publish -t acme" in none.notes[0]
    with pytest.raises(ConfigError, match="unknown surface"):
        serving.for_customer(c, OPS, "C1", surface="email")


@pytest.mark.dialect
def test_another_tenants_list_is_never_read(world: Container) -> None:
    c = world
    create_tenant(c, "beta", "丙丁证券")
    seed(c, "beta")  # the same customer ids in another tenant
    beta_list = [item("A:subscribe_level2", "action", "R1", 9.0, "乙方的理由", valid_from=None)]
    write_lists(c, "beta", {"C1": beta_list}, k=1)
    beta = Principal("beta", "beta.ops", "ops")
    with rls.tenant_scope("acme"):
        mine = serving.for_customer(c, OPS, "C1", 3, link_base=LINKS)
    with rls.tenant_scope("beta"):
        theirs = serving.for_customer(c, beta, "C1", 3, link_base=LINKS)
    assert _ids(mine) == ["N1", "F000001", "N2"]
    assert _ids(theirs) == ["A:subscribe_level2"] and theirs.items[0]["reason"] == "乙方的理由"
    with c.engine.connect() as conn:
        assert [r.surface for r in repo.log_rows(conn, "beta", "C1")] == ["api"]
        assert len(repo.log_rows(conn, "acme", "C1")) == 3
    write_lists(c, "beta", {})  # beta publishes nothing: acme's lists stay
    with rls.tenant_scope("beta"):
        assert not serving.for_customer(c, beta, "C1").published
    assert serving.for_customer(c, OPS, "C1").published
    if c.engine.dialect.name == "postgresql":  # the database keeps tenants apart too
        with rls.tenant_scope("beta"), c.engine.connect() as conn:
            assert conn.execute(select(recommendation_lists.c.tenant_id)).all() == []
            tenants = set(conn.execute(select(recommendation_log.c.tenant_id)).scalars())
        assert tenants == {"beta"}


def test_lists_are_stored_as_published(world: Container) -> None:
    with world.engine.connect() as conn:
        row = repo.list_of(conn, "acme", "C1")
    assert row is not None
    assert (row.as_of, row.policy_version, row.k) == (AS_OF, VERSION, 3)
    assert json.loads(row.items_json) == C1_LIST
