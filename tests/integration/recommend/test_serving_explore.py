"""Serving with the tenant's exploration on (``explore.epsilon`` > 0): the explored slot only
ever holds an item that passed the re-check, every shown item is logged with its true
inclusion probability (checked against ``recommend/explore``'s formulas, computed here by
hand), the list's probabilities sum to its length, and a customer's list on a day is the same
however often it is drawn."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pytest

from caifu.adapters.sor.repos import recommend as repo
from caifu.core.clock import FixedClock
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.recommend import serving
from tests.integration.recommend.world import C1_LIST, NOON, explore_config, seed, write_lists

OPS = Principal("acme", "acme.ops", "ops")
EPS = 0.5
DAYS = 40  # N1 stays valid to 2026-12-27, 58 days after NOON
# passing at NOON, in the published order (N3 expired): C1 is a C3 investor; C3 a C2, so the
# R3 fund F000001 and the R3 view N2 are refused for him — they sit inside his pool's range
PASSING = {"C1": ["N1", "F000001", "N2", "A:subscribe_level2", "F000002"],
           "C3": ["N1", "A:subscribe_level2", "F000002"]}
K = {"C1": 3, "C3": 2}


@pytest.fixture
def world(workspace: Container) -> Container:
    seed(workspace)
    write_lists(workspace, "acme", {"C1": C1_LIST, "C3": C1_LIST})
    explore_config(workspace, EPS)
    return workspace


def _mu(item: str, passing: list[str], k: int) -> float:
    """π by hand: the first k−1 passing items 1; the k-th (1 − ε) + ε/c; the rest ε/c."""
    c = len(passing) - (k - 1)
    pos = passing.index(item)
    return 1.0 if pos < k - 1 else (1 - EPS) + EPS / c if pos == k - 1 else EPS / c


def test_explored_lists_stay_in_the_mask_with_their_true_probabilities(world: Container
                                                                       ) -> None:
    c = world
    explored = 0
    last_items: dict[str, set[str]] = defaultdict(set)
    for d in range(DAYS):
        c.clock = FixedClock(NOON + dt.timedelta(days=d))
        for cid, passing in PASSING.items():
            k = K[cid]
            served = serving.for_customer(c, OPS, cid, k, "sidebar")
            ids = [i["item_id"] for i in served.items]
            assert len(ids) == k and len(set(ids)) == k
            assert ids[:k - 1] == passing[:k - 1]  # the head never moves
            assert set(ids) <= set(passing), (cid, d, ids)  # never a refused item
            assert [i["propensity"] for i in served.items] == pytest.approx(
                [_mu(i, passing, k) for i in ids])
            explored += served.explored
            last_items[cid].add(ids[-1])
    # every pool item turns up in the last slot, and about ε of the lists explored
    assert last_items == {cid: set(p[K[cid] - 1:]) for cid, p in PASSING.items()}
    n = DAYS * len(PASSING)
    assert abs(explored / n - EPS) < 4.5 * (EPS * (1 - EPS) / n) ** 0.5
    with c.engine.connect() as conn:
        for cid, passing in PASSING.items():
            rows = repo.log_rows(conn, "acme", cid)
            lists = defaultdict(list)
            for r in rows:
                lists[r.list_id].append(r)
            assert len(lists) == DAYS
            for shown in lists.values():
                k = K[cid]
                assert [r.rank for r in shown] == list(range(1, k + 1))
                assert {(r.epsilon, r.explored) for r in shown} in ({(EPS, True)},
                                                                    {(EPS, False)})
                assert [r.explore_pool is not None for r in shown] == [False] * (k - 1) + [True]
                pool = json.loads(shown[-1].explore_pool)
                assert pool == passing[k - 1:]
                # shown items' π plus the pool's unshown items' π: the list length
                unshown = [j for j in pool if j not in {r.item_id for r in shown}]
                assert sum(r.propensity for r in shown) + sum(
                    _mu(j, passing, k) for j in unshown) == pytest.approx(k)


def test_the_same_customer_and_day_draw_the_same_list(world: Container) -> None:
    c = world
    by_day: dict[int, list[str]] = {}
    for d in range(DAYS):
        c.clock = FixedClock(NOON + dt.timedelta(days=d, hours=d % 7))  # any hour of the day
        preview = serving.for_customer(c, OPS, "C1", 3, "sidebar", record=False)
        again = serving.for_customer(c, OPS, "C1", 3, "api")
        by_day[d] = [i["item_id"] for i in preview.items]
        assert [i["item_id"] for i in again.items] == by_day[d]
        assert preview.explored == again.explored
    assert len({tuple(v) for v in by_day.values()}) == 3  # the day changes the draw
    explore_config(c, EPS, seed_=8)  # another seed, another sequence of lists
    other = {}
    for d in range(DAYS):
        c.clock = FixedClock(NOON + dt.timedelta(days=d))
        other[d] = [i["item_id"] for i in serving.for_customer(
            c, OPS, "C1", 3, "sidebar", record=False).items]
    assert other != by_day


def test_epsilon_zero_is_the_deterministic_list(world: Container) -> None:
    c = world
    explore_config(c, 0.0)
    c.clock = FixedClock(NOON)
    for d in range(10):
        c.clock = FixedClock(NOON + dt.timedelta(days=d))
        served = serving.for_customer(c, OPS, "C1", 3, "sidebar")
        assert [i["item_id"] for i in served.items] == PASSING["C1"][:3]
        assert [i["propensity"] for i in served.items] == [1.0, 1.0, 1.0]
        assert not served.explored
