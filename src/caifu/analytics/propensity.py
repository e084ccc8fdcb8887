"""Churn and propensity models: LightGBM beside a logistic-regression baseline, calibrated,
evaluated on a later period than they were trained on, explained per customer.

The data flow (``services/value/scoring.py`` drives it):

- a **design matrix** from profile features as of a cutoff (``design_matrix``): numbers and
  flags as they are, C-levels as 1–5, the channel one-hot; dates, ids and the master data's
  *current* state (``status``, a transferred-out account) are left out — they describe today,
  not the cutoff, and would leak the outcome into the past;
- **fit** (``fit``): rows of the training cutoffs are split by a hash of the customer id into
  70 % to grow the trees, 15 % to stop growing them, 15 % to calibrate (isotonic regression of
  the raw score onto the outcome); the baseline is a standardised L2 logistic regression on
  the same columns and rows;
- **evaluate** (``evaluate``): on the rows of a later cutoff whose outcome window ends at or
  before the newest data — AUC, PR-AUC (average precision), lift in the top decile, Brier
  score, and the calibration curve;
- **explain** (``explain``): LightGBM's per-feature contributions (SHAP values in log-odds)
  for each scored customer; the top three that push the score up are the reasons shown.

A model is saved as LightGBM's own text format plus a JSON of the feature names, the
isotonic curve and the last day its training outcomes reached (``labels_until``) — no
pickles, so a model file can be read, diffed and audited; ``load`` reads the pair back (the
booster from its text, the calibrator from its curve; the logistic baseline is not saved, so
a loaded model has none — it is a comparison in the backtest, never used to score).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from caifu.data.contracts.tables import CHANNELS

# Not features: identifiers, dates (their "days since" twins are features), and master data
# that holds today's state rather than the cutoff's.
NOT_FEATURES = frozenset({
    "customer_id", "as_of", "branch_id", "advisor_id", "customer_type", "status",
    "account_transferred_out", "worst_security_code", "channel", "c_level",
    "first_trade_date", "last_trade_date", "trading_stopped_on", "last_deposit_date",
    "last_login_at", "assessment_valid_until",
})
# Derived from positions snapshots, which a broker may export only for recent month-ends:
# used only when every cutoff of a run has a snapshot (``services.scoring`` decides).
POSITION_FEATURES = frozenset({
    "positions_count", "holdings_value", "unrealised_pnl", "worst_security_pnl", "aum",
    "aum_30d_ago", "aum_90d_ago", "aum_trend_30d", "aum_trend_90d",
})
# Shallow trees: the outcomes depend on a few behaviours and their interactions, and the cost
# of per-customer reasons (TreeSHAP) grows with the square of the depth.
PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.08, "num_leaves": 15, "max_depth": 5,
    "min_child_samples": 80, "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8,
    "reg_lambda": 1.0, "n_estimators": 300, "deterministic": True, "force_row_wise": True,
    "verbose": -1,
}


MIN_PER_PART = 5  # positives and negatives each part of the training rows must have


class ModelError(ValueError):
    """A model cannot be trained or used as asked (too few outcomes, unknown columns)."""


@dataclass
class Design:
    names: list[str]
    x: np.ndarray  # float64, NaN = missing
    customer_ids: list[str]


def feature_columns(features: pa.Table, drop: frozenset[str] = frozenset()) -> list[str]:
    return [n for n in features.column_names if n not in NOT_FEATURES and n not in drop]


def design_matrix(features: pa.Table, columns: list[str]) -> Design:
    """Profile features (one row per customer) as a float matrix in ``columns`` order, plus
    C-level as 1–5, customer type as a flag and the acquisition channel one-hot."""
    missing = [c for c in columns if c not in features.column_names]
    if missing:
        raise ModelError(f"features lack the model's columns: {', '.join(missing)}")
    cols: list[np.ndarray] = []
    for name in columns:
        cols.append(_as_float(features[name]))
    names = list(columns)
    level = pc.utf8_slice_codeunits(features["c_level"].cast(pa.string()), 1)
    cols.append(_as_float(pc.cast(level, pa.float64(), safe=False)))
    names.append("c_level_number")
    cols.append(_as_float(pc.equal(features["customer_type"], "institution")))
    names.append("is_institution")
    for ch in CHANNELS:
        cols.append(_as_float(pc.equal(features["channel"], ch)))
        names.append(f"channel_{ch}")
    x = np.column_stack(cols) if cols else np.empty((features.num_rows, 0))
    return Design(names, x, features["customer_id"].to_pylist())


def derived_columns() -> list[str]:
    """The columns ``design_matrix`` adds after the profile's own, in its order."""
    return ["c_level_number", "is_institution", *(f"channel_{ch}" for ch in CHANNELS)]


def profile_columns(names: list[str]) -> list[str]:
    """A model's feature names without the derived tail: the ``columns`` to give
    ``design_matrix`` so that it rebuilds the model's matrix column for column."""
    tail = derived_columns()
    if names[len(names) - len(tail):] != tail:
        raise ModelError("the model's features do not end with the derived columns "
                         f"{', '.join(tail)}: not a matrix design_matrix made")
    return names[:len(names) - len(tail)]


def _as_float(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    t = col.type
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        col = pc.cast(col, pa.float64())
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        col = pc.cast(col, pa.float64(), safe=False)
    arr = col.to_numpy(zero_copy_only=False) if isinstance(col, pa.Array) else \
        col.combine_chunks().to_numpy(zero_copy_only=False)
    return np.asarray(arr, dtype=np.float64)


def split_of(customer_id: str, salt: str) -> float:
    """A stable number in [0, 1) per customer: the same customer is always in the same part."""
    h = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass
class Calibrator:
    x: list[float]
    y: list[float]

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(raw, self.x, self.y)


@dataclass
class TrainedModel:
    target: str
    names: list[str]
    booster: lgb.Booster
    calibrator: Calibrator
    baseline: Any  # sklearn pipeline (median-imputed, standardised logistic regression);
    # None in a loaded model (the baseline is not saved)
    medians: np.ndarray
    best_iteration: int
    train_rows: int
    train_positives: int
    # the last day of the newest outcome window the model learnt from (None: not recorded);
    # applied at a day before it, the model has seen that day's future
    labels_until: dt.date | None = None

    def raw(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_iteration=self.best_iteration))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator(self.raw(x)), 0.0, 1.0)

    def predict_baseline(self, x: np.ndarray) -> np.ndarray:
        if self.baseline is None:
            raise ModelError(f"{self.target}: this model was loaded from its files, which do "
                             "not hold the logistic baseline")
        return np.asarray(self.baseline.predict_proba(_impute(x, self.medians))[:, 1])

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "features": self.names,
                "best_iteration": self.best_iteration,
                "calibration": {"x": self.calibrator.x, "y": self.calibrator.y},
                "train_rows": self.train_rows, "train_positives": self.train_positives,
                "labels_until": None if self.labels_until is None
                else self.labels_until.isoformat()}


def check_not_after(model: TrainedModel, day: dt.date, source: str) -> None:
    """Refuse a model whose outcomes reach past ``day``: scored as of ``day``, it would
    rank customers by what it learnt of their future (an evaluation would flatter it)."""
    if model.labels_until is None:
        raise ModelError(f"{source}: the model does not record how far its training outcomes "
                         f"reach; it cannot be shown not to have seen the days after {day}")
    if model.labels_until > day:
        raise ModelError(f"{source}: trained on outcomes up to {model.labels_until}, after "
                         f"{day}; use a model trained with outcomes up to {day} at the latest")


def _impute(x: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), medians, x)


def fit(target: str, design: Design, y: np.ndarray, seed: int = 7) -> TrainedModel:
    """LightGBM with early stopping, isotonic calibration, and the logistic baseline."""
    n, positives = len(y), int(y.sum())
    if positives < 20 or n - positives < 20:
        raise ModelError(f"{target}: {positives} positive and {n - positives} negative "
                         "training rows; at least 20 of each are needed")
    part = np.array([split_of(c, f"{target}:{seed}") for c in design.customer_ids])
    grow, stop, cal = part < 0.70, (part >= 0.70) & (part < 0.85), part >= 0.85
    for name, rows in (("growing", grow), ("early stopping", stop), ("calibration", cal)):
        pos = int(y[rows].sum())
        if pos < MIN_PER_PART or int(rows.sum()) - pos < MIN_PER_PART:
            # an isotonic curve fitted on no positives is flat: every score would be equal
            raise ModelError(f"{target}: the {name} part has {pos} positive and "
                             f"{int(rows.sum()) - pos} negative rows; at least {MIN_PER_PART} "
                             "of each are needed")
    model = lgb.LGBMClassifier(random_state=seed, n_jobs=2, **PARAMS)
    model.fit(design.x[grow], y[grow], eval_X=(design.x[stop],), eval_y=(y[stop],),
              eval_metric="binary_logloss",
              callbacks=[lgb.early_stopping(20, verbose=False)])
    booster = model.booster_
    best = int(model.best_iteration_ or booster.current_iteration())
    raw_cal = np.asarray(booster.predict(design.x[cal], num_iteration=best))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(raw_cal, y[cal])
    calibrator = Calibrator([float(v) for v in iso.X_thresholds_],
                            [float(v) for v in iso.y_thresholds_])
    with warnings.catch_warnings():  # a column missing for everyone has no median: use 0
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nan_to_num(np.nanmedian(design.x[grow], axis=0), nan=0.0)
    baseline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    baseline.fit(_impute(design.x[grow | stop], medians), y[grow | stop])
    return TrainedModel(target, design.names, booster, calibrator, baseline, medians, best,
                        n, positives)


@dataclass
class Metrics:
    rows: int
    positives: int
    base_rate: float
    auc: float
    pr_auc: float
    lift_top_decile: float
    brier: float
    calibration: list[tuple[float, float, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "positives": self.positives, "base_rate": self.base_rate,
                "auc": self.auc, "pr_auc": self.pr_auc, "lift_top_decile": self.lift_top_decile,
                "brier": self.brier, "calibration": self.calibration}


def evaluate(y: np.ndarray, p: np.ndarray, bins: int = 10, ranking: np.ndarray | None = None
             ) -> Metrics:
    """Discrimination and calibration of probabilities ``p`` for outcomes ``y``.

    ``ranking`` (e.g. the raw model score before isotonic calibration, which maps ranges of
    scores to one probability) orders the customers for AUC, PR-AUC and lift without the ties
    calibration creates — a tie cut by the top decile would be split arbitrarily; Brier and
    the calibration curve always use ``p``.
    """
    n, positives = len(y), int(y.sum())
    if n == 0 or positives in (0, n):
        raise ModelError(f"evaluation needs both outcomes; got {positives} of {n} positive")
    base = positives / n
    order = p if ranking is None else ranking
    top = np.argsort(-order, kind="stable")[: max(1, math.ceil(n / 10))]
    curve: list[tuple[float, float, int]] = []
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    for b in range(bins):
        m = which == b
        if m.any():
            curve.append((float(p[m].mean()), float(y[m].mean()), int(m.sum())))
    return Metrics(n, positives, base, float(roc_auc_score(y, order)),
                   float(average_precision_score(y, order)), float(y[top].mean() / base),
                   float(brier_score_loss(y, p)), curve)


def explain(model: TrainedModel, x: np.ndarray, rows: np.ndarray | None = None, top: int = 3
            ) -> list[list[dict[str, Any]]]:
    """Per row, the ``top`` features that raise the score most (log-odds contributions);
    with ``rows`` (a mask), only those rows are explained and the others get no reasons —
    contributions cost far more than scores, and reasons matter where someone acts."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(x.shape[0])]
    picked = np.flatnonzero(rows) if rows is not None else np.arange(x.shape[0])
    if len(picked) == 0:
        return out
    sub = x[picked]
    contrib = np.asarray(model.booster.predict(sub, num_iteration=model.best_iteration,
                                               pred_contrib=True))[:, :-1]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    for k, i in enumerate(picked):
        reasons = []
        for j in order[k]:
            if contrib[k, j] <= 0:
                break
            value = sub[k, j]
            reasons.append({"feature": model.names[j],
                            "value": None if math.isnan(value) else round(float(value), 4),
                            "contribution": round(float(contrib[k, j]), 4)})
        out[i] = reasons
    return out


def save(model: TrainedModel, metrics: dict[str, Any]) -> tuple[str, str]:
    """LightGBM's text model and a JSON of everything else (no pickles)."""
    meta = model.to_json() | {"metrics": metrics}
    return (model.booster.model_to_string(num_iteration=model.best_iteration),
            json.dumps(meta, ensure_ascii=False, indent=2, default=float))


def load(text: str, meta_json: str, source: str = "model",
         labels_until: dt.date | None = None) -> TrainedModel:
    """A model from what ``save`` wrote: the booster from LightGBM's text, the calibrator
    from the JSON's curve — predictions equal the saved model's. No baseline (not saved).
    ``labels_until`` stands in for a JSON written before the field existed (the caller knows
    it from the run that trained the model); ``source`` names the files in errors."""
    try:
        meta = json.loads(meta_json)
        names = [str(n) for n in meta["features"]]
        cal = meta["calibration"]
        calibrator = Calibrator([float(v) for v in cal["x"]], [float(v) for v in cal["y"]])
        best = int(meta["best_iteration"])
        until = meta.get("labels_until")
        target = str(meta["target"])
        rows, positives = int(meta.get("train_rows", 0)), int(meta.get("train_positives", 0))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{source}: not a saved model's JSON ({type(exc).__name__}: {exc})"
                         ) from None
    if len(calibrator.x) != len(calibrator.y) or not calibrator.x:
        raise ModelError(f"{source}: calibration.x and calibration.y must be equally long "
                         "and not empty")
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{source}: not a LightGBM text model ({exc})") from None
    if booster.num_feature() != len(names):
        raise ModelError(f"{source}: the booster has {booster.num_feature()} features, the "
                         f"JSON names {len(names)}")
    return TrainedModel(target, names, booster, calibrator, None, np.zeros(0), best, rows,
                        positives, dt.date.fromisoformat(until) if until else labels_until)
