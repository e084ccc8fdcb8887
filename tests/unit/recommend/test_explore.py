"""The exploring policy: its stated inclusion probabilities are the frequencies it shows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from caifu.recommend.explore import audit_draws, explore, inclusion, propensity
from caifu.recommend.topk import top_k


def _block(seed: int, n: int, m: int, k: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    eligible = rng.random((n, m)) < share
    lists = top_k(rng.random((n, m)), eligible, np.zeros(m, np.int64), k)
    return lists, eligible


def _customers() -> tuple[np.ndarray, np.ndarray]:
    """Six customers over 8 items, k = 3: many eligible, exactly k+1, exactly k (nothing to
    explore), fewer than k, none, and all."""
    eligible = np.array([
        [1, 1, 0, 1, 1, 0, 1, 1],
        [0, 1, 1, 0, 0, 1, 1, 0],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ], bool)
    scores = np.random.default_rng(3).random(eligible.shape)
    return top_k(scores, eligible, np.zeros(8, np.int64), 3), eligible


def test_inclusion_probabilities_are_the_frequencies_shown() -> None:
    lists, eligible = _customers()
    eps, draws = 0.3, 40_000
    n, m = eligible.shape
    shown = explore(np.tile(lists, (draws, 1)), np.tile(eligible, (draws, 1)), eps,
                    np.random.default_rng(11))
    rows = np.repeat(np.arange(draws * n) % n, lists.shape[1])
    items = shown.items.ravel()
    counts = np.zeros((n, m))
    np.add.at(counts, (rows[items >= 0], items[items >= 0]), 1)
    freq = counts / draws
    p = inclusion(lists, eligible, eps)
    # the shown frequency is a binomial proportion: allow 4.5 standard errors per cell
    # (48 cells: a false alarm has probability ~3e-4); p = 0 or 1 must hold exactly
    se = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(freq - p) <= 4.5 * se + 1e-12)
    # the pool sizes are 4 (customer 0: 6 eligible − 2 head) and 6 (customer 5)
    top0, top5 = lists[0, 2], lists[5, 2]
    assert p[0, top0] == pytest.approx(0.7 + 0.3 / 4)
    assert p[5, top5] == pytest.approx(0.7 + 0.3 / 6)
    assert p[5, np.setdiff1d(np.arange(8), lists[5])] == pytest.approx(np.full(5, 0.3 / 6))


def test_probabilities_sum_to_the_list_length_and_refused_items_are_never_shown() -> None:
    lists, eligible = _customers()
    p = inclusion(lists, eligible, 0.3)
    assert p.sum(axis=1) == pytest.approx([3, 3, 3, 2, 0, 3])
    assert (p[~eligible] == 0).all()
    shown = explore(np.tile(lists, (5000, 1)), np.tile(eligible, (5000, 1)), 0.9,
                    np.random.default_rng(5))
    r, s = np.nonzero(shown.items >= 0)
    assert np.tile(eligible, (5000, 1))[r, shown.items[r, s]].all()
    # customers 3 (fewer than k eligible) and 4 (none) have no pool; customer 2 (exactly k)
    # has one item in it, his k-th, so a draw leaves his list as it was
    assert not shown.explored.reshape(5000, 6)[:, [3, 4]].any()
    assert (shown.items.reshape(5000, 6, 3)[:, [2, 3, 4]] == lists[[2, 3, 4]]).all()


@given(st.integers(1, 30), st.integers(1, 8), st.floats(0, 1), st.integers(0, 2**31 - 1))
def test_sum_is_k_whenever_k_are_eligible(m: int, k: int, eps: float, seed: int) -> None:
    lists, eligible = _block(seed, 15, m, k, share=np.random.default_rng(seed).random())
    p = inclusion(lists, eligible, eps)
    assert p.sum(axis=1) == pytest.approx(np.minimum(k, eligible.sum(axis=1)))
    assert ((p >= 0) & (p <= 1)).all() and (p[~eligible] == 0).all()


def test_each_shown_item_carries_its_inclusion_probability() -> None:
    lists, eligible = _block(8, 300, 20, 5, 0.6)
    eps = 0.4
    shown = explore(lists, eligible, eps, np.random.default_rng(2))
    p = inclusion(lists, eligible, eps)
    rows = np.repeat(np.arange(300), 5).reshape(300, 5)
    filled = shown.items >= 0
    assert shown.propensity[filled] == pytest.approx(p[rows[filled], shown.items[filled]])
    assert (shown.propensity[~filled] == 0).all()
    # the first k−1 never change; an explored last slot came from outside them
    assert (shown.items[:, :4] == lists[:, :4]).all()
    assert 0 < shown.explored.mean() < 1


def test_pair_propensities_match_the_full_matrix() -> None:
    lists, eligible = _block(9, 40, 25, 4, 0.5)
    p = inclusion(lists, eligible, 0.25)
    rows, items = np.divmod(np.arange(40 * 25), 25)
    assert propensity(lists, eligible, 0.25, rows, items) == pytest.approx(p.ravel())


def test_no_exploration_is_top_k_and_full_exploration_always_draws() -> None:
    lists, eligible = _block(4, 200, 15, 3, 0.7)
    greedy = explore(lists, eligible, 0.0, np.random.default_rng(0))
    assert (greedy.items == lists).all() and not greedy.explored.any()
    assert set(np.unique(greedy.propensity[greedy.items >= 0])) == {1.0}
    always = explore(lists, eligible, 1.0, np.random.default_rng(0))
    can = eligible.sum(axis=1) > 2  # a pool to draw from
    assert (always.explored == can).all()


def test_k_of_one_draws_from_every_eligible_item() -> None:
    eligible = np.array([[True, True, False, True]])
    lists = np.array([[3]])
    assert inclusion(lists, eligible, 0.6)[0] == pytest.approx([0.2, 0.2, 0, 0.4 + 0.2])


def test_a_list_is_reproduced_from_the_customer_and_the_day_alone() -> None:
    lists, eligible = _block(6, 50, 12, 3, 0.8)
    ids = [f"C{i:06d}" for i in range(50)]
    block = explore(lists, eligible, 0.5, audit_draws(2024, ids, 20_100))
    again = explore(lists[[37]], eligible[[37]], 0.5, audit_draws(2024, [ids[37]], 20_100))
    assert (again.items[0] == block.items[37]).all()
    assert again.propensity[0] == pytest.approx(block.propensity[37])
    assert not np.array_equal(audit_draws(2024, ids, 20_100), audit_draws(2024, ids, 20_101))
    assert not np.array_equal(audit_draws(2024, ids, 20_100), audit_draws(2025, ids, 20_100))


def test_audit_draws_are_uniform() -> None:
    u = audit_draws(7, [str(i) for i in range(20_000)], 1)
    assert u.shape == (20_000, 2) and ((u >= 0) & (u < 1)).all()
    # mean of 40,000 uniforms: standard error sqrt(1/12/40000) = 0.00144; allow 4
    assert abs(u.mean() - 0.5) < 4 * 0.00144
    # each decile holds 10 % ± 4 binomial standard errors
    deciles = np.bincount((u.ravel() * 10).astype(int), minlength=10) / u.size
    assert np.all(np.abs(deciles - 0.1) < 4 * np.sqrt(0.09 / u.size))
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 4 / np.sqrt(20_000)


def test_refuses_lists_the_probabilities_would_be_wrong_for() -> None:
    eligible = np.array([[True, True, False, True]])
    with pytest.raises(ValueError, match="not eligible"):
        inclusion(np.array([[0, 2]]), eligible, 0.1)
    with pytest.raises(ValueError, match="twice"):
        inclusion(np.array([[0, 0]]), eligible, 0.1)
    with pytest.raises(ValueError, match="shorter than k"):
        inclusion(np.array([[0, -1]]), eligible, 0.1)
    with pytest.raises(ValueError, match="followed by an item"):
        inclusion(np.array([[-1, 0]]), eligible, 0.1)
    with pytest.raises(ValueError, match="exploration rate"):
        inclusion(np.array([[0, 1]]), eligible, 1.5)
    with pytest.raises(ValueError, match="uniforms"):
        explore(np.array([[0, 1]]), eligible, 0.1, np.array([[0.5, 1.0]]))
