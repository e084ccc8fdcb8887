"""The propensity models (``analytics.propensity``) as the recommender's judge of actions.

An action in the tenant's configuration names the model whose score ranks it (``score:
chinext_90d``). ``for_day`` gives, for a day D, one calibrated model per such target that
learnt only from outcomes up to D — applied at D, a model that had seen the weeks after D
would rank customers by their own future, and an evaluation standing at D would flatter it:

1. the newest model ``caifu score`` saved (``models/<tenant>/<as-of>/<target>.txt|json``)
   whose outcomes end by D. A production model learns from the profiles at as-of − 180 and
   as-of − 90 with their 90-day outcomes, so its outcomes end on its as-of date: a JSON that
   predates the ``labels_until`` field is read with that date;
2. otherwise one trained here the same way as of D (profiles at D − 180 and D − 90, outcomes
   to D; ``label_window`` refuses a window past D), kept in memory only — it is not the
   tenant's production model and is not saved.

A target that cannot be trained (too few outcomes in a small tenant) has no model: its
actions get no propensity (NaN) and the reason is returned in ``problems``.
``customer_propensity`` applies the models to a profile table of the day (the model's own
feature names through ``design_matrix``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from caifu.adapters.engines.session import EngineSession
from caifu.analytics import propensity
from caifu.analytics.labels import TARGETS
from caifu.core.errors import ConfigError
from caifu.pipelines.profile import ProfileInputs, profile_features
from caifu.recommend.catalogue import ACTION, Catalogue
from caifu.recommend.config import RecommendConfig
from caifu.services.container import Container
from caifu.services.value.scoring import STEP_DAYS, training_examples


@dataclass
class Propensities:
    """The models of one day, one per score target (in ``targets`` order)."""

    day: dt.date
    targets: list[str]
    models: dict[str, propensity.TrainedModel] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # target → where its model is from
    problems: dict[str, str] = field(default_factory=dict)  # target → why it has none

    def notes(self) -> list[str]:
        out = [f"propensity {t} as of {self.day}: {self.sources[t]}" for t in self.targets
               if t in self.sources]
        return out + [f"propensity {t} as of {self.day}: no model — {self.problems[t]}"
                      for t in self.targets if t in self.problems]


def score_targets(config: RecommendConfig) -> list[str]:
    """The targets the tenant's actions are scored by (sorted); an unknown one is a mistake
    in the configuration, named with its action."""
    out: set[str] = set()
    for name, action in config.actions.items():
        if action.score is None:
            continue
        if action.score not in TARGETS:
            raise ConfigError(f"actions.{name}.score: {action.score!r} is not a propensity "
                              f"target; known: {', '.join(TARGETS)}")
        out.add(action.score)
    return sorted(out)


def action_targets(cat: Catalogue, config: RecommendConfig, targets: list[str]) -> np.ndarray:
    """Per catalogue item, the column of its action's target in ``targets`` (-1: not an
    action, or an action without a score)."""
    col = np.full(len(cat), -1, np.int64)
    for row in np.flatnonzero(cat.item_type == ACTION):
        action = config.actions.get(str(cat.kind[row]))
        if action is not None and action.score in targets:
            col[row] = targets.index(action.score)
    return col


def saved_model(root: Path, target: str, day: dt.date, skipped: list[str] | None = None
                ) -> tuple[propensity.TrainedModel, Path] | None:
    """The newest model of ``target`` saved under ``root`` (``models/<tenant>``) whose
    outcomes end by ``day``; each newer one passed over is told in ``skipped``."""
    folders = sorted((p for p in root.iterdir() if p.is_dir()), reverse=True) \
        if root.is_dir() else []
    for folder in folders:
        try:
            as_of = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue  # not a scoring run's folder
        text, meta = folder / f"{target}.txt", folder / f"{target}.json"
        if not (text.is_file() and meta.is_file()):
            continue
        model = propensity.load(text.read_text("utf-8"), meta.read_text("utf-8"), str(meta),
                                labels_until=as_of)
        try:
            propensity.check_not_after(model, day, str(meta))
        except propensity.ModelError as exc:
            if skipped is not None:
                skipped.append(str(exc))
            continue
        return model, meta
    return None


def train(s: EngineSession, inputs: ProfileInputs, target: str, day: dt.date, offset: int,
          features: dict[dt.date, pa.Table]) -> propensity.TrainedModel:
    """``target``'s model as ``caifu score`` would train it at ``day``: profiles at
    day − horizon − 90 and day − horizon, outcomes to ``day`` at the latest. ``features``
    caches profile tables by date (filled here as needed)."""
    horizon = dt.timedelta(days=TARGETS[target].horizon_days)
    cutoffs = [day - horizon - dt.timedelta(days=STEP_DAYS), day - horizon]
    for d in cutoffs:
        if d not in features:
            features[d] = s.to_arrow(profile_features(inputs, d, offset))
    # no positions-snapshot features: a broker may export snapshots for month-ends only
    columns = propensity.feature_columns(features[cutoffs[-1]], propensity.POSITION_FEATURES)
    x, y = training_examples(s, inputs, target, features, columns, cutoffs, offset, day)
    model = propensity.fit(target, x, y)
    model.labels_until = day
    return model


def for_day(c: Container, s: EngineSession, inputs: ProfileInputs, tenant: str,
            day: dt.date, targets: list[str], offset: int,
            features: dict[dt.date, pa.Table] | None = None) -> Propensities:
    """A model per target usable at ``day`` (see the module docstring for which)."""
    out = Propensities(day, list(targets))
    cache = {} if features is None else features
    root = c.root / "models" / tenant
    for target in targets:
        skipped: list[str] = []
        found = saved_model(root, target, day, skipped)
        if found is not None:
            out.models[target] = found[0]
            out.sources[target] = f"saved model {found[1].parent.name}/{found[1].stem} " \
                                  f"(outcomes to {found[0].labels_until})"
            continue
        try:
            out.models[target] = train(s, inputs, target, day, offset, cache)
        except (propensity.ModelError, ValueError) as exc:
            out.problems[target] = str(exc)
            continue
        why = f"; passed over: {skipped[0]}" if skipped else ""
        out.sources[target] = f"trained for this day (outcomes to {day}){why}"
    return out


def customer_propensity(p: Propensities, table: pa.Table, ids: list[str]) -> np.ndarray:
    """(len(ids), len(p.targets)) float32: each customer's calibrated probability per target
    from ``table`` (profile features as of ``p.day``); NaN where there is no model or the
    customer is not in the table."""
    out = np.full((len(ids), len(p.targets)), np.nan, np.float32)
    for j, target in enumerate(p.targets):
        model = p.models.get(target)
        if model is None:
            continue
        design = propensity.design_matrix(table, propensity.profile_columns(model.names))
        pos = {cid: i for i, cid in enumerate(design.customer_ids)}
        have = np.array([pos.get(cid, -1) for cid in ids], np.int64)
        if len(have) and (have >= 0).any():
            out[have >= 0, j] = model.predict(design.x[have[have >= 0]])
    return out
