"""The serving policy that explores, with the exact probability of everything it shows.

Off-policy evaluation (``ope``) can only judge a new policy on items the serving policy
sometimes shows, and only if the log says how likely each shown item was. So the served list
is epsilon-greedy on its last slot, and every shown item carries its inclusion probability.

**The policy.** For one customer let ``E`` be his eligible items (the hard mask — exploration
never leaves it), ``L`` the deterministic list (``topk.top_k``), ``H`` its first k−1 items,
``t`` its k-th item and ``P = E \\ H`` the pool, of size ``c`` (``t`` is in it). With
probability 1−ε the list shown is ``L``; with probability ε the last slot holds ``J`` drawn
uniformly from ``P`` instead (``J = t`` is possible: the list is then ``L`` again).

**Inclusion probabilities** (the chance the item is anywhere in the shown list)::

    π(j) = 1                  j in H
    π(t) = (1 − ε) + ε / c    shown when not exploring, or when the draw picks t
    π(j) = ε / c              j in P, j ≠ t: only an exploring draw that picks j
    π(j) = 0                  j not eligible

and they sum to the list length: (k−1) + (1−ε) + ε/c + (c−1)·ε/c = k. A customer with fewer
than k eligible items has them all in ``L`` (``top_k`` pads with −1), the pool is empty or
``{t}``, nothing is explored, every eligible item has π = 1 and the sum is |E|. The smallest
propensity is ε/c, so a deterministic target's importance weights reach c/ε — the price of
exploring a little; ε trades that variance against the clicks lost on explored slots.

**Reproducible for audit.** The two uniforms a customer's list needs come either from a
numpy ``Generator`` (simulations, a block at a time) or from ``audit_draws``: a keyed BLAKE2b
hash of (policy seed, customer id, day), so any one customer's list on any day can be rebuilt
alone, years later, independent of numpy's random streams and of the block he was served in.
The soft business rules (boost, limit per type) shape ``L`` only; the explored slot obeys the
mask, which already holds the tenant's filters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shown:
    """The lists the policy showed, slot by slot."""

    items: np.ndarray  # int64 (n, k) item rows, -1 = empty slot
    propensity: np.ndarray  # float (n, k): each shown item's inclusion probability, 0 if empty
    explored: np.ndarray  # bool (n,): the last slot came from the exploration draw


def audit_draws(seed: int, customer_ids: Sequence[str], day: int) -> np.ndarray:
    """The two uniforms in [0, 1) each customer's list needs on ``day`` (a day number), float
    (n, 2): a keyed hash of (customer id, day) under the policy's ``seed`` (0 ≤ seed < 2**64),
    so the same inputs give the same list on any machine and numpy version."""
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"the exploration seed must fit in 64 bits, got {seed}")
    key = seed.to_bytes(8, "little")
    # the day is an integer, so splitting at the last separator is unambiguous
    digests = b"".join(
        hashlib.blake2b(f"{cid}\x1f{day}".encode(), digest_size=16, key=key).digest()
        for cid in customer_ids)
    words = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def explore(lists: np.ndarray, eligible: np.ndarray, eps: float,
            rng: np.random.Generator | np.ndarray) -> Shown:
    """The lists shown to a block of customers: ``lists`` (n, k) from ``top_k``, ``eligible``
    (n, m), ``eps`` the exploration rate, ``rng`` a Generator or the (n, 2) uniforms of
    ``audit_draws`` (column 0 decides whether to explore, column 1 picks the pool item)."""
    n, k = _check(lists, eligible, eps)
    items = lists.astype(np.int64, copy=True)
    explored = np.zeros(n, bool)
    if n == 0 or k == 0:
        return Shown(items, np.zeros(items.shape), explored)
    u = rng.random((n, 2)) if isinstance(rng, np.random.Generator) else np.asarray(rng, float)
    if u.shape != (n, 2) or not ((u >= 0) & (u < 1)).all():
        raise ValueError(f"expected ({n}, 2) uniforms in [0, 1), got shape {u.shape}")
    head = _head_mask(lists, eligible.shape[1])
    c = _pool_size(lists, eligible)
    explored = (u[:, 0] < eps) & (c > 0)
    rows = np.flatnonzero(explored)
    if len(rows):
        pool = eligible[rows] & ~head[rows]
        pick = np.minimum((u[rows, 1] * c[rows]).astype(np.int64), c[rows] - 1)
        # the pick-th pool item (0-based) is where the running count of pool items passes pick
        running = np.cumsum(pool, axis=1, dtype=np.int32)
        items[rows, k - 1] = np.argmax(running > pick[:, None], axis=1)
    prop = np.where(items >= 0, 1.0, 0.0)
    last = items[:, k - 1]
    prop[:, k - 1] = np.where(last < 0, 0.0, last_slot_p(last == lists[:, k - 1], c, eps))
    return Shown(items, prop, explored)


def inclusion(lists: np.ndarray, eligible: np.ndarray, eps: float) -> np.ndarray:
    """π(j) for every customer × item, float (n, m): the chance the policy shows the item
    (module docstring); each row sums to min(k, eligible items)."""
    n, k = _check(lists, eligible, eps)
    m = eligible.shape[1]
    if k == 0:
        return np.zeros((n, m))
    c = _pool_size(lists, eligible)
    out = np.where(eligible, eps / np.maximum(c, 1)[:, None], 0.0)
    rows = np.flatnonzero(lists[:, k - 1] >= 0)
    out[rows, lists[rows, k - 1]] = (1 - eps) + eps / c[rows]
    out[_head_mask(lists, m)] = 1.0
    return out


def propensity(lists: np.ndarray, eligible: np.ndarray, eps: float, rows: np.ndarray,
               items: np.ndarray) -> np.ndarray:
    """π for given (customer row, item) pairs — what OPE needs for a target policy's pairs the
    log never showed — without the (n, m) float matrix; 0 for a non-eligible item."""
    n, k = _check(lists, eligible, eps)
    rows, items = np.asarray(rows, np.int64), np.asarray(items, np.int64)
    if rows.shape != items.shape or rows.ndim != 1:
        raise ValueError("rows and items must be 1-D arrays of the same length")
    m = eligible.shape[1]
    if len(rows) and (rows.min() < 0 or rows.max() >= n or items.min() < 0 or items.max() >= m):
        raise ValueError(f"a pair is outside the block of {n} customers × {m} items")
    if k == 0:
        return np.zeros(len(rows))
    c = _pool_size(lists, eligible)[rows]
    in_head = (lists[rows, : k - 1] == items[:, None]).any(axis=1)
    is_last = lists[rows, k - 1] == items
    p = np.where(is_last, last_slot_p(np.ones(len(rows), bool), c, eps),
                 eps / np.maximum(c, 1))
    return np.where(eligible[rows, items], np.where(in_head, 1.0, p), 0.0)


def last_slot_p(is_t: np.ndarray, c: np.ndarray, eps: float) -> np.ndarray:
    """π of the item in the last slot: t's (1 − ε) + ε/c, or a pool item's ε/c."""
    share = eps / np.maximum(c, 1)
    return np.asarray(np.where(is_t, (1 - eps) + share, share))


def _head_mask(lists: np.ndarray, m: int) -> np.ndarray:
    """Bool (n, m): the item is among the first k−1 of the customer's list."""
    n, k = lists.shape
    head = np.zeros((n, m), bool)
    r, s = np.nonzero(lists[:, : k - 1] >= 0)
    head[r, lists[r, s]] = True
    return head


def _pool_size(lists: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """c per customer: eligible items outside the first k−1 (those are all eligible)."""
    return np.asarray(eligible.sum(axis=1) - (lists[:, : lists.shape[1] - 1] >= 0).sum(axis=1))


def _check(lists: np.ndarray, eligible: np.ndarray, eps: float) -> tuple[int, int]:
    """Refuse inputs the probabilities would silently be wrong for: the lists must be what
    ``top_k`` returns under this mask (eligible, distinct, −1 only at the end and only when
    every eligible item is listed)."""
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"the exploration rate must be in [0, 1], got {eps}")
    if lists.ndim != 2 or eligible.ndim != 2 or lists.shape[0] != eligible.shape[0]:
        raise ValueError(f"lists {lists.shape} and the eligible mask {eligible.shape} must be "
                         "(n, k) and (n, m) for the same n customers")
    if eligible.dtype != bool or not np.issubdtype(lists.dtype, np.integer):
        raise ValueError("lists must hold integer item rows and the mask must be boolean")
    n, k = lists.shape
    m = eligible.shape[1]
    if n == 0 or k == 0:
        return n, k
    filled = lists >= 0
    if (lists < -1).any() or (lists >= m).any():
        raise ValueError(f"a listed item is outside the {m} items of the mask")
    if (filled[:, 1:] & ~filled[:, :-1]).any():
        raise ValueError("an empty slot (-1) is followed by an item; top_k pads at the end only")
    r, s = np.nonzero(filled)
    if not eligible[r, lists[r, s]].all():
        raise ValueError("a listed item is not eligible for its customer")
    ordered = np.sort(lists, axis=1)
    if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any():
        raise ValueError("an item is listed twice for the same customer")
    if (~filled[:, -1] & (eligible.sum(axis=1) > filled.sum(axis=1))).any():
        raise ValueError("a list is shorter than k while eligible items are left out")
    return n, k
