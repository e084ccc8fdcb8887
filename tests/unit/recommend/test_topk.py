"""Top-k under the mask and business rules: exactly k whenever k eligible items exist."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from caifu.recommend.topk import top_k

CONTENT, FUND, ACTION = 0, 1, 2


def test_best_first_and_refused_never_taken() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    eligible = np.array([[True, False, True, True, False]])
    got = top_k(scores, eligible, np.zeros(5, np.int64), 3)
    assert got.tolist() == [[0, 2, 3]]
    # fewer eligible than k: the rest is -1
    assert top_k(scores, eligible, np.zeros(5, np.int64), 4).tolist() == [[0, 2, 3, -1]]


def test_limit_shapes_the_list_but_never_shortens_it() -> None:
    types = np.array([FUND, FUND, FUND, CONTENT, FUND, CONTENT])
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    eligible = np.ones((1, 6), bool)
    limit = np.array([10, 2, 10])
    # two funds, then the contents, then (to fill k=5) the best over-limit fund
    assert top_k(scores, eligible, types, 5, limit).tolist() == [[0, 1, 3, 5, 2]]
    assert top_k(scores, eligible, types, 3, limit).tolist() == [[0, 1, 3]]


@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_exactly_k_when_k_eligible(m: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20
    scores = rng.random((n, m))
    eligible = rng.random((n, m)) < rng.random()
    types = rng.integers(0, 3, m)
    limit = rng.integers(0, 4, 3)
    got = top_k(scores, eligible, types, k, limit)
    for r in range(n):
        chosen = got[r][got[r] >= 0]
        assert len(chosen) == min(k, int(eligible[r].sum()))
        assert eligible[r, chosen].all() and len(set(chosen.tolist())) == len(chosen)
        # within-limit items come first and in score order
        counts = np.zeros(3, np.int64)
        first = []
        for i in chosen:
            counts[types[i]] += 1
            if counts[types[i]] > limit[types[i]]:
                break
            first.append(i)
        assert list(scores[r, first]) == sorted(scores[r, first], reverse=True)
        # nothing eligible and within limit was passed over for an over-limit item
        best_within = _greedy(scores[r], eligible[r], types, limit, k)
        assert first == best_within[:len(first)]


def _greedy(s: np.ndarray, ok: np.ndarray, types: np.ndarray, limit: np.ndarray,
            k: int) -> list[int]:
    counts = np.zeros(3, np.int64)
    out = []
    for i in np.argsort(-s, kind="stable"):
        if ok[i] and counts[types[i]] < limit[types[i]]:
            counts[types[i]] += 1
            out.append(int(i))
    return out[:k]
