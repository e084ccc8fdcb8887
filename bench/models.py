"""Churn and propensity models: quality on the demo broker's hidden truth, and training time.

    python bench/models.py                        # 100k-customer demo broker, 1M training rows
    python bench/models.py --customers 20000 --train-rows 200000   # a quick check

1. A demo broker of ``--customers`` is generated and ingested (cached under
   ``.bench/models/``), then ``caifu score`` runs on it (wall, CPU, peak RSS sampled every
   50 ms): the backtest's AUC, PR-AUC, lift and Brier for LightGBM, the logistic baseline and
   the one-feature heuristic.
2. **Hidden truth.** The generator's latent traits (never read by the product) against the
   scores of the customers eligible on the as-of date: Spearman's ρ and the mean trait in the
   top decile, for the model and for the heuristic ranking the same customers.
3. **Training time** on ``--train-rows`` rows: the churn design matrix of two cutoffs, resampled
   with replacement to that size; ``models.fit`` (LightGBM with early stopping, isotonic
   calibration, logistic baseline) beside the reference measured in the same run — plain
   ``lightgbm.train`` with the same parameters and the number of trees ``fit`` chose. Then
   scoring those rows (calibrated probabilities) and the reasons ``caifu score`` records
   (the top tenth, at most 5,000).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from caifu.analytics import propensity as models
from caifu.analytics.labels import TARGETS, label_window, labels
from caifu.data.demo import generate
from caifu.pipelines.profile import profile_features
from caifu.services.container import build as open_container
from caifu.services.ingest.load import Ingest
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.profiles.build import SCORE_TABLE, Build
from caifu.services.value.scoring import STEP_DAYS, Scoring, _to_explain
from caifu.settings import Settings

ROOT = Path(__file__).resolve().parents[1] / ".bench" / "models"
TRAITS = {"chinext_90d": "chinext_interest", "level2_90d": "level2_interest",
          "fund_purchase_90d": "fund_affinity", "churn_90d": "churn_hazard"}
console = Console(width=None if sys.stdout.isatty() else 140)


class PeakRss:
    """Peak resident memory of this process, sampled every 50 ms while in the block."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def workspace(customers: int, seed: int) -> Path:
    base = ROOT / f"{customers}-{seed}"
    ws = base / "ws"
    if (base / "ready").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    console.print(f"generating and ingesting a {customers:,}-customer demo broker (cached)")
    generate(base / "exports", customers=customers, seed=seed)
    c = init_workspace(ws, Settings())
    create_tenant(c, "demo", "演示证券")
    Ingest(c).ingest("demo", [base / "exports"])
    c.close()
    (base / "ready").write_text("ok")
    return base


def score(base: Path) -> tuple[object, dict[str, float]]:
    c = open_container(Settings(), base / "ws")
    w0, c0 = time.perf_counter(), cpu()
    with PeakRss() as rss:
        result = Scoring(c, lambda m: console.print(f"  … {m}", highlight=False)).run("demo")
    figures = {"wall": time.perf_counter() - w0, "cpu": cpu() - c0, "rss": rss.peak / 2**30}
    c.close()
    return result, figures


def backtest_table(result) -> Table:  # type: ignore[no-untyped-def]
    t = Table("target", "model", "AUC", "PR-AUC", "lift top 10%", "Brier", "positives / rows",
              title=f"backtest (tested on {result.cutoffs['backtest_test'][0]} + 90 days)")
    for tr in result.targets:
        for name in ("lightgbm", "logistic", "heuristic"):
            m = tr.backtest[name]
            t.add_row(tr.target if name == "lightgbm" else "",
                      name if name != "heuristic" else f"heuristic ({m['feature']})",
                      f"{m['auc']:.3f}", f"{m['pr_auc']:.3f}", f"{m['lift_top_decile']:.2f}",
                      f"{m['brier']:.4f}" if "brier" in m else "—",
                      f"{m['positives']:,} / {m['rows']:,}" if name == "lightgbm" else "")
    return t


def hidden_truth(base: Path, as_of: dt.date) -> Table:
    c = open_container(Settings(), base / "ws")
    truth = pq.read_table(base / "exports" / "_ground_truth" / "latent_traits.parquet")
    scores = ds.dataset(c.lake.files("demo", SCORE_TABLE), format="parquet").to_table()
    scores = scores.filter(pc.equal(scores["as_of"], pa.scalar(as_of, pa.date32())))
    with c.scratch("bench-models") as scratch:
        s = c.session("duckdb", scratch)
        features = s.to_arrow(profile_features(Build(c).load_inputs(s, "demo"), as_of, 8))
        s.close()
    c.close()
    row_of = {cid: i for i, cid in enumerate(features["customer_id"].to_pylist())}
    t = Table("target", "trait", "customers", "ρ model", "ρ heuristic", "top-decile trait: model",
              "heuristic", "everyone", title=f"hidden truth — scores as of {as_of}")
    for target, trait in TRAITS.items():
        part = scores.filter(pc.equal(scores["score"], target))
        ids = part["customer_id"].to_pylist()
        p = np.asarray(part["value"].to_numpy())
        value = dict(zip(truth["customer_id"].to_pylist(), truth[trait].to_pylist(), strict=True))
        y = np.array([value[i] for i in ids], dtype=float)
        column = features[TARGETS[target].heuristic].to_numpy(zero_copy_only=False)
        h = np.nan_to_num(np.array([column[row_of[i]] for i in ids], dtype=float)) \
            * TARGETS[target].heuristic_sign

        def top(v: np.ndarray, y: np.ndarray = y) -> float:
            return float(y[np.argsort(-v, kind="stable")[: max(1, len(v) // 10)]].mean())

        t.add_row(target, trait, f"{len(ids):,}", f"{spearmanr(p, y)[0]:.3f}",
                  f"{spearmanr(h, y)[0]:.3f}", f"{top(p):.3f}", f"{top(h):.3f}",
                  f"{y.mean():.3f}")
    return t


def training_time(base: Path, as_of: dt.date, rows: int) -> Table:
    c = open_container(Settings(), base / "ws")
    step = dt.timedelta(days=STEP_DAYS)
    designs, ys = [], []
    with c.scratch("bench-train") as scratch:
        s = c.session("duckdb", scratch)
        inputs = Build(c).load_inputs(s, "demo")
        for cutoff in (as_of - 2 * step, as_of - step):
            f = s.to_arrow(profile_features(inputs, cutoff, 8))
            lab = s.to_arrow(labels(inputs, "churn_90d", label_window(cutoff, 90, as_of), 8))
            rows_ = f.join(lab, "customer_id", join_type="inner").sort_by("customer_id")
            columns = models.feature_columns(rows_, models.POSITION_FEATURES)
            designs.append(models.design_matrix(rows_, columns))
            ys.append(rows_["label"].to_numpy(zero_copy_only=False).astype(np.int8))
        s.close()
    c.close()
    x = np.vstack([d.x for d in designs])
    y = np.concatenate(ys)
    rng = np.random.default_rng(3)
    pick = rng.integers(0, len(y), rows)
    # resampled rows keep their customer's id, so copies of one row land in the same split
    # (grow / early-stop / calibrate) and early stopping still sees unseen customers
    ids = [c for d in designs for c in d.customer_ids]
    design = models.Design(designs[0].names, x[pick], [ids[i] for i in pick])
    y = y[pick]
    w0, c0 = time.perf_counter(), cpu()
    with PeakRss() as rss:
        model = models.fit("churn_90d", design, y)
    fit_wall, fit_cpu, fit_rss = time.perf_counter() - w0, cpu() - c0, rss.peak / 2**30
    params = {k: v for k, v in models.PARAMS.items() if k != "n_estimators"}
    params["bagging_fraction"] = params.pop("subsample")
    params["bagging_freq"] = params.pop("subsample_freq")
    params["feature_fraction"] = params.pop("colsample_bytree")
    params["lambda_l2"] = params.pop("reg_lambda")
    params["min_data_in_leaf"] = params.pop("min_child_samples")
    params.update(num_threads=2, seed=7)
    w0, c0 = time.perf_counter(), cpu()
    lgb.train(params, lgb.Dataset(design.x, y), num_boost_round=model.best_iteration)
    ref_wall, ref_cpu = time.perf_counter() - w0, cpu() - c0
    w0 = time.perf_counter()
    p = model.predict(design.x)
    predict_wall = time.perf_counter() - w0
    mask = _to_explain(p)
    w0 = time.perf_counter()
    models.explain(model, design.x, mask)
    explain_wall = time.perf_counter() - w0
    t = Table("step", "rows", "wall s", "CPU-s", "peak RSS", "reference (plain lightgbm.train)",
              "ratio", title=f"training and scoring, churn_90d, {model.best_iteration} trees, "
                             f"{len(design.names)} features")
    t.add_row("models.fit (trees + early stop + calibration + logistic)", f"{rows:,}",
              f"{fit_wall:.1f}", f"{fit_cpu:.1f}", f"{fit_rss:.2f} GB",
              f"{ref_wall:.1f} s / {ref_cpu:.1f} CPU-s", f"{fit_wall / ref_wall:.2f}×")
    t.add_row("score (calibrated probabilities)", f"{rows:,}", f"{predict_wall:.1f}", "", "",
              "", "")
    t.add_row("reasons (TreeSHAP) for the top of the scores", f"{int(mask.sum()):,}",
              f"{explain_wall:.1f}", "", "", "", "")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    console.rule(f"bench/models.py — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, source {rev}, "
                 f"{os.cpu_count()} cores")
    base = workspace(args.customers, args.seed)
    result, fig = score(base)
    console.print(f"caifu score on {args.customers:,} customers: {fig['wall']:.1f} s wall, "
                  f"{fig['cpu']:.1f} CPU-s, peak RSS {fig['rss']:.2f} GB; "
                  f"phases {result.timings}", soft_wrap=True)
    console.print(backtest_table(result))
    console.print(hidden_truth(base, result.as_of))
    console.print(training_time(base, result.as_of, args.train_rows))
    console.print(f"max RSS of the process: "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
