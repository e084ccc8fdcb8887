"""Preference groups on SQLite and PostgreSQL: plan statuses, level policies, content gate."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES, tag_assignments
from caifu.adapters.sor.scrm_models import wecom_group_members, wecom_groups
from caifu.core.errors import ConfigError
from caifu.core.expressions import ExpressionError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.scrm import pref_groups

T = "acme"
NOW = dt.datetime(2026, 3, 1, 2, 0)
ON = dt.date(2026, 3, 2)
# customer -> (C level, follows on WeCom, in chat: True active / False left / None never)
PEOPLE = {
    "C01": ("C4", True, True),    # member
    "C02": ("C4", True, None),    # to invite
    "C03": ("C2", True, None),    # matches, low level
    "C04": ("C4", False, None),   # matches, not on WeCom
    "C05": ("C4", True, False),   # left the chat
    "C06": ("C2", True, True),    # in the chat at C2
}


@pytest.fixture
def broker(workspace: Container) -> Container:
    cust, follows, tags, levels, members = [], [], [], [], []
    for i, (cid, (level, on_wecom, in_chat)) in enumerate(PEOPLE.items()):
        cust.append({"tenant_id": T, "customer_id": cid, "name": "张伟", "customer_type":
                     "individual", "id_type": "resident_id", "id_number": "11010519800101002X",
                     "branch_id": "B01", "opened_on": dt.date(2020, 3, 1), "channel": "app",
                     "status": "normal"})
        if on_wecom:
            follows.append({"tenant_id": T, "advisor_id": "A01", "external_userid": f"wm_{cid}",
                            "customer_id": cid, "added_at": NOW, "status": "active"})
        if cid != "C06":  # C06 no longer holds the tag: still a member of the chat
            tags.append({"tenant_id": T, "customer_id": cid, "tag_id": "interest_sse50",
                         "tag_version": 1, "kind": "text", "evidence_json": "{}",
                         "as_of": ON, "gained_at": NOW, "updated_at": NOW})
        levels.append({"tenant_id": T, "assessment_id": f"S{i}", "customer_id": cid,
                       "questionnaire_version": "v1", "assessed_on": dt.date(2025, 6, 1),
                       "score": 60, "risk_level": level, "no_loss_tolerance": False,
                       "no_civil_capacity": False, "valid_until": dt.date(2027, 6, 1)})
        if in_chat is not None:
            members.append({"tenant_id": T, "chat_id": "wr_sse50", "member_id": f"wm_{cid}",
                            "member_type": "external", "active": in_chat, "joined_at": NOW,
                            "left_at": None if in_chat else NOW})
    # an older, higher assessment of C03 does not count: the latest does
    levels.append({**levels[2], "assessment_id": "S_old", "assessed_on": dt.date(2023, 1, 1),
                   "risk_level": "C5", "valid_until": dt.date(2026, 1, 1)})
    members.append({"tenant_id": T, "chat_id": "wr_sse50", "member_id": "A01",
                    "member_type": "internal", "active": True, "joined_at": NOW, "left_at": None})
    with workspace.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["customers"]), cust)
        conn.execute(insert(CONTRACT_TABLES["wecom_follows"]), follows)
        conn.execute(insert(tag_assignments), tags)
        conn.execute(insert(CONTRACT_TABLES["suitability_assessments"]), levels)
        conn.execute(insert(wecom_groups).values(
            tenant_id=T, chat_id="wr_sse50", name="上证50 ETF 交流群", owner="A01",
            status="active", needs_resync=False, created_at=NOW, updated_at=NOW))
        conn.execute(insert(wecom_group_members), members)
    return workspace


def test_plan_lists_invite_member_left_and_excluded(broker: Container) -> None:
    pref_groups.save_group(broker, T, "sse50", "上证50 ETF", "tag:interest_sse50",
                           chat_id="wr_sse50")
    result = pref_groups.plan(broker, T, "sse50", on=ON).plan
    assert {r.customer_id: r.status for r in result.rows} == {
        "C01": "member", "C02": "invite", "C03": "invite", "C04": "excluded", "C05": "left",
        "C06": "member"}
    assert result.lowest_level == "C2" and result.unidentified == 0
    stored = {r["customer_id"]: r for r in pref_groups.plan_rows(broker, T, "sse50")}
    assert stored["C04"]["status"] == "excluded" and "企业微信" in stored["C04"]["reason"]
    assert stored["C03"]["risk_level"] == "C2"
    assert "不符合规则" in stored["C06"]["reason"]
    # the sizes: the metric preference_group_customers over the stored plan, in the scope
    sizes = pref_groups.plan_sizes(broker, Principal(T, "ops.user", "ops"))
    assert pref_groups.group_sizes(sizes, "sse50") == {"member": 2, "invite": 2, "left": 1,
                                                       "excluded": 1}
    assert sizes.metrics[0]["metric"] == "preference_group_customers"
    # advisor A01: the customers following him on WeCom (C04 does not)
    mine = pref_groups.plan_sizes(broker, Principal(T, "a01", "advisor", advisor_id="A01"))
    assert pref_groups.group_sizes(mine, "sse50") == {"member": 2, "invite": 2, "left": 1,
                                                      "excluded": 0}


def test_homogeneous_group_admits_only_its_level(broker: Container) -> None:
    pref_groups.save_group(broker, T, "sse50_c4", "上证50 ETF（C4）", "tag:interest_sse50",
                           level_policy="homogeneous", risk_level="C4", chat_id="wr_sse50")
    rows = {r.customer_id: r for r in pref_groups.plan(broker, T, "sse50_c4", on=ON).plan.rows}
    assert rows["C03"].status == "excluded" and "C2" in rows["C03"].reason
    assert rows["C06"].status == "excluded" and "请移出" in rows["C06"].reason
    assert (rows["C01"].status, rows["C02"].status) == ("member", "invite")
    # C06 is still in the chat at C2: until removed, content is judged at C2
    v = pref_groups.content_level_ok(broker, T, "sse50_c4", "R4", on=ON)
    assert not v.may_recommend and v.lowest_customers == ("C06",)


def test_lowest_member_blocks_r4_content_for_a_group_with_a_c2_member(broker: Container
                                                                       ) -> None:
    pref_groups.save_group(broker, T, "sse50", "上证50 ETF", "tag:interest_sse50",
                           chat_id="wr_sse50")
    v = pref_groups.content_level_ok(broker, T, "sse50", "R4", on=ON)
    assert not v.may_recommend
    assert (v.verdict.rule, v.verdict.investor_level, v.members) == ("LEVEL_MISMATCH", "C2", 2)
    assert pref_groups.content_level_ok(broker, T, "sse50", "R2", on=ON).may_recommend
    # a group without a chat is judged against its plan: members and invitees
    pref_groups.save_group(broker, T, "plan_only", "计划群", "tag:interest_sse50")
    pref_groups.plan(broker, T, "plan_only", on=ON)
    assert not pref_groups.content_level_ok(broker, T, "plan_only", "R3", on=ON).may_recommend


def test_seed_demo_groups_and_bad_definitions(broker: Container) -> None:
    assert pref_groups.seed_demo_groups(broker, T) == ["new_energy", "sse50_etf", "fund_sip"]
    pref_groups.seed_demo_groups(broker, T)  # idempotent
    groups = {g["group_id"]: g for g in pref_groups.list_groups(broker, T)}
    assert {g["name"] for g in groups.values()} == {"新能源", "上证50 ETF", "基金定投"}
    assert groups["new_energy"]["level_policy"] == "homogeneous"
    for group_id in groups:
        pref_groups.plan(broker, T, group_id, on=ON)
    with pytest.raises(ExpressionError, match="interest_sse5"):
        pref_groups.save_group(broker, T, "x", "x", "tag:interest_sse5")
    with pytest.raises(ConfigError, match="risk level"):
        pref_groups.save_group(broker, T, "x", "x", "tag:interest_sse50",
                               level_policy="homogeneous")
    with pytest.raises(ConfigError, match="no preference group"):
        pref_groups.plan(broker, T, "missing")
