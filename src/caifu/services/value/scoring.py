"""Scoring: train the churn and propensity models on the tenant's history, check them on a
later period, and score every eligible customer as of a date.

    caifu score -t demo [--as-of 2026-10-30] [--target churn_90d …]

With ``T`` the as-of date (default: the newest data) and a 90-day horizon:

- **backtest** — train on the profiles at ``T−270`` and ``T−180`` (outcomes to ``T−90``),
  evaluate on the profiles at ``T−90`` with outcomes in ``T−89 … T``: LightGBM, the logistic
  baseline and the target's one-feature heuristic, side by side;
- **production** — train the same way on ``T−180`` and ``T−90`` (outcomes to ``T``) and score
  the customers eligible at ``T``; the top tenth of each score (and any at 0.5 or more, at
  most 5,000 per score) carry their top three reasons.

Scores go to the lake table ``model_scores`` (one snapshot per as-of date; ``scored_at`` is
the last second of the as-of day in UTC, the data the score saw), where model tags
(``kind: model`` in the tag file) find them at the next build. Models and their evaluation go
to ``models/<tenant>/<as-of>/`` in the workspace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from caifu.adapters.engines.session import EngineSession
from caifu.analytics import propensity
from caifu.analytics.labels import TARGETS, LabelWindow, label_window, labels
from caifu.core.errors import ConfigError
from caifu.core.tags import ModelTag
from caifu.pipelines.profile import ProfileInputs, profile_features
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles import tag_definitions
from caifu.services.profiles.build import SCORE_TABLE, Build, utc_offset_hours

STEP_DAYS = 90
SNAPSHOT_SLACK_DAYS = 31  # a positions snapshot this close before a date stands for it
# Reasons (TreeSHAP contributions) cost far more than scores; they are recorded for the
# customers someone will act on: everyone a model tag will pick, and besides them the top
# tenth of each score and everyone at 0.5 or more, at most EXPLAIN_MAX customers per score.
EXPLAIN_SHARE, EXPLAIN_AT, EXPLAIN_MAX = 0.10, 0.5, 5_000

Progress = Callable[[str], None]


@dataclass
class TargetResult:
    target: str
    title: str
    backtest: dict[str, Any] = field(default_factory=dict)  # model → metrics
    scored: int = 0
    mean_score: float = 0.0
    model_version: str = ""
    problem: str | None = None


@dataclass
class ScoringResult:
    tenant: str
    as_of: dt.date
    cutoffs: dict[str, list[str]]
    targets: list[TargetResult]
    notes: list[str]
    folder: str
    timings: dict[str, float]


class Scoring:
    def __init__(self, container: Container, progress: Progress | None = None) -> None:
        self.c = container
        self.progress = progress or (lambda _msg: None)

    def run(self, tenant: str, *, as_of: dt.date | None = None,
            targets: list[str] | None = None, engine: str = "duckdb") -> ScoringResult:
        chosen = targets or list(TARGETS)
        unknown = [t for t in chosen if t not in TARGETS]
        if unknown:
            raise ConfigError(f"unknown target(s) {', '.join(unknown)}; known: "
                              f"{', '.join(TARGETS)}")
        tz = get_tenant(self.c, tenant).timezone
        with self.c.lock(tenant, SCORE_TABLE), \
                self.c.job_session(engine, f"score-{tenant}") as s:
            return self._run(s, tenant, tz, as_of, chosen)

    def _run(self, s: EngineSession, tenant: str, tz: str, as_of: dt.date | None,
             chosen: list[str]) -> ScoringResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        build = Build(self.c)
        inputs = build.load_inputs(s, tenant)
        newest = build.data_as_of(s, inputs, tz)
        if newest is None:
            raise ConfigError(f"tenant {tenant!r} has no facts yet: ingest data first")
        as_of = as_of or newest
        if as_of > newest:
            raise ConfigError(f"--as-of {as_of} is after the newest data ({newest}): scores "
                              "are made from what is known on the date; ingest newer data or "
                              "pick an earlier date")
        offset = utc_offset_hours(tz, as_of)
        step = dt.timedelta(days=STEP_DAYS)
        backtest_train, test, prod_train = [as_of - 3 * step, as_of - 2 * step], as_of - step, \
            [as_of - 2 * step, as_of - step]
        dates = sorted({*backtest_train, test, *prod_train, as_of})
        notes: list[str] = []
        drop = frozenset() if self._snapshots_cover(s, inputs, dates) else propensity.POSITION_FEATURES
        if drop:
            notes.append("positions snapshots do not reach back to every cutoff: holdings-based "
                         "features (" + ", ".join(sorted(drop)) + ") are left out of the models")
        features: dict[dt.date, pa.Table] = {}
        for d in dates:
            self.progress(f"profiles as of {d}")
            features[d] = s.to_arrow(profile_features(inputs, d, offset))
        timings["profiles"] = round(time.perf_counter() - t0, 3)
        columns = propensity.feature_columns(features[as_of], drop)
        definitions, _ = tag_definitions.load_definitions(self.c, tenant)
        tag_minimum: dict[str, float] = {}
        for d in definitions:  # the lowest threshold a model tag sets on each score
            if isinstance(d.spec, ModelTag):
                tag_minimum[d.spec.score] = min(d.spec.min_score,
                                                tag_minimum.get(d.spec.score, 1.0))
        folder = self.c.root / "models" / tenant / as_of.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        results: list[TargetResult] = []
        score_parts: list[pa.Table] = []
        for name in chosen:
            t1 = time.perf_counter()
            self.progress(f"model {name}")
            target = TARGETS[name]
            result = TargetResult(name, target.title)
            try:
                part = self._target(s, inputs, name, features, columns, backtest_train, test,
                                    prod_train, as_of, offset, newest, result, folder,
                                    tag_minimum)
                score_parts.append(part)
            except propensity.ModelError as exc:
                result.problem = str(exc)
                notes.append(f"{name}: not scored — {exc}")
            results.append(result)
            timings[name] = round(time.perf_counter() - t1, 3)
        if score_parts:
            scores = pa.concat_tables(score_parts)
            self.c.lake.write_snapshot(tenant, SCORE_TABLE, scores, as_of.isoformat(),
                                       {"caifu.as_of": as_of.isoformat()})
        cutoffs = {"backtest_train": [d.isoformat() for d in backtest_train],
                   "backtest_test": [test.isoformat()],
                   "production_train": [d.isoformat() for d in prod_train],
                   "scored": [as_of.isoformat()]}
        out = ScoringResult(tenant, as_of, cutoffs, results, notes, str(folder), timings)
        (folder / "run.json").write_text(json.dumps(_plain(out), ensure_ascii=False, indent=2))
        timings["total"] = round(time.perf_counter() - t0, 3)
        return out

    def _snapshots_cover(self, s: EngineSession, inputs: ProfileInputs,
                         dates: list[dt.date]) -> bool:
        if inputs.positions is None:
            return True
        snaps = s.to_arrow(inputs.positions.select("snapshot_date").distinct())
        have = sorted(snaps["snapshot_date"].to_pylist())
        slack = dt.timedelta(days=SNAPSHOT_SLACK_DAYS)
        # the features read holdings on the date and 30 and 90 days before it (AUM trends)
        needed = {d - dt.timedelta(days=back) for d in dates for back in (0, 30, 90)}
        return all(any(n - slack <= h <= n for h in have) for n in needed)

    def _target(self, s: EngineSession, inputs: ProfileInputs, name: str,
                features: dict[dt.date, pa.Table], columns: list[str],
                backtest_train: list[dt.date], test: dt.date, prod_train: list[dt.date],
                as_of: dt.date, offset: int, newest: dt.date, result: TargetResult,
                folder: Any, tag_minimum: dict[str, float]) -> pa.Table:
        target = TARGETS[name]
        x_train, y_train = training_examples(s, inputs, name, features, columns,
                                             backtest_train, offset, newest)
        x_test, y_test = training_examples(s, inputs, name, features, columns, [test], offset,
                                           newest)
        trained = propensity.fit(name, x_train, y_train)
        heuristic = x_test.x[:, x_test.names.index(target.heuristic)] * target.heuristic_sign
        heuristic = np.nan_to_num(heuristic, nan=np.nanmin(heuristic) if len(heuristic) else 0)
        result.backtest = {
            "lightgbm": propensity.evaluate(y_test, trained.predict(x_test.x),
                                        ranking=trained.raw(x_test.x)).as_dict(),
            "logistic": propensity.evaluate(y_test, trained.predict_baseline(x_test.x)).as_dict(),
            "heuristic": _rank_metrics(y_test, heuristic, target.heuristic),
            "train_rows": int(len(y_train)), "train_positives": int(y_train.sum()),
        }
        x_prod, y_prod = training_examples(s, inputs, name, features, columns, prod_train,
                                           offset, newest)
        model = propensity.fit(name, x_prod, y_prod)
        model.labels_until = max(prod_train) + dt.timedelta(days=target.horizon_days)
        eligible = s.to_arrow(labels(inputs, name, LabelWindow(as_of, target.horizon_days),
                                     offset).select("customer_id"))
        now = features[as_of].join(eligible, "customer_id", join_type="inner").sort_by(
            "customer_id")
        x_now = propensity.design_matrix(now, columns)
        p = model.predict(x_now.x)
        reasons = propensity.explain(model, x_now.x, _to_explain(p, tag_minimum.get(name)))
        text, meta = propensity.save(model, result.backtest)
        result.model_version = _version(text)
        (folder / f"{name}.txt").write_text(text)
        (folder / f"{name}.json").write_text(meta)
        result.scored = len(p)
        result.mean_score = float(p.mean()) if len(p) else 0.0
        end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()) \
            - dt.timedelta(hours=offset, seconds=1)
        return pa.table({
            "as_of": pa.array([as_of] * len(p), pa.date32()),
            "customer_id": pa.array(x_now.customer_ids, pa.string()),
            "score": pa.array([name] * len(p), pa.string()),
            "value": pa.array(p, pa.float64()),
            "scored_at": pa.array([end] * len(p), pa.timestamp("us")),
            "model_version": pa.array([result.model_version] * len(p), pa.string()),
            "reasons_json": pa.array([json.dumps(r, ensure_ascii=False) for r in reasons],
                                     pa.string()),
        })


def training_examples(s: EngineSession, inputs: ProfileInputs, name: str,
                      features: dict[dt.date, pa.Table], columns: list[str],
                      cutoffs: list[dt.date], offset: int, known_until: dt.date
                      ) -> tuple[propensity.Design, np.ndarray]:
    """The rows of ``cutoffs`` (features as of each) with their outcomes; every outcome
    window must end by ``known_until`` (``label_window`` refuses otherwise) — the newest
    data for scoring, the day a model will be applied at for the recommender."""
    designs, ys = [], []
    for cutoff in cutoffs:
        w = label_window(cutoff, TARGETS[name].horizon_days, known_until)
        lab = s.to_arrow(labels(inputs, name, w, offset))
        rows = features[cutoff].join(lab, "customer_id", join_type="inner")
        rows = rows.sort_by("customer_id")
        designs.append(propensity.design_matrix(rows, columns))
        ys.append(np.asarray(rows["label"].to_numpy(zero_copy_only=False), dtype=np.int8))
    design = propensity.Design(designs[0].names, np.vstack([d.x for d in designs]),
                               [c for d in designs for c in d.customer_ids])
    return design, np.concatenate(ys)


def _to_explain(p: np.ndarray, tag_minimum: float | None = None) -> np.ndarray:
    """Mask of the customers whose score gets reasons (see ``EXPLAIN_SHARE``); everyone at
    or above ``tag_minimum`` (a model tag's threshold) always does — a tag shows its reasons."""
    k = max(int(np.ceil(EXPLAIN_SHARE * len(p))), int((p >= EXPLAIN_AT).sum()))
    k = min(k, EXPLAIN_MAX, len(p))
    mask = np.zeros(len(p), dtype=bool)
    mask[np.argsort(-p, kind="stable")[:k]] = True
    if tag_minimum is not None:
        mask |= p >= tag_minimum
    return mask


def _rank_metrics(y: np.ndarray, ranking: np.ndarray, feature: str) -> dict[str, Any]:
    """The heuristic ranks customers by one feature; it has no probabilities, so no Brier."""
    lo, hi = float(ranking.min()), float(ranking.max())
    p = (ranking - lo) / (hi - lo) if hi > lo else np.zeros_like(ranking)
    m = propensity.evaluate(y, p).as_dict()
    return {"feature": feature, "auc": m["auc"], "pr_auc": m["pr_auc"],
            "lift_top_decile": m["lift_top_decile"], "rows": m["rows"],
            "positives": m["positives"], "base_rate": m["base_rate"]}


def _version(model_text: str) -> str:
    return hashlib.sha256(model_text.encode()).hexdigest()[:12]


def _plain(r: ScoringResult) -> dict[str, Any]:
    return {"tenant": r.tenant, "as_of": r.as_of.isoformat(), "cutoffs": r.cutoffs,
            "notes": r.notes, "timings": r.timings,
            "targets": [t.__dict__ for t in r.targets]}


def latest_run(container: Container, tenant: str) -> dict[str, Any] | None:
    """The newest scoring run's evaluation (for the CLI and the value report)."""
    root = container.root / "models" / tenant
    runs = sorted(root.glob("*/run.json")) if root.exists() else []
    return json.loads(runs[-1].read_text()) if runs else None
