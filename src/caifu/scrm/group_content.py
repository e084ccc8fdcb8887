"""A preference group's content plan: which content to post in its chat next, from what its
members' own recommendation lists say. Logic only; ``services.scrm.group_content`` reads the
lists, the catalogue and the group's level, and applies the hard rules.

**The vote.** Every member with a published list votes with the first ``k`` items of it
(the places a campaign's "top k" target reads too; the spares after them do not vote). An
item at place r (1 = best) gets ``(k + 1 − r) / k`` from that member — 1 for his first
item, 1/k for his k-th — and an item's score is the sum over the members who hold it. So an
item three members hold at place 6 of 10 (3 × 0.5 = 1.5) comes before one a single member
holds first (1.0): a group post reaches everyone, and breadth matters more than one member's
enthusiasm. Ties: more members, then the better best place, then the item id — the same
lists always give the same plan.

**The fallback**, when no member's top k names an item that may be posted (no member has a
list, or every voted item is refused): popularity within the eligible set — how many
distinct customers of the tenant read the item in the APP over the recent window — newest
first among equals. A plan filled this way says so, item by item.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Vote:
    """What the members' lists say about one item."""

    item_id: str
    score: float  # Σ (k + 1 − r) / k over the members holding it in their top k
    members: int  # members holding it in their top k
    best_rank: int
    mean_rank: float


def tally(lists: Mapping[str, Sequence[str]], k: int) -> dict[str, Vote]:
    """Votes of each member's first ``k`` item ids (best first); an id twice in one list
    counts at its first place."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1 (got {k})")
    places: dict[str, list[int]] = {}
    for items in lists.values():
        seen: set[str] = set()
        for rank, item in enumerate(items[:k], 1):
            if item not in seen:
                seen.add(item)
                places.setdefault(item, []).append(rank)
    return {item: Vote(item, sum((k + 1 - r) / k for r in ranks), len(ranks), min(ranks),
                       sum(ranks) / len(ranks))
            for item, ranks in places.items()}


def by_vote(votes: Iterable[Vote]) -> list[Vote]:
    """Best first: score, then members, then best place, then id (see module doc)."""
    return sorted(votes, key=lambda v: (-round(v.score, 9), -v.members, v.best_rank, v.item_id))


def by_popularity(items: Iterable[str], readers: Mapping[str, int],
                  published: Mapping[str, dt.datetime | None]) -> list[str]:
    """Most readers first, then newest, then id."""
    def key(item: str) -> tuple[int, float, str]:
        when = published.get(item)
        return (-readers.get(item, 0), -(when.timestamp() if when else 0.0), item)
    return sorted(items, key=key)


def vote_reason(vote: Vote, reach: int, k: int) -> str:
    """In words, for the ops user and the advisor: 「群内 7/12 位成员的推荐前10含此内容」."""
    return (f"群内 {vote.members}/{reach} 位成员的推荐前{k}含此内容"
            f"（平均第 {vote.mean_rank:.1f} 位）")


def popularity_reason(readers: int, days: int, why: str) -> str:
    seen = f"近{days}天 {readers} 位客户在 APP 阅读过" if readers else "近期无阅读记录，按发布时间"
    return f"{why}：{seen}"
