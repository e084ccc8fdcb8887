"""A campaign targeting "the customers for whom this item ranks in their top k": the audience
is read from the published lists, then gated like every campaign target."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.recommend_models import recommendation_lists
from caifu.core.errors import ConfigError
from caifu.services.recommend.serving import audience
from caifu.services.scrm.campaigns import Campaigns
from tests.integration.recommend.conftest import Published

pytestmark = pytest.mark.slow  # a fitted policy on a demo broker


def test_a_campaign_targets_the_customers_whose_top_k_hold_its_content(
        published: Published, tmp_path: Path) -> None:
    c = published.broker.copy(tmp_path / "ws")
    with c.engine.connect() as conn:
        stored = {cid: json.loads(text) for cid, text in conn.execute(
            select(recommendation_lists.c.customer_id, recommendation_lists.c.items_json))}
    k = 10
    in_top = Counter(x["item_id"] for items in stored.values() for x in items[:k]
                     if x["item_type"] == "content")
    assert in_top, "no content item in anyone's top 10 on this broker"
    item = in_top.most_common(1)[0][0]
    expected = sorted(cid for cid, items in stored.items()
                      if item in [x["item_id"] for x in items[:k]])
    # the spares after the first k do not count
    assert audience(c, "acme", item, 1).customer_ids == sorted(
        cid for cid, items in stored.items() if items and items[0]["item_id"] == item)

    aud = audience(c, "acme", item, k)
    assert aud.customer_ids == expected and aud.k == k
    assert aud.policy_versions == [published.fitted.version]

    with c.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["campaigns"]).values(
            tenant_id="acme", campaign_id="TOPK1", name="前三推荐内容", channel="mass_send",
            content_id=item, goal="reactivation", starts_on=dt.date(2026, 10, 1)))
    summary = Campaigns(c).create_run("acme", "TOPK1", actor="acme.ops", recommended_k=k)
    assert summary.targeted == len(expected)
    run = Campaigns(c).run("acme", "TOPK1")
    assert run is not None
    assert run["target"]["kind"] == "recommended"
    assert (run["target"]["item_id"], run["target"]["k"]) == (item, k)
    page = Campaigns(c).decisions("acme", "TOPK1", limit=10_000)
    assert page["total"] == len(expected)
    assert {d["customer_id"] for d in page["items"]} == set(expected)  # each judged by the gate

    with pytest.raises(ConfigError, match="exactly one"):
        Campaigns(c).create_run("acme", "TOPK1", actor="acme.ops", recommended_k=k,
                                segment_id="x")
    with pytest.raises(ConfigError, match="k: between 1 and 100"):
        Campaigns(c).create_run("acme", "TOPK1", actor="acme.ops", recommended_k=0)
