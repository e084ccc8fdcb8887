"""CLV's public functions on the inputs outside probes handed them: missing numeric ids,
yyyymmdd dates, zoned pandas timestamps, a summary in days scored as if in weeks, a fit on a
handful of customers. Each is a clear error or the right answer, never a quiet wrong one."""

from __future__ import annotations

import datetime as dt
import importlib.resources

import numpy as np
import pyarrow as pa
import pytest

from caifu.analytics.clv import (
    MIN_CUSTOMERS,
    MIN_REPEAT_CUSTOMERS,
    BgNbdParams,
    ClvInputError,
    GammaGammaParams,
    fit_bgnbd,
    fit_gamma_gamma,
    summary_from_transactions,
)
from caifu.analytics.clv_predict import customer_lifetime_value

pd = pytest.importorskip("pandas")  # lifetimes' dependency, a dev dependency of caifu

ISO = ["2024-01-02", "2024-01-02", "2024-01-09", "2024-02-01", "2024-01-05", "2024-01-20"]
IDS = [1, 1, 1, 1, 2, 2]
AMOUNTS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def _log(ids: object, dates: object) -> dict[str, object]:
    return {"customer_id": ids, "date": dates, "amount": np.array(AMOUNTS)}


def _summary_lists(s) -> tuple[list, ...]:  # type: ignore[no-untyped-def]
    return (s.customer_id.tolist(), s.frequency.tolist(), s.recency.tolist(), s.T.tolist(),
            s.monetary_value.tolist())


# --- 1. missing numeric customer ids ---------------------------------------------------------


@pytest.mark.parametrize("ids", [
    np.array([1.0, np.nan, 1.0, np.nan, 2.0, 2.0]),
    pd.Series([1, None, 1, None, 2, 2]),  # pandas turns None into NaN in a numeric column
    pd.Series([1, None, 1, None, 2, 2], dtype="Int64"),  # and into pd.NA in a nullable one
    np.array([1, None, 1, float("nan"), 2, 2], dtype=object),
])
def test_missing_numeric_ids_are_refused_naming_the_rows(ids: object) -> None:
    with pytest.raises(ClvInputError, match=r"customer_id has missing values in 2 rows: 1, 3 \("):
        summary_from_transactions(_log(ids, np.array(ISO)), calibration_end="2024-02-29")


# --- 2. yyyymmdd dates --------------------------------------------------------------------------


def test_yyyymmdd_strings_and_integers_are_read_as_dates() -> None:
    compact = [d.replace("-", "") for d in ISO]
    expected = _summary_lists(summary_from_transactions(
        _log(np.array(IDS), np.array(ISO)), calibration_end="2024-02-29", time_unit="day"))
    assert expected[1:3] == ([2, 1], [30.0, 15.0])
    for dates in (np.array(compact), np.array([int(d) for d in compact]),
                  pd.Series([int(d) for d in compact]), pd.Series(compact),
                  pa.array(compact), pa.array([int(d) for d in compact], pa.int64())):
        for end in ("20240229", 20240229, "2024-02-29"):
            got = summary_from_transactions(_log(np.array(IDS), dates), calibration_end=end,
                                            time_unit="day")
            assert _summary_lists(got) == expected, (type(dates), end)


def test_cdnow_raw_log_reads_with_its_own_date_column() -> None:
    """CDNOW_sample.txt as it ships (dates as yyyymmdd integers) gives the published
    calibration summary: 2,357 customers, 39-week holdout."""
    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_sample.txt"
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    log = {"customer_id": np.array([int(r[1]) for r in rows]),
           "date": np.array([int(r[2]) for r in rows]),
           "amount": np.array([float(r[4]) for r in rows])}
    s = summary_from_transactions(log, calibration_end=19970930, holdout_end=19980630)
    assert len(s) == 2357 and s.duration_holdout == pytest.approx(39.0)
    assert int(s.frequency.sum()) == 2457  # as in the published cdnow_customers_summary.csv


@pytest.mark.parametrize(("dates", "message"), [
    (np.array([9862, 9863, 9870, 9893, 9866, 9881]), "ambiguous"),  # day counts
    (np.array([1997.0, 1997.0, 1997.0, 1997.0, 1997.0, 1997.0]), "ambiguous"),  # years
    (np.array([19970101, 19970101, 19970132, 19970201, 19970105, 19970120]),
     r"not a yyyymmdd date in 1 rows \(first: row 2, value 19970132\)"),
    (np.array(["19970101", "19970101", "19971301", "19970201", "19970105", "19970120"]),
     r"not a yyyymmdd date in 1 rows \(first: row 2, value '19971301'\)"),
])
def test_ambiguous_or_invalid_numeric_dates_are_refused(dates: np.ndarray, message: str) -> None:
    with pytest.raises(ClvInputError, match=message):
        summary_from_transactions(_log(np.array(IDS), dates), calibration_end="1998-01-31")


def test_a_compact_calibration_end_is_not_a_year() -> None:
    with pytest.raises(ClvInputError, match="calibration_end is not a date: 19971345"):
        summary_from_transactions(_log(np.array(IDS), np.array(ISO)), calibration_end=19971345)


# --- 3. zoned pandas timestamps ---------------------------------------------------------------


def test_zoned_pandas_timestamps_fall_on_their_local_day() -> None:
    # 00:30 in Shanghai is 16:30 UTC the day before: the trading day is the local one
    local = pd.to_datetime([f"{d} 00:30" for d in ISO]).tz_localize("Asia/Shanghai")
    expected = _summary_lists(summary_from_transactions(
        _log(np.array(IDS), np.array(ISO)), calibration_end="2024-02-29", time_unit="day"))
    for dates in (pd.Series(local), local, pd.Series(local).astype(object),
                  np.array(local.to_pydatetime(), dtype=object)):
        got = summary_from_transactions(_log(np.array(IDS), dates),
                                        calibration_end="2024-02-29", time_unit="day")
        assert _summary_lists(got) == expected, type(dates)
    frame = pd.DataFrame({"customer_id": IDS, "date": local, "amount": AMOUNTS})
    assert _summary_lists(summary_from_transactions(
        frame, calibration_end="2024-02-29", time_unit="day")) == expected
    # a log that mixes zones is still read each stamp on its own local day
    mixed = np.array([dt.datetime(2024, 1, 2, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
                      dt.datetime(2024, 1, 1, 16, 30, tzinfo=dt.UTC)], dtype=object)
    s = summary_from_transactions({"customer_id": [1, 1], "date": mixed, "amount": [1.0, 1.0]},
                                  calibration_end="2024-01-10", time_unit="day")
    assert s.frequency.tolist() == [1] and s.recency.tolist() == [1.0]


# --- 4. the summary's time unit in CLV ---------------------------------------------------------


def _population(n: int = 3000, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01")
    ids, days, amounts = [], [], []
    for i in range(n):
        birth = rng.integers(0, 600)
        rate = rng.gamma(0.7, 0.04)
        life = rng.exponential(400)
        span = int(min(life, 729 - birth))
        for d in np.unique(np.concatenate(([0], rng.integers(0, span + 1, rng.poisson(
                rate * span))))):
            ids.append(i)
            days.append(start + np.timedelta64(int(birth + d), "D"))
            amounts.append(float(rng.gamma(3.0, 8.0)))
    return {"customer_id": np.array(ids), "date": np.array(days),
            "amount": np.array(amounts)}


@pytest.fixture(scope="module")
def two_units() -> tuple:  # type: ignore[type-arg]
    log = _population()
    out = []
    for unit in ("day", "week"):
        s = summary_from_transactions(log, calibration_end="2023-12-31", time_unit=unit)
        bg = fit_bgnbd(s.frequency, s.recency, s.T).params
        gg = fit_gamma_gamma(s.frequency, s.monetary_value).params
        out.append((s, bg, gg))
    return tuple(out)


def test_day_and_week_summaries_give_the_same_clv(two_units) -> None:  # type: ignore[no-untyped-def]
    (sd, bgd, ggd), (sw, bgw, ggw) = two_units
    assert bgd.alpha == pytest.approx(7 * bgw.alpha, rel=1e-4)
    for months in (12, 120):
        # the summary carries its unit ...
        by_day = customer_lifetime_value(bgd, ggd, sd, months=months)
        by_week = customer_lifetime_value(bgw, ggw, sw, months=months)
        np.testing.assert_allclose(by_day, by_week, rtol=1e-4, atol=1e-6)
        # ... and plain arrays state it
        arrays = customer_lifetime_value(bgd, ggd, sd.frequency, sd.recency, sd.T,
                                         sd.monetary_value, months=months, time_unit="day")
        np.testing.assert_array_equal(arrays, by_day)
    assert by_day.sum() > 0


def test_plain_arrays_without_a_time_unit_are_refused(two_units) -> None:  # type: ignore[no-untyped-def]
    """The default used to be weeks: a day-unit summary scored 5.6x too low."""
    (sd, bgd, ggd), _ = two_units
    with pytest.raises(ClvInputError, match="time_unit"):
        customer_lifetime_value(bgd, ggd, sd.frequency, sd.recency, sd.T, sd.monetary_value)
    with pytest.raises(ClvInputError, match="summary is in days, not weeks"):
        customer_lifetime_value(bgd, ggd, sd, time_unit="week")


def test_day_unit_clv_matches_lifetimes(two_units) -> None:  # type: ignore[no-untyped-def]
    """lifetimes 0.11.3 counts 30 days or 4.345 weeks to a month; with the same month and
    lifetimes' own parameters, caifu's CLV of either summary is lifetimes' to 1e-9."""
    import warnings

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    for s, freq, k in ((two_units[0][0], "D", 30.0), (two_units[1][0], "W", 4.345)):
        x, t_x, age, m = (pd.Series(v) for v in (s.frequency, s.recency, s.T,
                                                   s.monetary_value))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bgf = BetaGeoFitter().fit(x, t_x, age)
            # a small penalty: with scipy ≥ 1.17 the unpenalised Gamma-Gamma fit of this
            # sample stops on "precision loss" and lifetimes raises; the parameters are only
            # the common input of both CLV formulas compared below
            ggf = GammaGammaFitter(penalizer_coef=1e-3).fit(x[x > 0], m[x > 0])
        theirs = ggf.customer_lifetime_value(bgf, x, t_x, age, m, time=12, discount_rate=0.01,
                                             freq=freq).to_numpy()
        bg = BgNbdParams(*bgf.params_[["r", "alpha", "a", "b"]].to_numpy())
        gg = GammaGammaParams(*ggf.params_[["p", "q", "v"]].to_numpy())
        ours = customer_lifetime_value(bg, gg, s, months=12, periods_per_month=k)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)


# --- 5. too few customers to fit -------------------------------------------------------------


def test_a_fit_on_two_customers_is_refused() -> None:
    with pytest.raises(ClvInputError, match=rf"at least {MIN_CUSTOMERS} customers.*2 given"):
        fit_bgnbd([1, 3], [5.0, 10.0], [20.0, 30.0])
    n = MIN_CUSTOMERS + 10
    x = np.zeros(n)
    x[:MIN_REPEAT_CUSTOMERS - 1] = 2
    t_x = np.where(x > 0, 5.0, 0.0)
    with pytest.raises(ClvInputError, match=rf"at least {MIN_REPEAT_CUSTOMERS} customers with "
                                            rf"repeat transactions.*{MIN_REPEAT_CUSTOMERS - 1}"):
        fit_bgnbd(x, t_x, np.full(n, 30.0))
    with pytest.raises(ClvInputError, match=rf"at least {MIN_REPEAT_CUSTOMERS} customers with "
                                            "repeat transactions"):
        fit_gamma_gamma([1, 2, 0], [10.0, 12.0, 0.0])
    # a grouped summary counts its weights
    fit = fit_bgnbd([0, 1, 2, 5], [0.0, 10.0, 20.0, 28.0], [30.0, 30.0, 30.0, 30.0],
                    weights=[40, 20, 10, 5])
    assert fit.report.n_customers == 4 and fit.report.converged


# --- survival ahead: what a run-rate cost costs over a horizon --------------------------------


@pytest.mark.parametrize(("x", "T", "t"), [(0, 100.0, 365.0), (5, 300.0, 3650.0),
                                           (80, 700.0, 1000.0), (3, 50.0, 30.0)])
def test_survival_if_alive_is_the_posterior_expectation(x: int, T: float, t: float) -> None:
    """Alive at T: lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x); survival E[exp(-lambda p t)]
    by simulation, against the closed form."""
    from caifu.analytics.clv_predict import survival_if_alive

    p = BgNbdParams(0.55, 10.4, 0.122, 18.1)
    rng = np.random.default_rng(1)
    lam = rng.gamma(p.r + x, 1 / (p.alpha + T), 400_000)
    drop = rng.beta(p.a, p.b + x, 400_000)
    simulated = np.exp(-lam * drop * t)
    closed = float(survival_if_alive(p, t, x, T))
    assert closed == pytest.approx(simulated.mean(), abs=4 * simulated.std() / 630)
    assert 0 < closed < 1


def test_expected_active_months_in_days_and_weeks(two_units) -> None:  # type: ignore[no-untyped-def]
    from caifu.analytics.clv_predict import expected_active_months, probability_alive

    (sd, bgd, _), (sw, bgw, _) = two_units
    days = expected_active_months(bgd, sd.frequency, sd.recency, sd.T, months=60,
                                  time_unit="day")
    weeks = expected_active_months(bgw, sw.frequency, sw.recency, sw.T, months=60,
                                   time_unit="week")
    np.testing.assert_allclose(days, weeks, rtol=1e-4)
    annuity = sum(1.01 ** -m for m in range(1, 61))
    alive = probability_alive(bgd, sd.frequency, sd.recency, sd.T)
    assert np.all(days <= alive * annuity + 1e-9) and np.all(days > 0)
