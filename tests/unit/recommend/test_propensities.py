"""The propensity models as the recommender sees them: which saved model a day may use (never
one that learnt from outcomes after it), and each customer's probability from a profile
table, in the recommender's customer order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from caifu.analytics import propensity as models
from caifu.core.errors import ConfigError
from caifu.recommend import config
from caifu.recommend.catalogue import build
from caifu.services.recommend import propensities as prop


def _profiles(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """A profile-shaped table (the columns ``design_matrix`` needs) and an outcome planted on
    ``trades_90d``."""
    rng = np.random.default_rng(seed)
    trades = rng.poisson(3, n).astype(np.float64)
    y = (rng.random(n) < 1 / (1 + np.exp(-(trades - 5)))).astype(np.int8)
    table = pa.table({
        "customer_id": [f"C{seed}-{i:05d}" for i in range(n)],
        "trades_90d": trades,
        "c_level": rng.choice(["C1", "C3", "C5"], n).tolist(),
        "customer_type": ["individual"] * n,
        "channel": ["app"] * n,
    })
    return table, y


def _model(labels_until: dt.date | None) -> models.TrainedModel:
    table, y = _profiles(4000, 1)
    m = models.fit("chinext_90d", models.design_matrix(table, ["trades_90d"]), y)
    m.labels_until = labels_until
    return m


def _save(root: Path, folder: str, m: models.TrainedModel, legacy: bool = False) -> None:
    text, meta = models.save(m, {})
    if legacy:  # written before labels_until was saved
        meta = meta.replace(f'"labels_until": "{m.labels_until}"', '"labels_until": null')
    (root / folder).mkdir(parents=True)
    (root / folder / "chinext_90d.txt").write_text(text, "utf-8")
    (root / folder / "chinext_90d.json").write_text(meta, "utf-8")


def test_a_day_gets_the_newest_saved_model_whose_outcomes_end_by_it(tmp_path: Path) -> None:
    m = _model(None)
    m.labels_until = dt.date(2026, 10, 30)
    _save(tmp_path, "2026-10-30", m)
    m.labels_until = dt.date(2026, 7, 31)
    _save(tmp_path, "2026-07-31", m, legacy=True)  # its folder's date stands for it
    (tmp_path / "notes").mkdir()  # not a run's folder: ignored
    skipped: list[str] = []
    found = prop.saved_model(tmp_path, "chinext_90d", dt.date(2026, 9, 30), skipped)
    assert found is not None and found[1].parent.name == "2026-07-31"
    assert found[0].labels_until == dt.date(2026, 7, 31)
    assert len(skipped) == 1 and "outcomes up to 2026-10-30, after 2026-09-30" in skipped[0]
    # on the newest model's own day it is usable; before every model's, none is
    assert prop.saved_model(tmp_path, "chinext_90d", dt.date(2026, 10, 30))[1].parent.name \
        == "2026-10-30"  # type: ignore[index]
    assert prop.saved_model(tmp_path, "chinext_90d", dt.date(2026, 7, 30)) is None
    assert prop.saved_model(tmp_path, "level2_90d", dt.date(2026, 12, 1)) is None
    assert prop.saved_model(tmp_path / "absent", "chinext_90d", dt.date(2026, 12, 1)) is None


def test_a_broken_saved_model_is_an_error_naming_its_file(tmp_path: Path) -> None:
    _save(tmp_path, "2026-10-30", _model(dt.date(2026, 10, 30)))
    (tmp_path / "2026-10-30" / "chinext_90d.json").write_text("{", "utf-8")
    with pytest.raises(models.ModelError, match="2026-10-30/chinext_90d.json"):
        prop.saved_model(tmp_path, "chinext_90d", dt.date(2026, 11, 1))


def test_customer_propensity_is_the_models_prediction_in_the_callers_order() -> None:
    m = _model(dt.date(2026, 9, 30))
    table, _ = _profiles(50, 2)
    ids = ["nobody", *reversed(table["customer_id"].to_pylist())]
    p = prop.Propensities(dt.date(2026, 9, 30), ["chinext_90d", "level2_90d"],
                          {"chinext_90d": m}, problems={"level2_90d": "too few outcomes"})
    got = prop.customer_propensity(p, table, ids)
    want = m.predict(models.design_matrix(table, ["trades_90d"]).x)[::-1]
    assert got.shape == (51, 2) and np.isnan(got[0]).all()
    np.testing.assert_array_equal(got[1:, 0], want.astype(np.float32))
    assert np.isnan(got[:, 1]).all()  # no model: no propensity, and the notes say why
    assert p.notes() == ["propensity level2_90d as of 2026-09-30: no model — too few outcomes"]


def test_action_targets_and_an_unknown_target_named_with_its_action() -> None:
    cfg = config.default()
    targets = prop.score_targets(cfg)
    assert targets == ["chinext_90d", "churn_90d", "level2_90d"]
    funds = pa.table({"fund_code": ["000001"], "name": ["甲债券"], "fund_type": ["bond"],
                      "risk_level": ["R2"], "launched_on": pa.array([dt.date(2020, 1, 1)])})
    content = pa.table({"content_id": ["CT1"], "content_type": ["research_report"],
                        "title": ["策略"], "risk_level": ["R3"],
                        "published_at": pa.array([dt.datetime(2026, 11, 1)]),
                        "security_code": pa.array([None], pa.string()),
                        "fund_code": pa.array([None], pa.string())})
    cat = build(funds=funds, content=content, config=cfg)
    col = dict(zip(cat.item_id.tolist(), prop.action_targets(cat, cfg, targets).tolist(),
                   strict=True))
    # the default YAML: both permissions by the ChiNext model, Level-2 by its own, the
    # dormant by churn; the fund holder's reassurance and non-actions have none
    assert col == {"F000001": -1, "CT1": -1, "A:open_chinext": 0, "A:open_star": 0,
                   "A:subscribe_level2": 2, "A:reassure_fund_holder": -1,
                   "A:reengage_dormant": 1}
    bad = config.parse({"actions": {"open_x": {"title": "x", "risk_level": "R1",
                                               "score": "chinext_30d"}}}, "acme.yaml")
    with pytest.raises(ConfigError, match="actions.open_x.score: 'chinext_30d'"):
        prop.score_targets(bad)
