"""Off-policy estimates against a world whose click probabilities the test chooses.

The world: 2,000 customers × 12 items, a click-probability table drawn here (a customer
effect plus a taste × appeal interaction), 70 % of pairs eligible, lists of k = 3. The
logging policy ranks by a noisy copy of the table and explores with ε = 0.5; the target ranks
by the table itself (deterministic). Each repetition samples 1,000 customers, shows them the
logging policy's lists, draws clicks from the table and estimates the target's clicks per
list; the truth is the table's exact expectation over all 2,000 customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

import numpy as np
import pytest

from caifu.recommend.explore import explore, inclusion, propensity
from caifu.recommend.ope import OffPolicyEstimate, PolicyLog, evaluate
from caifu.recommend.topk import top_k

POPULATION, ITEMS, K, EPS, LISTS, REPS, CAP = 2000, 12, 3, 0.5, 500, 200, 4.0


@dataclass(frozen=True)
class World:
    click: np.ndarray  # (customers, items) click probability
    eligible: np.ndarray
    logging_lists: np.ndarray
    target: np.ndarray  # (customers, items) target inclusion, 1/0

    def value(self, inclusion_p: np.ndarray) -> float:
        """A policy's exact expected clicks per list over the population."""
        return float((inclusion_p * self.click).sum(axis=1).mean())


@cache
def world() -> World:
    g = np.random.default_rng(2024)
    taste, appeal = g.normal(size=(POPULATION, 3)), g.normal(size=(ITEMS, 3))
    logit = -1.5 + 0.6 * g.normal(size=(POPULATION, 1)) + 0.8 * taste @ appeal.T / np.sqrt(3)
    click = 1 / (1 + np.exp(-logit))
    eligible = g.random((POPULATION, ITEMS)) < 0.7
    types = np.zeros(ITEMS, np.int64)
    logging_lists = top_k(click + 0.5 * g.random(click.shape), eligible, types, K)
    target_lists = top_k(click, eligible, types, K)
    target = np.zeros(click.shape)
    rows = np.repeat(np.arange(POPULATION), K)
    ok = target_lists.ravel() >= 0
    target[rows[ok], target_lists.ravel()[ok]] = 1.0
    return World(click, eligible, logging_lists, target)


def logged(w: World, customers: np.ndarray, eps: float, rng: np.random.Generator,
           reward: np.ndarray | None = None) -> PolicyLog:
    """Serve ``customers`` with the exploring logging policy, draw clicks from the table (or
    take ``reward`` per customer × item), and log every pair shown or targeted."""
    lists, eligible = w.logging_lists[customers], w.eligible[customers]
    shown = explore(lists, eligible, eps, rng)
    n = len(customers)
    rows = np.repeat(np.arange(n), K)
    items = shown.items.ravel()
    keep = items >= 0
    rows, items, mu = rows[keep], items[keep], shown.propensity.ravel()[keep]
    truth = w.click if reward is None else reward
    clicks = truth[customers[rows], items]
    if reward is None:
        clicks = (rng.random(len(rows)) < clicks).astype(float)
    t_rows, t_items = np.nonzero(w.target[customers])
    extra = ~np.isin(t_rows * ITEMS + t_items, rows * ITEMS + items)
    t_rows, t_items = t_rows[extra], t_items[extra]
    all_rows, all_items = np.concatenate([rows, t_rows]), np.concatenate([items, t_items])
    return PolicyLog(
        list_id=all_rows, item=all_items,
        logging_p=np.concatenate([mu, propensity(lists, eligible, eps, t_rows, t_items)]),
        target_p=w.target[customers[all_rows], all_items],
        shown=np.arange(len(all_rows)) < len(rows),
        reward=np.concatenate([clicks, np.zeros(len(t_rows))]))


@cache
def repetitions() -> tuple[OffPolicyEstimate, ...]:
    w, rng = world(), np.random.default_rng(7)
    return tuple(evaluate(logged(w, rng.integers(0, POPULATION, LISTS), EPS, rng), cap=CAP)
                 for _ in range(REPS))


def _values(name: str) -> np.ndarray:
    return np.array([getattr(e, name).value for e in repetitions()])


def test_hand_computed_log() -> None:
    # list A: shows 1 (μ 1), 2 (μ 1/4, clicked), 3 (μ 1/2); the target takes 1, 2 and 4.
    # list B: shows 1 (μ 1, clicked), 2 (μ 1/2); the target takes 2, 3 and 5 (never logged).
    log = PolicyLog(
        list_id=np.array(["A", "A", "A", "A", "B", "B", "B", "B"], dtype=object),
        item=np.array([1, 2, 3, 4, 1, 2, 3, 5]),
        logging_p=np.array([1, 0.25, 0.5, 0.25, 1, 0.5, 0.5, 0]),
        target_p=np.array([1, 1, 0, 1, 0, 1, 1, 1.0]),
        shown=np.array([1, 1, 1, 0, 1, 1, 0, 0], bool),
        reward=np.array([1, 1, 0, np.nan, 1, 0, np.nan, np.nan]))
    e = evaluate(log, cap=3)
    # weights on shown rows: A 1, 4, 0; B 0, 2. Y = (5, 0), W = (5, 2), K = (3, 2)
    assert e.ips.value == pytest.approx(2.5)
    assert e.snips.value == pytest.approx(5 / 7 * 5 / 2)
    assert e.clipped.value == pytest.approx((1 + 3) / 2)
    assert e.logging.value == pytest.approx(1.5)
    # two customers: sd(Y) = 3.5355, standard error 2.5
    assert e.ips.half_width == pytest.approx(NormalDist().inv_cdf(0.975) * 2.5)
    assert e.ips.method == "normal"
    assert e.clipped_rows == 1
    assert e.clip_bias_bound == pytest.approx((0.25 + 0.25) / 2)  # A's items 2 and 4
    assert e.effective_sample_size == pytest.approx(7**2 / (1 + 16 + 4))
    assert (e.lists, e.customers, e.shown_rows) == (2, 2, 5)
    assert e.target_items_per_list == pytest.approx(3)
    assert e.unsupported_pairs == 1 and e.unsupported_items.tolist() == [5]
    assert e.unsupported_share == pytest.approx(1 / 6)
    assert e.unsupported_per_list == pytest.approx(0.5)


def test_ips_is_unbiased_and_its_interval_covers_the_truth() -> None:
    w = world()
    truth = w.value(w.target)
    ips = _values("ips")
    # the mean of 200 unbiased estimates is within 4 standard errors of the truth
    assert abs(ips.mean() - truth) < 4 * ips.std(ddof=1) / np.sqrt(REPS)
    covered = np.mean([e.ips.low <= truth <= e.ips.high for e in repetitions()])
    assert 0.90 <= covered <= 0.99
    # the reported width matches the spread actually seen across repetitions (±15 %)
    half = np.mean([e.ips.half_width for e in repetitions()])
    assert half / (1.96 * ips.std(ddof=1)) == pytest.approx(1, abs=0.15)
    # an estimator that returned the logging policy's own value would fail the first check
    logging_value = w.value(inclusion(w.logging_lists, w.eligible, EPS))
    assert truth - logging_value > 4 * ips.std(ddof=1) / np.sqrt(REPS)


def test_snips_trades_a_little_bias_for_less_variance() -> None:
    truth = world().value(world().target)
    snips, ips = _values("snips"), _values("ips")
    assert snips.std() < ips.std()
    assert abs(snips.mean() - truth) < 4 * snips.std(ddof=1) / np.sqrt(REPS)
    covered = np.mean([e.snips.low <= truth <= e.snips.high for e in repetitions()])
    assert 0.90 <= covered <= 0.99


def test_snips_returns_a_constant_reward_exactly_and_ips_does_not() -> None:
    w = world()
    rng = np.random.default_rng(1)
    e = evaluate(logged(w, rng.integers(0, POPULATION, 300), EPS, rng,
                        reward=np.full(w.click.shape, 0.5)))
    # every target item rewards 0.5, and the target shows K items in each list
    assert e.snips.value == pytest.approx(0.5 * K)
    assert e.ips.value != pytest.approx(0.5 * K, abs=1e-3)


def test_clipping_biases_downward_by_no_more_than_its_bound() -> None:
    w = world()
    mu = inclusion(w.logging_lists, w.eligible, EPS)
    truth = w.value(w.target)
    expected_clipped = w.value(np.minimum(w.target, CAP * mu))
    assert expected_clipped < truth
    clipped, ips = _values("clipped"), _values("ips")
    assert (clipped <= ips + 1e-12).all()
    assert abs(clipped.mean() - expected_clipped) < 4 * clipped.std(ddof=1) / np.sqrt(REPS)
    assert clipped.std() < ips.std()
    # the reported bound is Σ(π − cap·μ)⁺ per list, and the population's bound holds the bias
    population_bound = float(np.clip(w.target - CAP * mu, 0, None).sum(axis=1).mean())
    assert truth - expected_clipped <= population_bound
    bounds = np.array([e.clip_bias_bound for e in repetitions()])
    assert bounds.mean() == pytest.approx(population_bound, rel=0.1)
    assert all(e.clipped_rows > 0 for e in repetitions())


def test_a_log_without_exploration_cannot_support_the_target() -> None:
    w = world()
    rng = np.random.default_rng(3)
    customers = rng.integers(0, POPULATION, 400)
    e = evaluate(logged(w, customers, 0.0, rng))
    in_log = np.zeros(w.target.shape, bool)
    rows = np.repeat(np.arange(POPULATION), K)
    ok = w.logging_lists.ravel() >= 0
    in_log[rows[ok], w.logging_lists.ravel()[ok]] = True
    missing = (w.target.astype(bool) & ~in_log)[customers]
    assert e.unsupported_pairs == missing.sum() > 0
    assert e.unsupported_share == pytest.approx(missing.sum() / w.target[customers].sum())
    assert e.unsupported_per_list == pytest.approx(missing.sum() / 400)
    assert e.unsupported_items.tolist() == np.unique(np.nonzero(missing)[1]).tolist()
    # the estimate covers the supported part only: below the truth, by about what is missing
    truth = w.value(w.target)
    assert e.ips.value < truth
    with_exploration = evaluate(logged(w, customers, EPS, rng))
    assert with_exploration.unsupported_pairs == 0


def test_lists_of_one_customer_are_one_cluster() -> None:
    w = world()
    rng = np.random.default_rng(4)
    log = logged(w, rng.integers(0, POPULATION, 300), EPS, rng)
    twice = PolicyLog(
        list_id=np.concatenate([log.list_id, log.list_id + 10_000]),
        item=np.tile(log.item, 2), logging_p=np.tile(log.logging_p, 2),
        target_p=np.tile(log.target_p, 2), shown=np.tile(log.shown, 2),
        reward=np.tile(log.reward, 2), customer=np.tile(log.list_id, 2))
    once, repeated = evaluate(log), evaluate(twice)
    assert repeated.ips.value == pytest.approx(once.ips.value)
    assert (repeated.lists, repeated.customers) == (600, 300)
    # the same customers' lists seen twice are no more evidence than once
    assert repeated.ips.half_width == pytest.approx(once.ips.half_width)
    as_if_independent = evaluate(PolicyLog(**{**twice.__dict__, "customer": None}))
    assert as_if_independent.ips.half_width < 0.75 * once.ips.half_width


def test_bootstrap_over_customers() -> None:
    w = world()
    rng = np.random.default_rng(5)
    log = logged(w, rng.integers(0, POPULATION, LISTS), EPS, rng)
    normal = evaluate(log)
    boot = evaluate(log, bootstrap=400, rng=np.random.default_rng(9))
    again = evaluate(log, bootstrap=400, rng=np.random.default_rng(9))
    assert boot.ips == again.ips and boot.ips.method == "bootstrap"
    assert boot.ips.value == normal.ips.value
    assert boot.ips.low < boot.ips.value < boot.ips.high
    for name in ("ips", "snips", "clipped", "logging"):
        ratio = getattr(boot, name).half_width / getattr(normal, name).half_width
        assert ratio == pytest.approx(1, abs=0.2), name


def test_refuses_a_log_the_estimates_would_be_wrong_for() -> None:
    base = {"list_id": np.array([1, 1]), "item": np.array([7, 8]),
            "logging_p": np.array([1.0, 0.5]), "target_p": np.array([1.0, 0.0]),
            "shown": np.array([True, True]), "reward": np.array([1.0, 0.0])}
    evaluate(PolicyLog(**base))
    bad = {
        "propensities are wrong": {"logging_p": np.array([1.0, 0.0])},
        "twice": {"item": np.array([7, 7])},
        r"outside \[0, 1\]": {"reward": np.array([2.0, 0.0])},
        "one length": {"item": np.array([7])},
        "more than one customer": {"customer": np.array([1, 2])},
    }
    for message, change in bad.items():
        with pytest.raises(ValueError, match=message):
            evaluate(PolicyLog(**{**base, **change}))
    with pytest.raises(ValueError, match="Generator"):
        evaluate(PolicyLog(**base), bootstrap=100)
