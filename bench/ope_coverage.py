"""How often the off-policy intervals of ``recommend.ope`` hold the truth, by log size and
click rate.

The world is the unit test's (tests/unit/recommend/test_ope.py): 2,000 customers × 12 items,
a click-probability table (customer effect + taste × appeal), 70 % of pairs eligible, k = 3;
the logging policy ranks by a noisy copy of the table and explores its last slot with
ε = 0.5 (``recommend.explore``); the target ranks by the table. ``--base`` sets the table's
logit intercept: −1.5 gives a ≈ 21 % click rate (the test's), −3.0 ≈ 7 % (a conversion-like
rare outcome). Each repetition samples customers, serves, draws clicks, estimates; the truth
is the table's exact expectation. Prints each interval's coverage beside the nominal level
(the reference) and the share of misses that fell below the truth.

    python bench/ope_coverage.py [--reps 1000] [--lists 200 500 1000 2000] [--base -1.5 -3.0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from caifu.recommend.explore import explore, propensity
from caifu.recommend.ope import OffPolicyEstimate, PolicyLog, evaluate
from caifu.recommend.topk import top_k

POPULATION, ITEMS, K, EPS = 2000, 12, 3, 0.5


def world(base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Click table, eligible mask, logging lists and target inclusion (1/0)."""
    g = np.random.default_rng(2024)
    taste, appeal = g.normal(size=(POPULATION, 3)), g.normal(size=(ITEMS, 3))
    logit = base + 0.6 * g.normal(size=(POPULATION, 1)) + 0.8 * taste @ appeal.T / np.sqrt(3)
    click = 1 / (1 + np.exp(-logit))
    eligible = g.random((POPULATION, ITEMS)) < 0.7
    types = np.zeros(ITEMS, np.int64)
    logging_lists = top_k(click + 0.5 * g.random(click.shape), eligible, types, K)
    target_lists = top_k(click, eligible, types, K)
    target = np.zeros(click.shape)
    rows = np.repeat(np.arange(POPULATION), K)
    ok = target_lists.ravel() >= 0
    target[rows[ok], target_lists.ravel()[ok]] = 1.0
    return click, eligible, logging_lists, target


def one_log(click: np.ndarray, eligible: np.ndarray, lists: np.ndarray, target: np.ndarray,
            n: int, rng: np.random.Generator) -> PolicyLog:
    cust = rng.integers(0, POPULATION, n)
    served = explore(lists[cust], eligible[cust], EPS, rng)
    rows = np.repeat(np.arange(n), K)
    items = served.items.ravel()
    keep = items >= 0
    rows, items, mu = rows[keep], items[keep], served.propensity.ravel()[keep]
    clicks = (rng.random(len(rows)) < click[cust[rows], items]).astype(float)
    t_rows, t_items = np.nonzero(target[cust])
    extra = ~np.isin(t_rows * ITEMS + t_items, rows * ITEMS + items)
    t_rows, t_items = t_rows[extra], t_items[extra]
    all_rows, all_items = np.concatenate([rows, t_rows]), np.concatenate([items, t_items])
    return PolicyLog(
        list_id=all_rows, item=all_items,
        logging_p=np.concatenate([mu, propensity(lists[cust], eligible[cust], EPS, t_rows,
                                                 t_items)]),
        target_p=target[cust[all_rows], all_items],
        shown=np.arange(len(all_rows)) < len(rows),
        reward=np.concatenate([clicks, np.zeros(len(t_rows))]))


def coverage(results: list[OffPolicyEstimate], name: str, truth: float) -> tuple[float, float]:
    """Share of intervals holding the truth, and share lying wholly below it."""
    iv = [getattr(e, name) for e in results]
    return (float(np.mean([i.low <= truth <= i.high for i in iv])),
            float(np.mean([i.high < truth for i in iv])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--lists", type=int, nargs="+", default=[200, 500, 1000, 2000])
    ap.add_argument("--base", type=float, nargs="+", default=[-1.5, -3.0])
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    print(f"nominal level (reference): 95 %; {args.reps} repetitions per row, "
          f"bootstrap {args.bootstrap} resamples over customers")
    print("click rate | lists | ESS | IPS normal (below) | SNIPS normal (below) | "
          "IPS bootstrap (below) | IPS ± | s")
    for base in args.base:
        click, eligible, lists, target = world(base)
        truth = float((target * click).sum(axis=1).mean())
        print(f"logit intercept {base}: the target's true value {truth:.3f} clicks per list")
        for n in args.lists:
            rng = np.random.default_rng(int(n * 10 - base * 100))
            t0 = time.perf_counter()
            normal, boot = [], []
            for _ in range(args.reps):
                log = one_log(click, eligible, lists, target, n, rng)
                normal.append(evaluate(log))
                boot.append(evaluate(log, bootstrap=args.bootstrap, rng=rng))
            took = time.perf_counter() - t0
            cells = [coverage(normal, "ips", truth), coverage(normal, "snips", truth),
                     coverage(boot, "ips", truth)]
            ess = np.mean([e.effective_sample_size for e in normal])
            half = np.mean([e.ips.half_width for e in normal])
            print(f"{click.mean():9.1%} | {n:5d} | {ess:4.0f} | "
                  + " | ".join(f"{c:6.1%} ({b:4.1%})" for c, b in cells)
                  + f" | {half:.3f} | {took:.0f}")


if __name__ == "__main__":
    main()
