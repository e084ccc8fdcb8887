"""Issue 16 goal: 0 suitability violations in 10^7 generated recommendations.

Customers with random assessments (every C-level incl. unassessed and lowest category, every
objective, horizon and variety set, a quarter expired, some professional) and a random
catalogue (every R-level × horizon × variety) are ranked by random scores behind the mask
(``recommend.eligibility``) and cut to top-10 (``recommend.topk``); every chosen pair is then
judged again by ``core.suitability.judge`` (the scalar rules the sidebar uses). Prints the
violations (goal 0), the pairs masked per second, and judge's pairs per second as the
reference (the mask's speed-up over judging every pair one by one).

    python bench/recommend_suitability.py [--recommendations 10000000] [--seed 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time

import numpy as np
from rich.console import Console
from rich.progress import Progress

from caifu.core.suitability import HORIZONS, OBJECTIVES, VARIETIES, Investor
from caifu.recommend.catalogue import NEVER, Catalogue
from caifu.recommend.eligibility import customers_from_investors, recheck, suitability_refusals
from caifu.recommend.topk import top_k

ON = dt.date(2026, 12, 7)
K = 10


def catalogue() -> Catalogue:
    products = list(itertools.product(range(1, 6), range(4), range(-1, 5)))
    n = len(products)
    r, h, v = (np.array(x, np.int8) for x in zip(*products, strict=True))
    return Catalogue(np.array([f"I{i}" for i in range(n)], dtype=object),
                     np.random.default_rng(0).integers(0, 3, n).astype(np.int8),
                     np.full(n, "x", dtype=object), np.full(n, "t", dtype=object), r, h, v,
                     np.zeros(n, np.int32), np.full(n, NEVER, np.int32),
                     np.full(n, "", dtype=object), np.full(n, "", dtype=object),
                     np.ones(n, bool))


def investors(rng: np.random.Generator, n: int) -> list[Investor]:
    out = []
    for _ in range(n):
        level = rng.integers(0, 6)
        sets = rng.integers(0, 1 << len(VARIETIES))
        out.append(Investor(
            f"C{level}" if level else None,
            ON + dt.timedelta(days=int(rng.integers(-90, 270))) if rng.random() < .9 else None,
            no_loss_tolerance=bool(rng.random() < .1), no_civil_capacity=bool(rng.random() < .02),
            objective=str(rng.choice(OBJECTIVES)) if rng.random() < .9 else None,
            professional=bool(rng.random() < .05),
            horizon=str(rng.choice(HORIZONS)) if rng.random() < .9 else None,
            varieties=frozenset(v for i, v in enumerate(VARIETIES) if sets >> i & 1)
            if rng.random() < .8 else None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recommendations", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cat = catalogue()
    day = (ON - dt.date(1970, 1, 1)).days
    block = 20_000
    made = violations = pairs = 0
    mask_s = judge_s = 0.0
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("recommendations", total=args.recommendations)
        while made < args.recommendations:
            invs = investors(rng, block)
            cust = customers_from_investors([str(i) for i in range(block)], invs, [True] * block)
            t0 = time.perf_counter()
            ok = suitability_refusals(cust, cat, day) == 0
            lists = top_k(rng.random((block, len(cat))), ok, cat.item_type.astype(np.int64), K)
            mask_s += time.perf_counter() - t0
            pairs += ok.size
            chosen = lists >= 0
            rows = np.repeat(np.arange(block), K)[chosen.ravel()]
            t0 = time.perf_counter()
            rc = recheck(cust, cat, ON, rows, lists[chosen])
            judge_s += time.perf_counter() - t0
            violations += rc.violations
            made += rc.checked
            progress.update(task, completed=min(made, args.recommendations))
    print(f"recommendations re-checked: {made:,}  violations: {violations} (goal 0)")
    print(f"mask + top-{K}: {pairs / mask_s:,.0f} customer×item pairs/s ({mask_s:.1f} s)")
    print(f"reference, core.suitability.judge one pair at a time: {made / judge_s:,.0f} pairs/s "
          f"({judge_s:.1f} s) — the mask is {pairs / mask_s / (made / judge_s):,.0f}× faster")


if __name__ == "__main__":
    main()
