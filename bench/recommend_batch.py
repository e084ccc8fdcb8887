"""Issue 16 goals: the batch's top-10 for 1M customers (≤ 60 s) and the sidebar's live top-10
(p99 ≤ 20 ms), on a synthetic 1M-customer tenant built in memory (``_synthetic_tenant``).

Runs the real code — ``policy.Fitted.lists`` and ``batch.write`` to Parquet — and prints the
fit time (apart), the listing time, customers/s, the split by stage (mask, cheap scores,
candidate top-k, features, LightGBM predict, final top-k, reasons, re-check, write), and as
the reference measured in the same run: the same mask and a plain numpy top-10 by
argpartition over the dense segment-popularity scores — the floor of any ranker — and the
ratio. Then one customer's list at a time (the sidebar's live computation) over random
customers, p50 / p99.

    python bench/recommend_batch.py [--customers 1000000] [--block 2000] [--sidebar 10000]
    python bench/recommend_batch.py --customers 20000 --sidebar 0 --check .bench/rec_check.parquet
    python bench/recommend_batch.py --customers 200000 --tradeoff --sidebar 0 --no-batch

``--check FILE``: the batch file must equal FILE (lists, scores, reasons; ``--save-check``
writes FILE instead) — the fixed-input equality check kept across speed changes.
``--tradeoff``: fewer candidates / trees on the training split's held-out customers: time
per customer, NDCG@10 and recall@10 against their uptake in the window after, and the share
of the default lists kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow.parquet as pq
from _measure import busy_cpu, pct
from _synthetic_tenant import Tenant, build_tenant
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from caifu.recommend.metrics import quality
from caifu.services.recommend import batch, policy

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
console = Console()
err = Console(stderr=True)
STAGES = ("mask", "cheap scores", "candidate top-k", "features", "LightGBM predict",
          "final top-k", "reasons", "re-check", "write")


def bar() -> Progress:
    return Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err)


def reference(f: policy.Fitted, block: int, k: int) -> dict[str, float]:
    """The floor of any ranker: the same mask, segment popularity, argpartition top-k."""
    n = len(f.ids)
    mask_s = top_s = 0.0
    cpu0 = time.process_time()
    with bar() as p:
        task = p.add_task("reference: mask + popularity top-10", total=n)
        for start in range(0, n, block):
            rows = np.arange(start, min(start + block, n))
            t0 = time.perf_counter()
            ok = f.elig.of(rows)
            t1 = time.perf_counter()
            s = np.where(ok, f.ctx.popularity.score(f.ctx.level[rows]), -np.inf)
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(s, part, 1), axis=1)
            lists = np.take_along_axis(part, order, 1)
            lists[~np.isfinite(np.take_along_axis(s, lists, 1))] = -1
            mask_s += t1 - t0
            top_s += time.perf_counter() - t1
            p.update(task, completed=int(rows[-1]) + 1)
    return {"seconds": mask_s + top_s, "mask_seconds": mask_s, "topk_seconds": top_s,
            "cpu_seconds": time.process_time() - cpu0}


def run_batch(f: policy.Fitted, out: Path, block: int, k: int, workers: int
              ) -> dict[str, Any]:
    me = psutil.Process()
    cpu0, busy0, t0 = me.cpu_times(), busy_cpu(), time.perf_counter()
    with bar() as p:
        task = p.add_task("batch.write", total=len(f.ids))
        result = batch.write(f, out, k, progress=lambda d, _n: p.update(task, completed=d),
                             block=block, workers=workers)
    wall = time.perf_counter() - t0
    cpu1 = me.cpu_times()
    own = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {"customers": result.customers, "rows": result.rows, "empty": result.empty,
            "short": result.short, "violations": result.violations, "seconds": wall,
            "cpu_seconds": own, "background_cores": max(busy_cpu() - busy0 - own, 0) / wall,
            "stages": result.stages, "stages_cpu": result.stages_cpu,
            "bytes": out.stat().st_size}


def sidebar(f: policy.Fitted, n: int, k: int, seed: int) -> dict[str, Any]:
    """One customer's list at a time, as the live path computes it."""
    rows = np.random.default_rng(seed).choice(len(f.ids), n, replace=False)
    stages = policy.Stages()
    f.lists(rows[:1], k)  # first call: imports and caches
    times, cpu = [], []
    with bar() as p:
        task = p.add_task("sidebar: one customer's top-10", total=n)
        for i, r in enumerate(rows):
            t0, c0 = time.perf_counter(), time.process_time()
            f.lists(np.array([r]), k, stages=stages)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if i % 100 == 0:
                p.update(task, completed=i + 1)
        p.update(task, completed=n)
    ms = [t * 1000 for t in times]
    cpu_ms = [t * 1000 for t in cpu]
    return {"calls": n, "p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99), "max_ms": max(ms),
            "mean_ms": float(np.mean(ms)), "cpu_p50_ms": pct(cpu_ms, 0.5),
            "cpu_p99_ms": pct(cpu_ms, 0.99),
            "stages_ms": {s: v / n * 1000 for s, v in stages.seconds.items()},
            "stages_cpu_ms": {s: v / n * 1000 for s, v in stages.cpu.items()}}


def tradeoff(t: Tenant, k: int, block: int) -> list[dict[str, Any]]:
    """Fewer candidates / trees on the training split: the held-out half of the sample (not
    among the model's training queries), customers with uptake in the window after."""
    f = t.train
    truth = t.held_out_truth
    took = np.flatnonzero(np.diff(truth.indptr) > 0)
    share = np.asarray(f.ctx.history.sum(axis=0)).ravel()
    share = share / max(share.sum(), 1.0)
    eligible_items = int(len(f.data.cat))
    base: np.ndarray | None = None
    out = []
    settings = [(c, tr) for c in (60, 40, 30, 20, 10) for tr in (50, 30)]
    with bar() as p:
        task = p.add_task("trade-off: candidates × trees", total=len(settings))
        for cand, trees in settings:
            g = dataclasses.replace(f, candidates=cand, trees=trees)
            t0 = time.process_time()
            lists = np.concatenate([g.lists(took[s:s + block], k)[0]
                                    for s in range(0, len(took), block)])
            cpu = time.process_time() - t0
            if base is None:
                base = lists
            kept = np.mean([len(np.intersect1d(a[a >= 0], b[b >= 0])) / max((b >= 0).sum(), 1)
                            for a, b in zip(lists, base, strict=True)])
            q = quality(lists, truth[took], share, eligible_items)
            out.append({"candidates": cand, "trees": trees, "customers": len(took),
                        "cpu_ms_per_customer": cpu / len(took) * 1000, "ndcg": q.ndcg,
                        "recall": q.recall, "kept_of_default": float(kept)})
            p.advance(task)
    return out


def check(out: Path, against: Path) -> None:
    got, want = pq.read_table(out), pq.read_table(against)
    if got.num_rows != want.num_rows:
        raise SystemExit(f"check FAILED: {got.num_rows:,} rows, expected {want.num_rows:,}")
    bad = [c for c in want.column_names if not got[c].equals(want[c])]
    if bad:
        raise SystemExit(f"check FAILED: columns {', '.join(bad)} differ from {against}")
    console.print(f"check: {got.num_rows:,} rows equal to {against} (lists, scores, reasons)")


def report(args: argparse.Namespace, t: Tenant, b: dict[str, Any] | None,
           ref: dict[str, float] | None, side: dict[str, Any] | None,
           trade: list[dict[str, Any]] | None) -> None:
    fit = Table(title=f"fit (apart from listing): {len(t.fitted.ids):,} customers, "
                      f"{t.interactions:,} interactions, {len(t.fitted.data.cat)} items")
    fit.add_column("step")
    fit.add_column("seconds", justify="right")
    for name, s in t.fit_seconds.items():
        fit.add_row(name, f"{s:.1f}")
    console.print(fit)
    if b is not None and ref is not None:
        n = b["customers"]
        console.print(
            f"batch.write ({args.workers} workers): {n:,} customers → {b['rows']:,} rows ({b['bytes'] / 1e6:.0f} MB) in "
            f"[bold]{b['seconds']:.1f} s[/bold] wall, {b['cpu_seconds']:.1f} CPU-s = "
            f"{n / b['seconds']:,.0f} customers/s (background load {b['background_cores']:.2f} "
            f"cores); {b['empty']:,} with no eligible item, {b['short']:,} short; re-check "
            f"violations {b['violations']}")
        console.print(
            f"reference, mask + popularity argpartition top-{args.k}: {ref['seconds']:.1f} s "
            f"(mask {ref['mask_seconds']:.1f} s, top-k {ref['topk_seconds']:.1f} s) = "
            f"{n / ref['seconds']:,.0f} customers/s, {ref['cpu_seconds']:.1f} CPU-s; batch / "
            f"reference = [bold]{b['seconds'] / ref['seconds']:.1f}×[/bold] wall, "
            f"{b['cpu_seconds'] / ref['cpu_seconds']:.1f}× CPU")
        st = Table(title="batch time by stage")
        for col in ("stage", "wall s", "CPU s", "CPU share", "CPU µs per customer"):
            st.add_column(col, justify="left" if col == "stage" else "right")
        total = sum(b["stages_cpu"].values())
        for name in STAGES:
            s, c = b["stages"].get(name, 0.0), b["stages_cpu"].get(name, 0.0)
            st.add_row(name, f"{s:.1f}", f"{c:.1f}", f"{c / total:.0%}", f"{c / n * 1e6:.0f}")
        st.add_row("(outside the stages)", f"{b['seconds'] - sum(b['stages'].values()):.1f}",
                   f"{b['cpu_seconds'] - total:.1f}", "", "")
        console.print(st)
    if side is not None:
        console.print(f"sidebar, Fitted.lists on one customer × {side['calls']:,}: p50 "
                      f"{side['p50_ms']:.1f} ms, [bold]p99 {side['p99_ms']:.1f} ms[/bold] "
                      f"(goal ≤ 20), mean {side['mean_ms']:.1f}, max {side['max_ms']:.1f}; CPU "
                      f"p50 {side['cpu_p50_ms']:.1f} ms, p99 {side['cpu_p99_ms']:.1f} ms; by "
                      "stage (mean wall / CPU ms): " + ", ".join(
                          f"{k} {v:.2f}/{side['stages_cpu_ms'][k]:.2f}"
                          for k, v in side["stages_ms"].items()))
    if trade:
        tt = Table(title="trade-off on the training split's customers with uptake")
        for col in ("candidates", "trees", "CPU ms / customer", "NDCG@10", "recall@10",
                    "default lists kept"):
            tt.add_column(col, justify="right")
        for r in trade:
            tt.add_row(str(r["candidates"]), str(r["trees"]), f"{r['cpu_ms_per_customer']:.3f}",
                       f"{r['ndcg']:.4f}", f"{r['recall']:.4f}", f"{r['kept_of_default']:.1%}")
        console.print(tt)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--block", type=int, default=policy.BLOCK)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="batch.write's threads")
    ap.add_argument("--sidebar", type=int, default=10_000, help="single-customer calls (0: none)")
    ap.add_argument("--out", type=Path, default=CACHE / "recommend_batch.parquet")
    ap.add_argument("--no-batch", action="store_true", help="skip the batch and the reference")
    ap.add_argument("--check", type=Path, help="the batch file must equal this one")
    ap.add_argument("--save-check", action="store_true", help="write --check instead")
    ap.add_argument("--tradeoff", action="store_true")
    args = ap.parse_args()
    with err.status("building the synthetic tenant") as status:
        tenant = build_tenant(args.customers, args.seed, lambda m: status.update(m))
    b = ref = side = trade = None
    if not args.no_batch:
        b = run_batch(tenant.fitted, args.out, args.block, args.k, args.workers)
        if args.check is not None:
            if args.save_check:
                args.check.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(args.out, args.check)
                console.print(f"saved the check file {args.check}")
            else:
                check(args.out, args.check)
        ref = reference(tenant.fitted, args.block, args.k)
    if args.sidebar:
        side = sidebar(tenant.fitted, args.sidebar, args.k, args.seed)
    if args.tradeoff:
        trade = tradeoff(tenant, args.k, args.block)
    report(args, tenant, b, ref, side, trade)
    out = CACHE / "results" / f"recommend-batch-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                               "fit_seconds": tenant.fit_seconds, "batch": b, "reference": ref,
                               "sidebar": side, "tradeoff": trade}, indent=1) + "\n")
    console.print(f"raw results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
