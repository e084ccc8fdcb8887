"""CLV: BG/NBD and Gamma-Gamma against the published CDNOW results and against lifetimes.

Golden numbers:
- Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers" the Easy Way:
  An Alternative to the Pareto/NBD Model. Marketing Science 24(2), 275-284. CDNOW 1/10th
  sample, 2,357 customers, 39-week calibration to 1997-09-30: r = 0.243, alpha = 4.414,
  a = 0.793, b = 2.426, LL = -9582.4; E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226.
- Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma Model of Monetary Value.
  http://brucehardie.com/notes/025/ — the 946 CDNOW repeat customers: p = 6.25, q = 3.74,
  gamma = 15.44.

The CDNOW files ship in the lifetimes wheel (a dev dependency); they are read from the installed
package, never copied into caifu. lifetimes' own loader needs pkg_resources, hence
importlib.resources.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from scipy.optimize import check_grad
from scipy.special import gammaln

import caifu
from caifu.analytics.clv import (
    BgNbdParams,
    ClvConvergenceError,
    ClvInputError,
    CustomerSummary,
    GammaGammaParams,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    summary_from_transactions,
)
from caifu.analytics.clv_predict import (
    conditional_expected_average_profit,
    customer_lifetime_value,
    expected_purchases,
    probability_alive,
)
from caifu.core.errors import CaifuError

DATASETS = importlib.resources.files("lifetimes") / "datasets"
CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def _csv(name: str) -> pa.Table:
    with importlib.resources.as_file(DATASETS / name) as path:
        return pacsv.read_csv(path)


def _cdnow_log(name: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A CDNOW transaction file (whitespace-separated, dates as yyyymmdd) as arrays."""
    with importlib.resources.as_file(DATASETS / name) as path:
        lines = path.read_text().split("\n")
    rows = [line.split() for line in lines if line.strip() and line.split()[0].isdigit()]
    data = dict(zip(columns, zip(*rows, strict=True), strict=True))
    dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in data["date"]], dtype="datetime64[D]")
    return {"customer_id": np.array(data["customer_id"], dtype=np.int64), "date": dates,
            "amount": np.array(data["amount"], dtype=np.float64)}


@pytest.fixture(scope="module")
def cdnow() -> pa.Table:
    return _csv("cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def cdnow_spend() -> pa.Table:
    return _csv("cdnow_customers_summary_with_transactions.csv")


def _xtT(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = ("frequency", "recency", "T") if "frequency" in table.column_names else \
        ("x", "t_x", "T")
    return tuple(table[n].to_numpy() for n in names)  # type: ignore[return-value]


# --- published CDNOW results ---------------------------------------------------------------------


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow: pa.Table) -> None:
    fit = fit_bgnbd(*_xtT(cdnow))
    p = fit.params
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == \
        (0.243, 4.414, 0.793, 2.426)
    assert fit.report.converged
    assert fit.report.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert fit.report.gradient_norm < 1e-5
    assert fit.report.n_customers == 2357
    assert fit.report.n_groups < 2357  # grouped sufficient statistics, not one row each


def test_published_parameters_give_the_published_log_likelihood(cdnow: pa.Table) -> None:
    assert bgnbd_log_likelihood(PUBLISHED, *_xtT(cdnow)) == pytest.approx(-9582.4, abs=0.1)


def test_conditional_expectation_of_the_paper(cdnow: pa.Table) -> None:
    # FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 weeks.
    fit = fit_bgnbd(*_xtT(cdnow))
    expected = expected_purchases(fit.params, 39, [2], [30.43], [38.86])
    assert round(float(expected[0]), 3) == 1.226
    assert round(float(expected_purchases(PUBLISHED, 39, [2], [30.43], [38.86])[0]), 3) == 1.226


def test_gamma_gamma_reproduces_fader_hardie_2013(cdnow_spend: pa.Table) -> None:
    fit = fit_gamma_gamma(cdnow_spend["x"].to_numpy(), cdnow_spend["zbar"].to_numpy())
    p = fit.params
    assert (round(p.p, 2), round(p.q, 2), round(p.gamma, 2)) == (6.25, 3.74, 15.45)
    # The note prints gamma = 15.44; the likelihood's maximum is at 15.4477 (lifetimes finds
    # the same), so gamma is compared within the published precision.
    assert p.gamma == pytest.approx(15.44, abs=0.01)
    assert fit.report.converged
    assert fit.report.n_customers == 946  # only customers with repeat purchases


def test_cdnow_sample_log_gives_the_published_summary(cdnow_spend: pa.Table) -> None:
    log = _cdnow_log("CDNOW_sample.txt", ("master_id", "customer_id", "date", "cds", "amount"))
    summary = summary_from_transactions(log, calibration_end=CALIBRATION_END,
                                        holdout_end=HOLDOUT_END, time_unit="week")
    assert len(summary) == 2357
    assert summary.customer_id.tolist() == cdnow_spend["ID"].to_pylist()
    assert summary.frequency.tolist() == cdnow_spend["x"].to_pylist()
    # the published file rounds to 2 decimals
    np.testing.assert_allclose(summary.recency, cdnow_spend["t_x"].to_numpy(), atol=0.005)
    np.testing.assert_allclose(summary.T, cdnow_spend["T"].to_numpy(), atol=0.005)
    assert summary.monetary_value is not None
    np.testing.assert_allclose(summary.monetary_value, cdnow_spend["zbar"].to_numpy(),
                               atol=0.005 + 1e-9)
    assert summary.duration_holdout == pytest.approx(39.0)
    # and the summary fits to the published parameters
    fit = fit_bgnbd(summary.frequency, summary.recency, summary.T)
    assert fit.params.r == pytest.approx(0.243, abs=6e-4)
    assert fit.params.alpha == pytest.approx(4.414, abs=6e-3)


def test_cdnow_master_summary_matches_lifetimes() -> None:
    pd = pytest.importorskip("pandas")
    from lifetimes.utils import calibration_and_holdout_data

    log = _cdnow_log("CDNOW_master.txt", ("customer_id", "date", "cds", "amount"))
    ours = summary_from_transactions(log, calibration_end=CALIBRATION_END,
                                     holdout_end=HOLDOUT_END, time_unit="week")
    # lifetimes' docs use freq="D" with freq_multiplier=7 for weeks in days / 7, as the paper
    frame = pd.DataFrame({"customer_id": log["customer_id"], "date": log["date"],
                          "amount": log["amount"]})
    theirs = calibration_and_holdout_data(
        frame, "customer_id", "date", calibration_period_end=CALIBRATION_END,
        observation_period_end=HOLDOUT_END, freq="D", freq_multiplier=7,
        monetary_value_col="amount").sort_index()
    assert len(ours) == len(theirs) == 23570
    assert ours.customer_id.tolist() == theirs.index.tolist()
    assert ours.frequency.tolist() == theirs["frequency_cal"].astype(int).tolist()
    np.testing.assert_allclose(ours.recency, theirs["recency_cal"], rtol=1e-12)
    np.testing.assert_allclose(ours.T, theirs["T_cal"], rtol=1e-12)
    assert ours.monetary_value is not None and ours.frequency_holdout is not None
    np.testing.assert_allclose(ours.monetary_value, theirs["monetary_value_cal"], rtol=1e-12)
    assert ours.frequency_holdout.tolist() == theirs["frequency_holdout"].astype(int).tolist()


# --- the likelihood and its gradient ---------------------------------------------------------


def _per_customer_ll(p: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
    """FHL 2005 eq. 6 written out term by term, one customer at a time."""
    from scipy.special import betaln

    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    log_a = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a1 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        a2 = np.where(x > 0, betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - betaln(a, b)
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(log_a + np.logaddexp(a1, a2)))


def test_grouped_likelihood_equals_the_per_customer_formula(cdnow: pa.Table) -> None:
    x, t_x, T = _xtT(cdnow)
    for p in (PUBLISHED, BgNbdParams(2.0, 0.5, 3.0, 0.7), BgNbdParams(0.05, 40.0, 0.2, 9.0)):
        assert bgnbd_log_likelihood(p, x, t_x, T) == pytest.approx(
            _per_customer_ll(p, x, t_x, T), rel=1e-12)


def test_weights_count_customers(cdnow: pa.Table) -> None:
    x, t_x, T = _xtT(cdnow)
    twice = bgnbd_log_likelihood(PUBLISHED, np.tile(x, 2), np.tile(t_x, 2), np.tile(T, 2))
    weighted = bgnbd_log_likelihood(PUBLISHED, x, t_x, T, weights=np.full(len(x), 2.0))
    assert weighted == pytest.approx(twice, rel=1e-13)


@pytest.mark.parametrize("point", [(0.243, 4.414, 0.793, 2.426), (1.5, 0.3, 4.0, 0.6),
                                   (0.02, 80.0, 0.1, 20.0)])
def test_bgnbd_gradient_matches_numerical(cdnow: pa.Table, point: tuple[float, ...]) -> None:
    from caifu.analytics.clv import _bgnbd_ll_grad, _bgnbd_stats

    x, t_x, T = _xtT(cdnow)
    stats = _bgnbd_stats(x.astype(float), t_x, T, np.ones(len(x)))
    theta = np.array(point)
    analytic = _bgnbd_ll_grad(theta, stats)[1]
    np.testing.assert_allclose(analytic, _central_gradient(lambda th: _bgnbd_ll_grad(th, stats)[0],
                                                           theta), rtol=1e-6, atol=1e-6)
    # scipy's forward-difference check as well: error small beside the gradient's size
    err = check_grad(lambda th: _bgnbd_ll_grad(th, stats)[0],
                     lambda th: _bgnbd_ll_grad(th, stats)[1], theta, epsilon=1e-6 * theta.min())
    assert err < 1e-3 * np.abs(analytic).max()


def _central_gradient(f, theta: np.ndarray) -> np.ndarray:
    out = np.empty_like(theta)
    for i in range(len(theta)):
        h = 1e-5 * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        out[i] = (f(up) - f(down)) / (2 * h)
    return out


def test_gamma_gamma_gradient_matches_numerical(cdnow_spend: pa.Table) -> None:
    from caifu.analytics.clv import _gg_ll_grad

    x, m = cdnow_spend["x"].to_numpy().astype(float), cdnow_spend["zbar"].to_numpy()
    x, m = x[x > 0], m[x > 0]
    w = np.ones(len(x))
    for theta in (np.array([6.25, 3.74, 15.44]), np.array([0.5, 12.0, 2.0])):
        analytic = _gg_ll_grad(theta, x, m, w)[1]
        numeric = _central_gradient(lambda th: _gg_ll_grad(th, x, m, w)[0], theta)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)
    params = GammaGammaParams(6.25, 3.74, 15.44)
    assert gamma_gamma_log_likelihood(params, x, m) == pytest.approx(
        _gg_ll_grad(np.array([6.25, 3.74, 15.44]), x, m, w)[0])


def test_time_unit_only_rescales_alpha(cdnow: pa.Table) -> None:
    # the BG/NBD is scale-free in time: measuring in days multiplies alpha by 7, nothing else
    x, t_x, T = _xtT(cdnow)
    weeks = fit_bgnbd(x, t_x, T).params
    days = fit_bgnbd(x, t_x * 7, T * 7).params
    assert days.alpha == pytest.approx(7 * weeks.alpha, rel=1e-5)
    assert (days.r, days.a, days.b) == pytest.approx((weeks.r, weeks.a, weeks.b), rel=1e-5)


# --- parity with lifetimes -----------------------------------------------------------------------


def _synthetic(n: int, seed: int, params: BgNbdParams, max_days: int = 730):
    """Customers drawn from the BG/NBD itself, times in whole days, measured in weeks."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, max_days + 1, n).astype(float)
    lam = rng.gamma(params.r, 1 / params.alpha, n) / 7
    dropout = rng.geometric(rng.beta(params.a, params.b, n))
    bought = rng.poisson(lam * T)
    x = np.minimum(dropout, bought)
    t_x = np.zeros(n)
    rep = x > 0
    t_x[rep] = np.ceil(T[rep] * rng.beta(x[rep], bought[rep] - x[rep] + 1))
    m = np.where(rep, rng.gamma(6.0, 1 / 0.4, n) * rng.gamma(6.0, 1.0, n) / 6.0, 0.0)
    return x, t_x / 7, T / 7, m


def test_lifetimes_parity_on_a_synthetic_sample() -> None:
    pytest.importorskip("pandas")
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, T, m = _synthetic(5000, 11, BgNbdParams(0.5, 3.0, 0.8, 2.5))
    ours = fit_bgnbd(x, t_x, T).params
    ref = BetaGeoFitter().fit(x, t_x, T)
    theirs = BgNbdParams(*ref.params_[["r", "alpha", "a", "b"]].to_numpy())
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-3)
    np.testing.assert_allclose(
        expected_purchases(theirs, 26, x, t_x, T),
        ref.conditional_expected_number_of_purchases_up_to_time(26, x, t_x, T), rtol=1e-10)
    np.testing.assert_allclose(probability_alive(theirs, x, t_x, T),
                               ref.conditional_probability_alive(x, t_x, T), rtol=1e-10)

    gg_ref = GammaGammaFitter().fit(x[x > 0], m[x > 0])
    gg_ours = fit_gamma_gamma(x, m).params
    for ours_v, theirs_v in zip((gg_ours.p, gg_ours.q, gg_ours.gamma),
                                gg_ref.params_[["p", "q", "v"]], strict=True):
        assert ours_v == pytest.approx(theirs_v, rel=1e-3)
    gg = GammaGammaParams(*gg_ref.params_[["p", "q", "v"]].to_numpy())
    np.testing.assert_allclose(conditional_expected_average_profit(gg, x, m),
                               gg_ref.conditional_expected_average_profit(x, m), rtol=1e-10)
    # lifetimes counts 4.345 weeks to a month and discounts month m by (1 + rate)^m
    clv = customer_lifetime_value(theirs, gg, x, t_x, T, m, months=12,
                                  monthly_discount_rate=0.01, periods_per_month=4.345)
    clv_ref = gg_ref.customer_lifetime_value(ref, pd_series(x), pd_series(t_x), pd_series(T),
                                             pd_series(m), time=12, discount_rate=0.01,
                                             freq="W")
    np.testing.assert_allclose(clv, clv_ref.to_numpy(), rtol=1e-9)


def pd_series(values: np.ndarray):
    import pandas as pd

    return pd.Series(values)


# --- extremes: hundreds of transactions, ten-year histories --------------------------------------


def test_predictions_stay_finite_at_extremes() -> None:
    p = BgNbdParams(0.243, 4.414 * 7, 0.793, 2.426)  # CDNOW, in days
    x = np.array([0, 0, 1, 500, 500, 500, 3000, 20000])
    t_x = np.array([0, 0, 1, 3650, 3000, 5, 3649, 3650.0])
    T = np.array([0, 3650, 3650, 3650, 3650, 3650, 3650, 3650.0])
    for t in (1.0, 365.0, 3650.0, 36500.0):
        e = expected_purchases(p, t, x, t_x, T)
        assert np.all(np.isfinite(e)) and np.all(e >= 0)
    alive = probability_alive(p, x, t_x, T)
    assert np.all(np.isfinite(alive))
    # bought on the last day: only the drop-out chance at that purchase, a / (b + x - 1), remains
    assert alive[3] == pytest.approx(1 / (1 + 0.793 / (2.426 + 499)), rel=1e-12)
    assert alive[5] == 0.0  # 500 purchases in the first 5 days, none in ten years
    # a customer buying every week for ten years, still buying: about a week's rate onwards
    e = expected_purchases(p, 365.0, [520], [3640], [3640])[0]
    assert 40 < e < 52.5
    gg = GammaGammaParams(6.25, 3.74, 15.44)
    clv = customer_lifetime_value(p, gg, x, t_x, T, np.where(x > 0, 25.0, 0.0), months=120,
                                  time_unit="day")
    assert np.all(np.isfinite(clv)) and np.all(clv >= 0)


def test_expected_purchases_are_continuous_through_a_equals_one() -> None:
    args = (52.0, [3, 0], [20.0, 0.0], [40.0, 40.0])
    at_one = expected_purchases(BgNbdParams(0.5, 5.0, 1.0, 2.0), *args)
    near = [expected_purchases(BgNbdParams(0.5, 5.0, 1.0 + d, 2.0), *args) for d in (-1e-4, 1e-4)]
    np.testing.assert_allclose(at_one, (near[0] + near[1]) / 2, rtol=1e-6)


def test_fit_on_long_heavy_histories_converges() -> None:
    # ten years in days, rates up to several a week: x in the hundreds and thousands
    x, t_x, T, _ = _synthetic(20000, 5, BgNbdParams(2.0, 4.0, 0.3, 6.0), max_days=3650)
    assert x.max() > 500
    fit = fit_bgnbd(x, t_x * 7, T * 7)
    assert fit.report.converged
    assert np.isfinite(fit.report.log_likelihood)
    assert fit.params.r == pytest.approx(2.0, rel=0.1)
    assert fit.params.a == pytest.approx(0.3, rel=0.2)


# --- the summary from a transaction log --------------------------------------------------------


def test_same_day_transactions_count_once_and_their_amounts_add() -> None:
    log = pa.table({
        "customer_id": ["c1", "c1", "c1", "c1", "c2", "c3"],
        "date": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 15),
                          dt.date(2024, 1, 15), dt.date(2024, 1, 29), dt.date(2024, 2, 20)]),
        "amount": [5.0, 7.0, 3.0, 4.0, 9.0, 1.0],
    })
    s = summary_from_transactions(log, calibration_end=dt.date(2024, 1, 29), time_unit="day",
                                  holdout_end=dt.date(2024, 2, 29))
    assert s.customer_id.tolist() == ["c1", "c2"]  # c3 first bought in the holdout
    assert s.first_seen_in_holdout == 1
    assert s.frequency.tolist() == [1, 0]
    assert s.recency.tolist() == [14.0, 0.0]
    assert s.T.tolist() == [28.0, 0.0]
    assert s.monetary_value is not None and s.monetary_value.tolist() == [7.0, 0.0]
    assert s.frequency_holdout is not None and s.frequency_holdout.tolist() == [0, 0]
    weekly = summary_from_transactions(log.slice(0, 5), calibration_end="2024-01-29")
    assert weekly.recency.tolist() == [2.0, 0.0] and weekly.T.tolist() == [4.0, 0.0]
    table = s.to_arrow()
    assert table.column_names == ["customer_id", "frequency", "recency", "T", "monetary_value",
                                  "frequency_holdout"]
    back = CustomerSummary.from_table(table, time_unit="day")
    assert back.frequency.tolist() == [1, 0] and back.time_unit == "day"


def test_zoned_timestamps_fall_on_the_local_day() -> None:
    # 2024-01-01 17:30 UTC is 2024-01-02 01:30 in Shanghai: a different trading day
    stamps = pa.array([dt.datetime(2024, 1, 1, 2, 0), dt.datetime(2024, 1, 1, 17, 30)],
                      pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz="Asia/Shanghai"))
    log = pa.table({"customer_id": [1, 1], "date": stamps, "amount": [1.0, 1.0]})
    s = summary_from_transactions(log, calibration_end="2024-01-10", time_unit="day")
    assert s.frequency.tolist() == [1] and s.recency.tolist() == [1.0]


@pytest.mark.parametrize(("log", "kwargs", "message"), [
    ({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"], "amount": [1.0, -2.0]},
     {}, "amount is negative"),
    ({"customer_id": [], "date": np.array([], dtype="datetime64[D]"), "amount": []},
     {}, "empty"),
    ({"customer_id": [1, 2], "date": ["2024-01-01", "2024-03-02"], "amount": [1.0, 2.0]},
     {}, "dated after calibration_end 2024-01-31"),
    ({"customer_id": [1, 2], "date": ["2024-01-01", "2024-03-02"], "amount": [1.0, 2.0]},
     {"holdout_end": "2024-02-29"}, "dated after holdout_end"),
    ({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]},
     {"holdout_end": "2023-12-31"}, "before calibration_end"),
    ({"customer_id": [1, 2], "date": ["2024-01-01", "not a date"], "amount": [1.0, 2.0]},
     {}, "not a date column"),
    ({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"], "amount": [1.0, np.nan]},
     {}, "amount is missing or not finite"),
    ({"customer_id": [1, None], "date": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]},
     {}, "customer_id has missing values"),
    ({"customer_id": [1, 2], "day": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]},
     {}, "no column 'date'"),
    ({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]},
     {"time_unit": "month"}, "time_unit must be"),
])
def test_bad_transaction_logs_are_refused_clearly(log: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ClvInputError, match=message) as caught:
        summary_from_transactions({k: np.asarray(v, dtype=object if k == "customer_id" and
                                                 None in v else None)
                                   for k, v in log.items()},
                                  calibration_end="2024-01-31", **kwargs)
    assert isinstance(caught.value, CaifuError)


@pytest.mark.parametrize(("x", "t_x", "T", "message"), [
    ([1, 2], [3.0, 5.0], [2.0, 6.0], "recency exceeds T"),
    ([0], [1.0], [2.0], "recency is not 0"),
    ([1.5], [1.0], [2.0], "not a whole number"),
    ([-1], [0.0], [2.0], "frequency is negative"),
    ([1], [np.inf], [2.0], "recency is missing or not finite"),
    ([], [], [], "empty"),
    ([1, 2], [1.0], [2.0, 3.0], "one length"),
])
def test_bad_summaries_are_refused_clearly(x: list, t_x: list, T: list, message: str) -> None:
    with pytest.raises(ClvInputError, match=message):
        fit_bgnbd(x, t_x, T)


def test_fitting_without_repeat_customers_is_refused() -> None:
    with pytest.raises(ClvInputError, match="no customer has a repeat"):
        fit_bgnbd([0, 0], [0.0, 0.0], [3.0, 4.0])
    with pytest.raises(ClvInputError, match="monetary_value must be positive"):
        fit_gamma_gamma([1, 2], [10.0, 0.0])


def test_a_fit_that_stops_early_raises_with_its_report(cdnow: pa.Table) -> None:
    with pytest.raises(ClvConvergenceError, match="did not converge after 2 iterations") as err:
        fit_bgnbd(*_xtT(cdnow), max_iterations=2)
    report = err.value.report
    assert not report.converged and report.iterations == 2 and report.n_customers == 2357
    assert np.isfinite(report.log_likelihood) and report.gradient_norm > 1e-5
    fit = fit_bgnbd(*_xtT(cdnow), max_iterations=2, raise_on_failure=False)
    assert not fit.report.converged


def test_caifu_never_imports_lifetimes() -> None:
    src = Path(caifu.__file__).resolve().parent
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                assert not any(n.split(".")[0] == "lifetimes" for n in names), path


def test_the_docs_examples_run() -> None:
    import doctest

    doc = Path(__file__).resolve().parents[3] / "docs" / "clv.md"
    result = doctest.testfile(str(doc), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10
    assert result.failed == 0


def test_a_fit_at_its_no_dropout_limit_still_gives_finite_expectations() -> None:
    """Found by the API suite: with the as-of 27 days after everyone's last transaction the
    BG/NBD fit ran to a ≈ 1.3e5, b ≈ 2e7, and eq. 10's 2F1 overflowed (NaN for every
    customer). There Beta(a, b) is a point mass at p = a/(a+b); the expectation must lie
    below the no-dropout bound (r+x)/(alpha+T)·t and match the fixed-p formula."""
    p = BgNbdParams(r=0.5251847, alpha=10.0818066, a=130501.622, b=20320222.131)
    x = np.array([0.0, 1.0, 8.0, 82.0, 152.0])
    age = np.array([28.0, 31.0, 34.0, 300.0, 700.0])
    t = np.full(5, 365.25)
    rec = np.where(x > 0, age - 1, 0.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        e = expected_purchases(p, t, x, rec, age)
    assert np.all(np.isfinite(e)) and np.all(e > 0)
    assert np.all(e < (p.r + x) / (p.alpha + age) * t)
    fixed = (p.a - 1) / (p.a + p.b + x - 1)
    alive_bracket = -np.expm1(-(p.r + x) * np.log1p(fixed * t / (p.alpha + age))) / fixed
    alive = probability_alive(p, x, rec, age)
    np.testing.assert_allclose(e, alive_bracket * alive, rtol=1e-9)
    # where eq. 10 is finite the two agree to the Beta's spread (a = 200: ~1e-3)
    q = BgNbdParams(r=0.52, alpha=10.1, a=200.0, b=30000.0)
    exact = expected_purchases(q, t, x, rec, age)
    fixed = (q.a - 1) / (q.a + q.b + x - 1)
    approx = -np.expm1(-(q.r + x) * np.log1p(fixed * t / (q.alpha + age))) / fixed
    np.testing.assert_allclose(exact, approx * probability_alive(
        q, x, rec, age), rtol=2e-3)
