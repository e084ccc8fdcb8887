"""A preference group's content plan (``services/scrm/group_content``): ranked by the members'
published lists, never above what the group may receive, valid on the plan day, compliant,
not posted to that group within the resend window — and the popularity fallback.

The world is ``group_world`` (its docstring has the table); expected orders are worked out
by hand from the lists there with the vote (k + 1 − r) / k."""

from __future__ import annotations

import datetime as dt

import pytest

from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError, NotFoundError
from caifu.services.container import Container
from caifu.services.scrm.group_content import content_plan
from tests.integration.scrm.group_world import DAY, NOW, seed, views

T = "acme"


@pytest.fixture
def world(workspace: Container) -> Container:
    seed(workspace)
    workspace.clock = FixedClock(NOW)
    return workspace


def _ids(plan) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.item_id for i in plan.items]


@pytest.mark.dialect
def test_the_top_voted_item_above_the_groups_level_is_skipped_for_the_next(world: Container
                                                                            ) -> None:
    # H1 (R4) is every member's first item, but M3 is C3: the group may receive up to R3.
    # A1: M1 2nd + M2 3rd = 2/3 + 1/3; A2: M2 2nd (M1's 4th is past k); A3: M3 3rd;
    # P1 was posted to this group 3 days ago, X1's title fails the lexicon.
    plan = content_plan(world, T, "low", n=3, k=3, on=DAY)
    assert _ids(plan) == ["A1", "A2", "A3"]
    assert (plan.investor_level, plan.max_level, plan.basis) == ("C3", "R3", "lists")
    assert [(i.score, i.members, i.risk_level, i.basis) for i in plan.items] == [
        (1.0, 2, "R3", "lists"), (0.666667, 1, "R2", "lists"), (0.333333, 1, "R1", "lists")]
    assert plan.items[0].reason == "群内 2/3 位成员的推荐前3含此内容（平均第 2.5 位）"
    assert (plan.reach, plan.reach_source, plan.with_lists) == (3, "plan", 3)
    assert plan.policy_versions == ["test-2026-10/abc123"]
    # over the catalogue, each item counted under its first refusing rule
    assert (plan.catalogue, plan.eligible) == (8, 4)
    assert plan.refused == {"COMPLIANCE": 1, "LEVEL_MISMATCH": 1, "NOT_VALID": 1,
                            "RECENTLY_POSTED": 1}
    assert plan.voted == 6
    assert plan.voted_refused == {"COMPLIANCE": 1, "LEVEL_MISMATCH": 1, "RECENTLY_POSTED": 1}
    assert plan.notes == []


def test_a_homogeneous_c4_group_gets_the_r4_item_and_its_own_resend_window(world: Container
                                                                          ) -> None:
    # the same lists, only M1 and M2: H1 2.0, A1 1.0, P1 1/3 (posted to ``low``, not here);
    # A2 was posted to this group 3 days ago
    plan = content_plan(world, T, "c4", n=3, k=3, on=DAY)
    assert _ids(plan) == ["H1", "A1", "P1"]
    assert (plan.investor_level, plan.max_level) == ("C4", "R4")
    assert plan.refused == {"COMPLIANCE": 1, "NOT_VALID": 1, "RECENTLY_POSTED": 1}
    assert plan.items[0].reason.startswith("群内 2/2 位成员")


def test_only_the_first_k_places_vote_and_only_content_is_planned(world: Container) -> None:
    # k = 5 (weights 1, .8, .6, .4, .2): A1 .8+.6, A2 .4+.8, A3 .6, A4 .4; the fund at M1's
    # 5th place is no content item; OLD (M3's 4th) is past its validity
    plan = content_plan(world, T, "low", n=5, k=5, on=DAY)
    assert _ids(plan) == ["A1", "A2", "A3", "A4"]
    assert [i.score for i in plan.items] == [1.4, 1.2, 0.6, 0.4]
    assert plan.voted == 8 and "F000001" not in _ids(plan)
    assert plan.voted_refused == {"COMPLIANCE": 1, "LEVEL_MISMATCH": 1, "NOT_VALID": 1,
                                  "RECENTLY_POSTED": 1}
    assert plan.notes == ["可推送到本群的内容只有 4 条"]


def test_too_few_voted_items_are_filled_by_popularity_and_say_so(world: Container) -> None:
    plan = content_plan(world, T, "low", n=5, k=3, on=DAY)
    assert _ids(plan) == ["A1", "A2", "A3", "A4"]
    assert [i.basis for i in plan.items] == ["lists"] * 3 + ["popularity"]
    assert plan.basis == "lists+popularity"
    assert plan.items[3].reason == "成员推荐清单之外补足：近期无阅读记录，按发布时间"
    assert "成员推荐清单中可推送的内容只有 3 条：其余按阅读热度补足" in plan.notes


def test_members_without_lists_fall_back_to_popularity_within_the_eligible_set(
        world: Container) -> None:
    at = dt.datetime(2026, 10, 29, 1, 0)
    views(world, [("M1", "view_content", "A2", at), ("M1", "view_content", "A2", at),
                  ("M2", "view_content", "A2", at), ("M3", "view_content", "A2", at),
                  ("M5", "view_content", "A3", at), ("M6", "view_content", "A3", at),
                  ("M1", "view_content", "A4", at),
                  ("M2", "view_content", "A4", dt.datetime(2026, 7, 20)),  # > 90 days ago
                  ("M1", "view_content", "X1", at),  # refused: never planned
                  *[(m, "view_fund", "P1", at) for m in ("M1", "M2", "M3", "M5")]])
    plan = content_plan(world, T, "nolists", n=6, k=10, on=DAY)
    # readers: A2 3, A3 2, A4 1; then newest first: P1 (10-22), A1 (10-21), H1 (10-20)
    assert _ids(plan) == ["A2", "A3", "A4", "P1", "A1", "H1"]
    assert [i.score for i in plan.items] == [3.0, 2.0, 1.0, 0.0, 0.0, 0.0]
    assert {i.basis for i in plan.items} == {"popularity"} and plan.basis == "popularity"
    assert plan.items[0].reason == "群成员无可用的推荐清单：近90天 3 位客户在 APP 阅读过"
    assert plan.with_lists == 0 and plan.voted == 0
    assert plan.notes[0].startswith("群成员均无已发布的推荐清单：改按可推送内容的阅读热度排序")


def test_a_group_without_members_gets_nothing_and_says_why(world: Container) -> None:
    from caifu.services.scrm import pref_groups

    pref_groups.save_group(world, T, "empty", "空群", "tag:interest_chinext")
    plan = content_plan(world, T, "empty", on=DAY)
    assert plan.items == [] and plan.max_level is None and plan.eligible == 0
    assert plan.refused == {"NOT_VALID": 1, "NO_ASSESSMENT": 7}
    assert plan.notes[0].startswith("群内尚无成员")


def test_bad_requests_are_refused_by_name(world: Container) -> None:
    with pytest.raises(NotFoundError, match="no preference group .nope."):
        content_plan(world, T, "nope", on=DAY)
    with pytest.raises(ConfigError, match="n must be 1–50 and k 1–100"):
        content_plan(world, T, "low", n=0, on=DAY)
    with pytest.raises(ConfigError, match="n must be 1–50 and k 1–100"):
        content_plan(world, T, "low", k=101, on=DAY)
