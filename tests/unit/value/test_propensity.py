"""Churn and propensity models: metrics by hand, a planted signal found, calibration, reasons,
the design matrix, and the label definitions on hand-built tables."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pyarrow as pa
import pytest

from caifu.analytics import propensity as models
from caifu.analytics.labels import TARGETS, LabelWindow, label_window, labels
from caifu.data.contracts.tables import CHANNELS
from caifu.pipelines.profile import ProfileInputs

# --- metrics ----------------------------------------------------------------------------------


def test_metrics_by_hand() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    m = models.evaluate(y, p)
    # pairs (positive, negative) ranked right: 0.9 beats all 8; 0.7 beats 7 of 8 (not 0.8)
    assert m.auc == pytest.approx(15 / 16)
    # average precision: ranks 1 (1/1) and 3 (2/3), averaged over the 2 positives
    assert m.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    # top decile = the single highest score, a positive: precision 1 over base rate 0.2
    assert m.lift_top_decile == pytest.approx(5.0)
    assert m.brier == pytest.approx(np.mean((p - y) ** 2))
    assert (m.rows, m.positives, m.base_rate) == (10, 2, 0.2)
    # calibration bins hold every row once
    assert sum(n for _, _, n in m.calibration) == 10


def test_metrics_need_both_outcomes() -> None:
    with pytest.raises(models.ModelError, match="both outcomes"):
        models.evaluate(np.zeros(5), np.linspace(0, 1, 5))


# --- a planted signal ---------------------------------------------------------------------------


def _planted(n: int, seed: int) -> tuple[models.Design, np.ndarray, np.ndarray]:
    """Outcome driven by feature 0 (strongly) and feature 2 (interaction); 1 and 3 are noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x[rng.random(n) < 0.05, 3] = np.nan  # missing values are allowed
    logit = -2.5 + 1.8 * x[:, 0] + 1.2 * (x[:, 2] > 1) * (x[:, 0] > 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    ids = [f"C{seed}-{i:06d}" for i in range(n)]
    return models.Design(["signal", "noise", "kicker", "gappy"], x, ids), y, logit


def test_fit_finds_the_planted_signal_and_is_calibrated() -> None:
    train_x, train_y, _ = _planted(20_000, 1)
    test_x, test_y, truth = _planted(8_000, 2)
    m = models.fit("toy", train_x, train_y)
    p = m.predict(test_x.x)
    metrics = models.evaluate(test_y, p)
    # the best any model can do is rank by the true log-odds
    oracle = models.evaluate(test_y, 1 / (1 + np.exp(-truth))).auc
    assert metrics.auc > oracle - 0.02, (metrics.auc, oracle)
    assert models.evaluate(test_y, m.predict_baseline(test_x.x)).auc > oracle - 0.05
    # calibrated: the mean predicted probability matches the observed rate, bin by bin
    assert abs(p.mean() - test_y.mean()) < 0.01
    for predicted, observed, count in metrics.calibration:
        if count >= 500:
            assert abs(predicted - observed) < 0.05, (predicted, observed, count)
    # the reasons of the highest-scored customers name the planted feature first
    top = np.argsort(-p)[:50]
    reasons = models.explain(m, test_x.x[top])
    assert sum(r[0]["feature"] == "signal" for r in reasons if r) >= 45


def test_fit_refuses_too_few_outcomes() -> None:
    x, y, _ = _planted(500, 3)
    y[:] = 0
    y[:5] = 1
    with pytest.raises(models.ModelError, match="5 positive"):
        models.fit("toy", x, y)


def test_explain_only_the_rows_asked_for() -> None:
    x, y, _ = _planted(5_000, 4)
    m = models.fit("toy", x, y)
    mask = np.zeros(10, dtype=bool)
    mask[[2, 7]] = True
    reasons = models.explain(m, x.x[:10], mask)
    assert [bool(r) for i, r in enumerate(reasons) if i not in (2, 7)] == [False] * 8
    assert all(r["contribution"] > 0 for i in (2, 7) for r in reasons[i])


def test_split_is_stable_per_customer() -> None:
    assert models.split_of("C1", "churn") == models.split_of("C1", "churn")
    parts = [models.split_of(f"C{i}", "churn") for i in range(10_000)]
    assert 0.68 < np.mean(np.array(parts) < 0.7) < 0.72


def test_saved_model_is_text_and_json() -> None:
    x, y, _ = _planted(5_000, 5)
    m = models.fit("toy", x, y)
    text, meta = models.save(m, {"auc": 0.9})
    assert text.startswith("tree")
    assert '"features": [\n    "signal"' in meta and '"auc": 0.9' in meta


def test_loaded_model_predicts_exactly_what_the_saved_one_did() -> None:
    x, y, _ = _planted(5_000, 5)
    m = models.fit("toy", x, y)
    m.labels_until = dt.date(2026, 9, 30)
    text, meta = models.save(m, {"auc": 0.9})
    back = models.load(text, meta, "toy.json")
    fresh, _, _ = _planted(3_000, 6)  # rows the model never saw, with missing values
    assert np.array_equal(back.raw(fresh.x), m.raw(fresh.x))
    assert np.array_equal(back.predict(fresh.x), m.predict(fresh.x))
    assert (back.target, back.names, back.best_iteration) == ("toy", m.names, m.best_iteration)
    assert back.labels_until == dt.date(2026, 9, 30)
    with pytest.raises(models.ModelError, match="baseline"):  # not saved, so not loaded
        back.predict_baseline(fresh.x)


def test_load_names_the_file_of_a_broken_model() -> None:
    x, y, _ = _planted(5_000, 5)
    text, meta = models.save(models.fit("toy", x, y), {})
    with pytest.raises(models.ModelError, match="m.json.*calibration"):
        models.load(text, meta.replace('"calibration"', '"curve"'), "m.json")
    with pytest.raises(models.ModelError, match="m.json: the booster has 4 features"):
        models.load(text, meta.replace('"signal",', '"signal", "extra",'), "m.json")
    # a JSON from before labels_until was saved takes the caller's date
    old = meta.replace('"labels_until": null', '"labels_until": ""')
    assert models.load(text, old, "m.json", dt.date(2026, 1, 31)).labels_until == \
        dt.date(2026, 1, 31)


def test_a_model_that_saw_outcomes_after_the_day_is_refused() -> None:
    x, y, _ = _planted(5_000, 5)
    m = models.fit("toy", x, y)
    with pytest.raises(models.ModelError, match="does not record"):
        models.check_not_after(m, dt.date(2026, 9, 30), "toy")
    m.labels_until = dt.date(2026, 10, 30)
    with pytest.raises(models.ModelError, match="outcomes up to 2026-10-30, after 2026-09-30"):
        models.check_not_after(m, dt.date(2026, 9, 30), "toy")
    models.check_not_after(m, dt.date(2026, 10, 30), "toy")  # the day itself is known


# --- design matrix ------------------------------------------------------------------------------


def test_design_matrix_columns_and_encodings() -> None:
    features = pa.table({
        "customer_id": ["A", "B", "C"],
        "status": ["normal", "closed", "normal"],
        "trades_30d": pa.array([3, 0, None], pa.int64()),
        "fund_value": pa.array([1, 2, 3], pa.decimal128(18, 2)),
        "chinext_opened": [True, False, None],
        "c_level": ["C3", None, "C5"],
        "customer_type": ["individual", "institution", "individual"],
        "channel": ["app", "wecom", "app"],
        "last_trade_date": pa.array([dt.date(2026, 1, 1)] * 3),
    })
    columns = models.feature_columns(features)
    assert columns == ["trades_30d", "fund_value", "chinext_opened"]  # no state, ids, dates
    d = models.design_matrix(features, columns)
    assert d.names[:5] == ["trades_30d", "fund_value", "chinext_opened", "c_level_number",
                           "is_institution"]
    assert d.names[5:] == [f"channel_{c}" for c in CHANNELS]
    np.testing.assert_array_equal(d.x[:, 3], [3, np.nan, 5])
    np.testing.assert_array_equal(d.x[:, 0], [3, 0, np.nan])
    np.testing.assert_array_equal(d.x[:, 2], [1, 0, np.nan])
    np.testing.assert_array_equal(d.x[:, 4], [0, 1, 0])
    app_col = 5 + CHANNELS.index("app")
    np.testing.assert_array_equal(d.x[:, app_col], [1, 0, 1])
    with pytest.raises(models.ModelError, match="holdings_value"):
        models.design_matrix(features, ["holdings_value"])
    # a model's names give back the profile columns that rebuild its matrix
    assert models.profile_columns(d.names) == columns
    with pytest.raises(models.ModelError, match="derived columns"):
        models.profile_columns(columns)


# --- labels on hand-built tables ---------------------------------------------------------------

CUTOFF = dt.date(2026, 6, 30)


def _inputs() -> ProfileInputs:
    d = dt.date
    customers = ibis.memtable(pa.table({
        "customer_id": ["A", "B", "C", "D", "E", "F"],
        "opened_on": [d(2025, 1, 1)] * 5 + [d(2026, 7, 5)],  # F opens after the cutoff
        "closed_on": pa.array([None, None, None, d(2026, 8, 1), d(2026, 5, 1), None],
                              pa.date32()),
    }))
    accounts = ibis.memtable(pa.table({
        "customer_id": ["A", "B", "C", "D", "E", "F"],
        "chinext_opened_on": pa.array([d(2026, 1, 1), d(2026, 7, 15), None, d(2026, 9, 28),
                                       None, None], pa.date32()),
        "level2_since": pa.array([d(2026, 6, 1), None, d(2026, 7, 1), None, None, None],
                                 pa.date32()),
        "level2_until": pa.array([d(2026, 6, 29), None, None, None, None, None], pa.date32()),
    }))
    trades = ibis.memtable(pa.table({
        "customer_id": ["A", "B", "B", "C", "D"],
        "trade_date": [d(2026, 6, 1), d(2026, 5, 1), d(2026, 8, 1), d(2026, 3, 20),
                       d(2026, 6, 29)],
    }))
    cash = ibis.memtable(pa.table({
        "customer_id": ["C", "B"],
        "flow_time": pa.array([dt.datetime(2026, 7, 2, 1), dt.datetime(2026, 6, 30, 15)],
                              pa.timestamp("us")),
        "method": ["transfer_out", "transfer_out"],
    }))
    funds = ibis.memtable(pa.table({
        "customer_id": ["A", "B", "C"],
        "txn_date": [d(2026, 7, 1), d(2026, 6, 30), d(2026, 9, 28)],
        "txn_type": ["purchase", "purchase", "redeem"],
    }))
    empty = ibis.memtable(pa.table({"customer_id": pa.array([], pa.string())}))
    return ProfileInputs(customers=customers, accounts=accounts, securities=empty,
                         fund_products=empty, suitability_assessments=empty, wecom_follows=empty,
                         trades=trades, cash_flows=cash, fund_transactions=funds)


def _labels(target: str) -> dict[str, bool]:
    t = labels(_inputs(), target, LabelWindow(CUTOFF, 90)).to_pyarrow()
    return dict(zip(t["customer_id"].to_pylist(), t["label"].to_pylist(), strict=True))


def test_chinext_label() -> None:
    # A had it already; E closed before the cutoff; F not yet a customer; D opens on day 90
    assert _labels("chinext_90d") == {"B": True, "C": False, "D": True}


def test_level2_label() -> None:
    # A's subscription ended the day before the cutoff: eligible again, and no new one
    assert _labels("level2_90d") == {"A": False, "B": False, "C": True, "D": False}


def test_fund_purchase_label() -> None:
    # B's purchase is on the cutoff itself (known then, not an outcome); C's is a redemption
    assert _labels("fund_purchase_90d") == {"A": True, "B": False, "C": False, "D": False}


def test_churn_label() -> None:
    # active in the 90 days to the cutoff: A, B, D (C last traded on 20 March: not active).
    # A stops trading; B trades again (its transfer-out is 23:00 local on the cutoff day, not
    # in the window); D closes within the window.
    assert _labels("churn_90d") == {"A": True, "B": False, "D": True}


def test_label_window_must_be_known() -> None:
    w = label_window(CUTOFF, 90, dt.date(2026, 9, 28))
    assert (w.first, w.last) == (dt.date(2026, 7, 1), dt.date(2026, 9, 28))
    with pytest.raises(ValueError, match="not known yet"):
        label_window(CUTOFF, 90, dt.date(2026, 9, 27))
    assert set(TARGETS) == {"chinext_90d", "level2_90d", "fund_purchase_90d", "churn_90d"}


def test_ranking_metrics_use_the_raw_score_when_given() -> None:
    """Calibration maps ranges of raw scores to one probability: the tie must not decide who is
    in the top decile."""
    y = np.array([0] * 9 + [1] + [0] * 10)
    tied = np.full(20, 0.1)  # a flat calibrated block
    raw = np.arange(20, dtype=float) / 20
    raw[9] = 0.99  # the positive has the highest raw score
    m = models.evaluate(y, tied, ranking=raw)
    assert m.auc == 1.0 and m.lift_top_decile == pytest.approx(10.0)
    assert m.brier == pytest.approx(np.mean((tied - y) ** 2))  # Brier from the probabilities
    assert models.evaluate(y, tied).lift_top_decile == 0.0  # the tie cut in id order


def test_fit_refuses_a_part_without_positives() -> None:
    x, y, _ = _planted(3_000, 6)
    part = np.array([models.split_of(c, "toy:7") for c in x.customer_ids])
    y[part >= 0.85] = 0  # no positive left for the calibration part
    with pytest.raises(models.ModelError, match="calibration part has 0 positive"):
        models.fit("toy", x, y)


def test_model_tag_holders_always_get_reasons() -> None:
    from caifu.services.value.scoring import _to_explain

    p = np.linspace(0, 0.4, 1000)  # nobody at 0.5; the top tenth is p > 0.36
    assert _to_explain(p).sum() == 100
    mask = _to_explain(p, tag_minimum=0.2)
    assert mask.sum() == int((p >= 0.2).sum()) and mask[p >= 0.2].all()
