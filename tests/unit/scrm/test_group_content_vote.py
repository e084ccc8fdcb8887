"""The group content plan's vote (``scrm.group_content``): each member's first k places,
weighted (k + 1 − r) / k, breadth before one member's first place, a fixed tie-break."""

from __future__ import annotations

import datetime as dt

import pytest

from caifu.scrm import group_content as gc


def test_the_first_k_places_vote_weighted_by_place() -> None:
    votes = gc.tally({"m1": ["a", "b", "c", "d"], "m2": ["b", "a"], "m3": ["c", "c", "b"]}, 2)
    # k = 2: place 1 → 1, place 2 → 0.5; m1's c and d are past k; m3's second c is a repeat
    assert {i: (v.score, v.members, v.best_rank, v.mean_rank) for i, v in votes.items()} == {
        "a": (1.5, 2, 1, 1.5), "b": (1.5, 2, 1, 1.5), "c": (1.0, 1, 1, 1.0)}


def test_breadth_comes_before_one_members_first_place_and_ties_are_fixed() -> None:
    lists = {"m1": ["solo", "x", "y", "wide"], "m2": ["x", "y", "z", "wide"],
             "m3": ["y", "x", "z", "wide"], "m4": ["z", "x", "y", "wide"]}
    order = [v.item_id for v in gc.by_vote(gc.tally(lists, 4).values())]
    # x: .75+1+.75+.75 = 3.25; y: .5+.75+1+.5 = 2.75; z: .5+.5+1 = 2.0 (3 members);
    # wide: 4 × .25 = 1.0 (4 members) ties solo's 1.0 (1 member): more members first
    assert order == ["x", "y", "z", "wide", "solo"]
    tied = gc.by_vote(gc.tally({"m1": ["q", "p"], "m2": ["p", "q"]}, 2).values())
    assert [v.item_id for v in tied] == ["p", "q"]  # same score, members, best place: by id


def test_popularity_orders_by_readers_then_newest_then_id() -> None:
    day = dt.datetime(2026, 10, 1)
    published = {"a": day, "b": day + dt.timedelta(days=1), "c": day, "d": None}
    assert gc.by_popularity(["a", "b", "c", "d"], {"c": 2}, published) == ["c", "b", "a", "d"]


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be ≥ 1"):
        gc.tally({"m1": ["a"]}, 0)
