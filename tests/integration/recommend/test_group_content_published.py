"""A preference group's content plan over the small demo broker's real published lists: the
votes match the stored lists, nothing planned is above what the group may receive."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from caifu.adapters.sor.recommend_models import recommendation_lists
from caifu.adapters.sor.scrm_models import preference_group_members, preference_groups
from caifu.core.suitability import level_rank
from caifu.services.scrm import pref_groups
from caifu.services.scrm.group_content import content_plan
from tests.integration.recommend.conftest import Published

pytestmark = pytest.mark.slow  # a fitted policy on a demo broker


def test_a_group_plan_follows_its_members_stored_lists(published: Published,
                                                       tmp_path: Path) -> None:
    c = published.broker.copy(tmp_path / "ws")
    with c.engine.connect() as conn:
        stored = {cid: json.loads(text) for cid, text in conn.execute(
            select(recommendation_lists.c.customer_id, recommendation_lists.c.items_json)
            .order_by(recommendation_lists.c.customer_id))}
    members = [cid for cid, items in stored.items()
               if any(x["item_type"] == "content" for x in items[:10])][:12]
    assert len(members) == 12
    now = dt.datetime(2026, 10, 30, 4)
    with c.engine.begin() as conn:
        conn.execute(insert(preference_groups).values(
            tenant_id="acme", group_id="g", name="测试群", rule="tag:interest_chinext",
            level_policy="lowest_member", created_at=now, updated_at=now))
        conn.execute(insert(preference_group_members), [
            {"tenant_id": "acme", "group_id": "g", "customer_id": cid, "status": "member",
             "reason": "在群", "updated_at": now} for cid in members])
    day = published.fitted.day
    plan = content_plan(c, "acme", "g", n=5, k=10, on=day)
    assert plan.reach == 12 and plan.with_lists == 12 and len(plan.items) == 5
    assert plan.policy_versions == [published.fitted.version]
    voted = [i for i in plan.items if i.basis == "lists"]
    for i in voted:  # the members and weight of each planned item, from the stored lists
        places = [[x["item_id"] for x in stored[m][:10]].index(i.item_id) + 1
                  for m in members if i.item_id in [x["item_id"] for x in stored[m][:10]]]
        assert i.members == len(places) and i.reason.startswith(f"群内 {len(places)}/12 位")
        assert i.score == pytest.approx(sum((11 - r) / 10 for r in places), abs=1e-6)
    assert [i.score for i in voted] == sorted((i.score for i in voted), reverse=True)
    for i in plan.items:  # never above what the group may receive, judged on its own
        assert pref_groups.content_level_ok(c, "acme", "g", i.risk_level, on=day).may_recommend
        assert plan.max_level is not None
        assert level_rank(i.risk_level) <= level_rank(plan.max_level)
    assert sum(plan.refused.values()) + plan.eligible == plan.catalogue
