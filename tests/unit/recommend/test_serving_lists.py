"""The published list's JSON (``serving.item_fragments`` + the per-customer arrays a publish
writes): each item with what the read-time re-check needs, scores and reasons as ranked, and
the serving policy's choice of what to show, with or without exploration."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa

from caifu.recommend import config
from caifu.recommend.catalogue import build
from caifu.services.recommend import serving


def _catalogue():  # type: ignore[no-untyped-def]
    content = pa.table({
        "content_id": ["CT1"], "content_type": ["product_intro"], "title": ["甲债券介绍"],
        "risk_level": ["R2"], "published_at": pa.array([dt.datetime(2026, 11, 1, 9)]),
        "security_code": pa.array([None], pa.string()), "fund_code": ["000001"]})
    funds = pa.table({"fund_code": ["000001"], "name": ["甲债券"], "fund_type": ["bond"],
                      "risk_level": ["R2"], "launched_on": pa.array([dt.date(2020, 1, 1)])})
    return build(content, funds, config.default())


def test_each_item_carries_what_the_recheck_judges() -> None:
    cat = _catalogue()
    frags = serving.item_fragments(cat)
    got = {json.loads(f + "}")["item_id"]: json.loads(f + "}") for f in frags}
    assert got["F000001"] == {"item_id": "F000001", "item_type": "fund", "risk_level": "R2",
                              "horizon": "short", "variety": "fixed_income",
                              "valid_from": "2020-01-01", "valid_until": None}
    # a product introduction inherits its fund's horizon and variety; valid 60 days
    assert got["CT1"] == {"item_id": "CT1", "item_type": "content", "risk_level": "R2",
                          "horizon": "short", "variety": "fixed_income",
                          "valid_from": "2026-11-01", "valid_until": "2026-12-31"}
    level2 = got["A:subscribe_level2"]
    assert (level2["item_type"], level2["risk_level"], level2["valid_from"],
            level2["valid_until"]) == ("action", "R1", "1970-01-01", None)


def test_lists_keep_the_order_scores_and_reasons() -> None:
    cat = _catalogue()
    frags = serving.item_fragments(cat)
    f, c, a = cat.index["F000001"], cat.index["CT1"], cat.index["A:subscribe_level2"]
    lists = np.array([[c, f, -1], [-1, -1, -1], [a, -1, -1]])
    scores = np.array([[2.1234567, float("nan"), np.nan], [np.nan] * 3, [-0.5, np.nan, np.nan]])
    reasons = np.array(['看过"这一产品"', "关注过债券基金（2 次）", "近期热门"], dtype=object)
    out = [json.loads(x) for x in serving._lists_json(frags, lists, scores, reasons)]
    assert [[x["item_id"] for x in row] for row in out] == [["CT1", "F000001"], [],
                                                           ["A:subscribe_level2"]]
    assert [x["score"] for x in out[0]] == [2.123457, None] and out[2][0]["score"] == -0.5
    assert [x["reason"] for x in out[0] + out[2]] == list(reasons)


def test_without_exploration_the_first_k_are_shown_with_probability_one() -> None:
    draws = np.array([0.0, 0.99])  # would explore at any positive rate
    for passing, want in ((5, [0, 1, 2]), (2, [0, 1]), (0, [])):
        got = serving.choose(passing, 3, 0.0, draws)
        assert (got.positions, got.propensities, got.explored) == (
            want, [1.0] * len(want), False)
    assert serving.choose(5, 3, 0.0, draws).pool == [2, 3, 4]  # t first, then the spares
    assert serving.choose(2, 3, 0.0, draws).pool == []


def test_an_exploring_draw_fills_the_last_slot_from_the_pool() -> None:
    """6 passing, k = 3: head {0, 1}, pool {2, 3, 4, 5} (c = 4), ε = 0.5 — π(t) = 0.5 + 0.125,
    a pool item 0.125; the second uniform 0.6 picks the 3rd of 4 pool items (position 4)."""
    got = serving.choose(6, 3, 0.5, np.array([0.2, 0.6]))
    assert (got.positions, got.propensities, got.explored) == (
        [0, 1, 4], [1.0, 1.0, 0.125], True)
    kept = serving.choose(6, 3, 0.5, np.array([0.7, 0.6]))  # 0.7 ≥ ε: not exploring
    assert (kept.positions, kept.propensities, kept.explored) == (
        [0, 1, 2], [1.0, 1.0, 0.625], False)
    short = serving.choose(2, 3, 0.5, np.array([0.2, 0.6]))  # fewer than k: nothing to explore
    assert (short.positions, short.propensities, short.explored, short.pool) == (
        [0, 1], [1.0, 1.0], False, [])
