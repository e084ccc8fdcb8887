"""The recommendation log read as lists for ``recommend/ope``: the probability of a pool item
not shown follows from the logged pool and rate, rows without a list id (before migration
0015) group by showing, a propensity that disagrees with its pool is refused, and the target's
pairs the log could not show are kept with μ = 0."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from caifu.core.errors import ConfigError
from caifu.services.recommend.offpolicy import logged_lists, policy_log

AT = dt.datetime(2026, 10, 30, 17, 0)  # UTC: 01:00 on the 31st in Shanghai


def _row(list_id: str | None, item: str, rank: int, p: float, *, pool: list[str] | None = None,
         eps: float | None = 0.5, clicked: bool = False, customer: str = "C1",
         explored: bool | None = False) -> Any:
    return SimpleNamespace(
        rec_id=f"{list_id}-{rank}", list_id=list_id, customer_id=customer, item_id=item,
        surface="sidebar", rank=rank, propensity=p, shown_at=AT, explored=explored,
        epsilon=eps, explore_pool=json.dumps(pool) if pool else None,
        clicked_at=AT if clicked else None, converted_at=None)


def test_pool_items_not_shown_get_their_probability() -> None:
    """k = 2, pool [b, c, d] (c = 3), ε = 0.5: the draw put c in the last slot (π = 1/6);
    b, the deterministic one, had 0.5 + 1/6, d 1/6."""
    rows = [_row("L1", "a", 1, 1.0), _row("L1", "c", 2, 0.5 / 3, pool=["b", "c", "d"],
                                          clicked=True, explored=True)]
    [lst] = logged_lists(rows, "Asia/Shanghai", "clicked")
    assert lst.day == dt.date(2026, 10, 31) and lst.explored
    assert lst.shown == {"a": (1.0, 0.0), "c": (pytest.approx(1 / 6), 1.0)}
    assert lst.unshown == {"b": pytest.approx(0.5 + 1 / 6), "d": pytest.approx(1 / 6)}
    log = policy_log([lst], [{"a", "d", "z"}])  # z: never in reach of the logging policy
    assert list(log.item) == ["a", "b", "c", "d", "z"]
    assert log.logging_p == pytest.approx([1.0, 0.5 + 1 / 6, 1 / 6, 1 / 6, 0.0])
    assert list(log.target_p) == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert list(log.shown) == [True, False, True, False, False]
    assert list(log.reward) == [0.0, 0.0, 1.0, 0.0, 0.0]
    same = policy_log([lst], None)  # the logging policy: π = μ everywhere
    assert np.array_equal(same.target_p, same.logging_p)
    assert sum(same.logging_p) == pytest.approx(2.0)  # the list's length


def test_rows_before_0015_group_by_showing_and_a_wrong_propensity_is_refused() -> None:
    old = [_row(None, "a", 1, 1.0, eps=None, explored=None),
           _row(None, "b", 2, 1.0, eps=None, explored=None),
           _row(None, "a", 1, 1.0, eps=None, explored=None, customer="C2")]
    lists = logged_lists(old, "Asia/Shanghai", "clicked")
    assert [(x.customer_id, sorted(x.shown), x.unshown) for x in lists] == [
        ("C1", ["a", "b"], {}), ("C2", ["a"], {})]
    wrong = [_row("L1", "a", 1, 1.0), _row("L1", "c", 2, 0.5, pool=["b", "c", "d"])]
    with pytest.raises(ConfigError, match="list 'L1' logged propensity 0.5 for 'c'"):
        logged_lists(wrong, "Asia/Shanghai", "clicked")
    twice = [_row("L1", "a", 1, 1.0), _row("L1", "a", 2, 1.0)]
    with pytest.raises(ConfigError, match="item 'a' twice in list 'L1'"):
        logged_lists(twice, "Asia/Shanghai", "clicked")
