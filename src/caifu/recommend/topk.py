"""Top-k under the hard mask and the tenant's business rules.

A list has exactly ``k`` items whenever the customer has ``k`` eligible ones: refused pairs
are never taken, and a ``limit`` rule (at most n items of a type) shapes the list but never
makes it shorter — when the limited types are all that is left, the list is filled from them
in score order. A ``boost`` multiplies the matching items' scores (scores are positive:
rankers' outputs are rank-normalised to (0, 1]); a ``filter`` is a refusal
(``eligibility.refusals``' BUSINESS_FILTER), decided before ranking like any hard rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caifu.core.suitability import level_rank
from caifu.recommend.catalogue import ITEM_TYPES, Catalogue
from caifu.recommend.config import Match, RecommendConfig


def matches(cat: Catalogue, where: Match) -> np.ndarray:
    """Items a rule's ``where`` selects (every given field must match)."""
    hit = np.ones(len(cat), bool)
    if where.item_type is not None:
        hit &= cat.item_type == ITEM_TYPES.index(where.item_type)
    if where.kind is not None:
        hit &= cat.kind == where.kind
    if where.item_ids:
        hit &= np.isin(cat.item_id, np.asarray(where.item_ids, dtype=object))
    if where.min_risk is not None:
        hit &= cat.risk >= level_rank(where.min_risk)
    return hit


@dataclass(frozen=True)
class Rules:
    """The business rules as arrays over the catalogue."""

    filtered: np.ndarray  # bool per item
    factor: np.ndarray  # float per item (1 = no boost)
    limit: np.ndarray  # int per item type (len(ITEM_TYPES)); a large number = no limit

    @staticmethod
    def of(cat: Catalogue, config: RecommendConfig) -> Rules:
        filtered = np.zeros(len(cat), bool)
        factor = np.ones(len(cat))
        boosted = np.zeros(len(cat), bool)
        limit = np.full(len(ITEM_TYPES), 1 << 30, np.int64)
        for rule in config.rules:
            if rule.filter is not None:
                filtered |= matches(cat, rule.filter)
            elif rule.boost is not None:
                hit = matches(cat, rule.boost.where) & ~boosted  # first match wins per item
                factor[hit] = rule.boost.factor
                boosted |= hit
            elif rule.limit is not None:
                t = ITEM_TYPES.index(rule.limit.item_type)
                limit[t] = min(limit[t], rule.limit.max)
        return Rules(filtered, factor, limit)


def top_k(scores: np.ndarray, eligible: np.ndarray, item_type: np.ndarray, k: int,
          limit: np.ndarray | None = None) -> np.ndarray:
    """Item rows of each customer's list, best first: int64 (n, k), -1 where the customer
    has fewer than k eligible items. ``scores`` (n, m) higher is better; ``eligible`` bool
    (n, m); ``item_type`` int per item; ``limit`` max items per type (soft, see module)."""
    n, m = scores.shape
    out = np.full((n, k), -1, np.int64)
    if n == 0 or m == 0 or k == 0:
        return out
    s = np.where(eligible, scores.astype(np.float64), -np.inf)
    t = min(m, 4 * k)
    part = np.argpartition(-s, t - 1, axis=1)[:, :t] if t < m else np.tile(np.arange(m), (n, 1))
    order = np.take_along_axis(part, np.argsort(-np.take_along_axis(s, part, 1), axis=1,
                                                kind="stable"), 1)
    ok = np.isfinite(np.take_along_axis(s, order, 1))
    if limit is None:
        take = order[:, :k]
        out[:, :take.shape[1]] = np.where(ok[:, :k], take, -1)
        return out
    types = item_type[order]
    within = np.zeros_like(ok)
    for ty in range(len(limit)):
        is_t = types == ty
        within |= is_t & (np.cumsum(is_t & ok, axis=1) <= limit[ty])
    within &= ok
    over = ok & ~within
    # accepted first (score order), then over-limit items (score order), then nothing
    rank = np.where(within, 0, np.where(over, 1, 2)) * t + np.arange(t)[None, :]
    pick = np.take_along_axis(order, np.argsort(rank, axis=1, kind="stable"), 1)[:, :k]
    good = np.sort(rank, axis=1)[:, :k] < 2 * t
    out[:, :pick.shape[1]] = np.where(good, pick, -1)
    # rows where the cut at t may hide items within their limit: redo them on every item
    needs = (within.sum(axis=1) < k) & (eligible.sum(axis=1) > ok.sum(axis=1))
    for row in np.flatnonzero(needs):
        out[row] = _one_row(s[row], item_type, k, limit)
    return out


def _one_row(s: np.ndarray, item_type: np.ndarray, k: int, limit: np.ndarray) -> np.ndarray:
    order = np.argsort(-s, kind="stable")
    order = order[np.isfinite(s[order])]
    counts = np.zeros(len(limit), np.int64)
    first, rest = [], []
    for i in order.tolist():
        ty = int(item_type[i])
        if counts[ty] < limit[ty]:
            counts[ty] += 1
            first.append(i)
        else:
            rest.append(i)
        if len(first) == k:
            break
    chosen = (first + rest)[:k]
    return np.array(chosen + [-1] * (k - len(chosen)), np.int64)
