"""Customer lifetime value: BG/NBD for how many transactions, Gamma-Gamma for how much each.

Fitted here by maximum likelihood with numpy/scipy; what the fitted parameters predict
(P(alive), expected transactions, CLV) is in :mod:`caifu.analytics.clv_predict`. docs/clv.md
has the model, the broker's definition of a transaction and worked examples. Sources:

- BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing
  Science 24(2) — likelihood (eq. 6), E[Y(t) | x, t_x, T] (eq. 10), P(alive) (Fader, Hardie &
  Lee 2008 note "Computing P(alive) using the BG/NBD model").
- Gamma-Gamma: Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".

Speed comes from the sufficient statistics: the BG/NBD log-likelihood of a customer depends
on (x, t_x, T) only, and most of it on x alone or T alone, so the fit runs over the distinct
(x, t_x, T) rows with counts, and the x-only and T-only terms over their few distinct values.

Errors: bad input raises :class:`ClvInputError`; an optimiser that stops short of the
maximum raises :class:`ClvConvergenceError`, which carries the :class:`FitReport`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from caifu.analytics.clv_checks import ClvError, ClvInputError
from caifu.analytics.clv_data import CustomerSummary, check_summary, summary_from_transactions

__all__ = [
    "BgNbdFit", "BgNbdParams", "ClvConvergenceError", "ClvError", "ClvInputError",
    "CustomerSummary", "FitReport", "GammaGammaFit", "GammaGammaParams",
    "bgnbd_log_likelihood", "fit_bgnbd", "fit_gamma_gamma", "gamma_gamma_log_likelihood",
    "summary_from_transactions",
]

# Below these a fit is refused: with 4 (BG/NBD) or 3 (Gamma-Gamma) parameters and a handful
# of customers the likelihood is flat along whole directions, and the optimiser stops at
# arbitrary values that still pass the gradient test (two customers "converged" at r = 2e6).
MIN_CUSTOMERS = 30
MIN_REPEAT_CUSTOMERS = 10
LOG_BOUND = 30.0  # parameters live in [e^-30, e^30]; an estimate at the edge is not a maximum


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class FitReport:
    """How the maximum-likelihood search ended — read it before trusting the parameters."""

    converged: bool
    iterations: int
    log_likelihood: float
    gradient_norm: float  # max |d mean-LL / d log-parameter| at the estimate
    message: str
    n_customers: int
    n_groups: int


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    report: FitReport


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    report: FitReport


class ClvConvergenceError(ClvError):
    """The likelihood maximisation did not converge; ``report`` and ``params`` say where."""

    code = "clv.convergence"

    def __init__(self, model: str, report: FitReport, params: Any) -> None:
        self.report = report
        self.params = params
        super().__init__(
            f"{model} fit did not converge after {report.iterations} iterations: "
            f"{report.message} (log-likelihood {report.log_likelihood:.6g}, gradient norm "
            f"{report.gradient_norm:.3g}, last estimate {params}). Check the summary (time "
            "unit, enough repeat customers) or pass raise_on_failure=False to inspect it.")


# --- BG/NBD likelihood on grouped sufficient statistics ----------------------------------------


@dataclass(frozen=True)
class _BgNbdStats:
    total: float  # customers
    x_values: np.ndarray  # distinct x
    x_weight: np.ndarray  # customers per distinct x
    t_values: np.ndarray  # distinct T
    t_weight: np.ndarray  # customers per distinct T
    t_xsum: np.ndarray  # sum of x per distinct T
    tx_values: np.ndarray  # distinct t_x of repeat customers
    g_x: np.ndarray  # distinct (x, t_x, T) with x > 0: x as a float ...
    g_x_code: np.ndarray  # ... and the index of x, t_x and T in their distinct values
    g_tx_code: np.ndarray
    g_t_code: np.ndarray
    g_w: np.ndarray  # customers per group


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and each value's index in them; a plain sort is ~5x faster than
    np.unique(return_inverse=True), which argsorts."""
    s = np.sort(values)
    distinct = s[np.concatenate(([True], s[1:] != s[:-1]))] if s.size else s
    return distinct, np.searchsorted(distinct, values)


def _bgnbd_stats(x: np.ndarray, t_x: np.ndarray, age: np.ndarray,
                 weights: np.ndarray) -> _BgNbdStats:
    x_values, x_code = _distinct(x)
    t_values, t_code = _distinct(age)
    t_weight = np.bincount(t_code, weights=weights, minlength=len(t_values))
    t_xsum = np.bincount(t_code, weights=weights * x, minlength=len(t_values))
    x_weight = np.bincount(x_code, weights=weights, minlength=len(x_values))
    rep = x > 0
    rx, rtx, rw, rt_code = x[rep], t_x[rep], weights[rep], t_code[rep]
    tx_values, tx_code = _distinct(rtx)
    span = float(x_values[-1] + 1) * len(tx_values) * len(t_values) if len(x_values) else 0.0
    if span < 2.0**62:
        key = (rx.astype(np.int64) * len(tx_values) + tx_code) * len(t_values) + rt_code
        if np.all(rw == 1.0):  # one customer per row, the usual case: sort keys, count runs
            key = np.sort(key)
        else:
            order = np.argsort(key)
            key, rw = key[order], rw[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) \
            else np.zeros(0, dtype=np.int64)
        g_w = np.add.reduceat(rw, starts) if len(starts) else rw[:0]
        key = key[starts]
        g_t_code = key % len(t_values)
        key //= len(t_values)
        g_tx_code = key % len(tx_values)
        g_x = (key // len(tx_values)).astype(np.float64)
    else:  # values too many to pack in one integer key: group the rows themselves
        rows, inverse = np.unique(np.column_stack([rx, rtx, age[rep]]), axis=0,
                                  return_inverse=True)
        g_w = np.bincount(inverse.ravel(), weights=rw, minlength=len(rows))
        g_x = rows[:, 0]
        g_tx_code = np.searchsorted(tx_values, rows[:, 1])
        g_t_code = np.searchsorted(t_values, rows[:, 2])
    return _BgNbdStats(float(weights.sum()), x_values.astype(np.float64), x_weight, t_values,
                       t_weight, t_xsum, tx_values, g_x, np.searchsorted(x_values, g_x),
                       g_tx_code, g_t_code, g_w)


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """u . v without BLAS: OpenBLAS wakes its threads for a dot product, which took
    milliseconds instead of microseconds on a shared 2-core machine."""
    return float(np.einsum("i,i->", u, v))


def _bgnbd_ll_grad(theta: np.ndarray, s: _BgNbdStats) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient in (r, alpha, a, b).

    Per customer, with c = ln a - ln(b+x-1) + (r+x) ln((alpha+T)/(alpha+t_x)):
        ll = lnG(r+x) - lnG(r) + r ln alpha - (r+x) ln(alpha+T)
             + lnG(b+x) - lnG(b) + lnG(a+b) - lnG(a+b+x) + [x>0] softplus(c)
    which is eq. 6 of Fader, Hardie & Lee (2005) with the two-term sum taken as a
    log-sum-exp, so neither term under- or overflows at hundreds of transactions.
    """
    r, alpha, a, b = theta
    xv, xw = s.x_values, s.x_weight
    ll_x = xw @ (gammaln(r + xv) - gammaln(r) + gammaln(b + xv) - gammaln(b)
                 + gammaln(a + b) - gammaln(a + b + xv))
    log_at = np.log(alpha + s.t_values)
    ll_t = s.total * r * np.log(alpha) - (r * s.t_weight + s.t_xsum) @ log_at

    # Per group, only gathers from the small per-value tables and a few vector operations:
    # logs, reciprocals and x-terms are computed once per distinct value.
    rx = s.g_x + r
    inv_at, inv_atx = 1.0 / (alpha + s.t_values), 1.0 / (alpha + s.tx_values)
    log_ratio = log_at[s.g_t_code] - np.log(alpha + s.tx_values)[s.g_tx_code]
    inv_bx1 = 1.0 / (b + np.maximum(s.x_values, 1.0) - 1.0)  # gathered only where x >= 1
    c = rx * log_ratio
    c += np.log(a) + np.log(inv_bx1)[s.g_x_code]
    # softplus(c) = log(1 + e^c) and its derivative expit(c), from one exp(-|c|): stable for
    # any c, and several times faster than np.logaddexp + scipy's expit
    e = np.exp(-np.abs(c))
    ll_g = _dot(s.g_w, np.maximum(c, 0.0) + np.log1p(e))
    ws = s.g_w * np.where(c >= 0.0, 1.0, e) / (1.0 + e)  # d softplus / dc, weighted

    d_r = (xw @ (digamma(r + xv) - digamma(r)) + s.total * np.log(alpha)
           - s.t_weight @ log_at + _dot(ws, log_ratio))
    d_alpha = (s.total * r / alpha - (r * s.t_weight + s.t_xsum) @ inv_at
               + _dot(ws * rx, inv_at[s.g_t_code] - inv_atx[s.g_tx_code]))
    d_ab = xw @ (digamma(a + b) - digamma(a + b + xv))
    d_a = d_ab + ws.sum() / a
    d_b = d_ab + xw @ (digamma(b + xv) - digamma(b)) - _dot(ws, inv_bx1[s.g_x_code])
    return float(ll_x + ll_t + ll_g), np.array([d_r, d_alpha, d_a, d_b])


def _prepare(frequency: Any, recency: Any, T: Any, weights: Any) -> tuple[np.ndarray, ...]:
    x, t_x, age = check_summary(frequency, recency, T)
    if weights is None:
        w = np.ones(len(x))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != x.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ClvInputError("weights must be finite, non-negative and one per row")
    return x, t_x, age, w


def bgnbd_log_likelihood(params: BgNbdParams, frequency: Any, recency: Any, T: Any,
                         weights: Any = None) -> float:
    """Total BG/NBD log-likelihood of the customers at ``params`` (eq. 6, all terms kept)."""
    x, t_x, age, w = _prepare(frequency, recency, T, weights)
    theta = np.array([params.r, params.alpha, params.a, params.b], dtype=np.float64)
    return _bgnbd_ll_grad(theta, _bgnbd_stats(x.astype(np.float64), t_x, age, w))[0]


def fit_bgnbd(
    frequency: Any, recency: Any, T: Any,
    *, weights: Any = None, initial: BgNbdParams | None = None,
    raise_on_failure: bool = True, max_iterations: int = 1000,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD parameters of a customer summary.

    ``weights`` counts customers per row (a grouped summary); rows are grouped anyway.
    Raises ClvConvergenceError if the search does not converge (unless raise_on_failure is
    False, when the report says so).
    """
    x, t_x, age, w = _prepare(frequency, recency, T, weights)
    if not np.any(w[x > 0] > 0):
        raise ClvInputError("no customer has a repeat transaction: BG/NBD cannot be fitted")
    _enough("BG/NBD", float(w.sum()), float(w[x > 0].sum()), MIN_CUSTOMERS)
    stats = _bgnbd_stats(x.astype(np.float64), t_x, age, w)
    mean_t = _dot(w, age) / float(w.sum()) or 1.0
    start = initial or BgNbdParams(1.0, mean_t, 1.0, 1.0)
    theta0 = np.array([start.r, start.alpha, start.a, start.b])
    theta, report = _maximise(lambda th: _bgnbd_ll_grad(th, stats), theta0, stats.total,
                              int(len(x)), int(len(stats.g_w) + len(stats.t_values)),
                              max_iterations)
    params = BgNbdParams(*map(float, theta))
    if raise_on_failure and not report.converged:
        raise ClvConvergenceError("BG/NBD", report, params)
    return BgNbdFit(params, report)


def _enough(model: str, customers: float, repeaters: float, min_customers: int) -> None:
    if customers >= min_customers and repeaters >= MIN_REPEAT_CUSTOMERS:
        return
    need = f"at least {min_customers} customers, " if min_customers else ""
    raise ClvInputError(
        f"{model} needs {need}at least {MIN_REPEAT_CUSTOMERS} customers with repeat "
        f"transactions; {customers:g} given, {repeaters:g} with repeat transactions. With "
        "fewer the parameters are not identified and the fit stops at arbitrary values: fit "
        "the whole customer base, then score the few")


def _maximise(
    ll_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], theta0: np.ndarray,
    total: float, n_customers: int, n_groups: int, max_iterations: int,
) -> tuple[np.ndarray, FitReport]:
    """L-BFGS-B over log-parameters (positivity for free, and scale-free steps), on the
    mean log-likelihood so one tolerance suits 2,000 and 10,000,000 customers."""
    if np.any(~np.isfinite(theta0)) or np.any(theta0 <= 0):
        raise ClvInputError(f"initial parameters must be positive and finite, not {theta0}")

    def objective(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        ll, grad = ll_grad(theta)
        if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(log_theta)  # makes the line search step back
        return -ll / total, -grad * theta / total

    res = minimize(objective, np.log(theta0), jac=True, method="L-BFGS-B",
                   bounds=[(-LOG_BOUND, LOG_BOUND)] * len(theta0),
                   options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-9})
    theta = np.exp(res.x)
    ll, grad = ll_grad(theta)
    gnorm = float(np.max(np.abs(grad * theta))) / total
    at_bound = np.abs(res.x) >= LOG_BOUND - 1e-6
    converged = bool(np.isfinite(ll) and gnorm < 1e-5 and not at_bound.any())
    message = str(res.message)
    if at_bound.any():
        message = (f"parameter(s) {np.flatnonzero(at_bound).tolist()} ran to the bound "
                   f"e^±{LOG_BOUND:g}: the data do not identify the model")
    elif not converged:
        message = f"{message}; gradient norm {gnorm:.3g} is not small"
    return theta, FitReport(converged, int(res.nit), float(ll), gnorm, message, n_customers,
                            n_groups)


# --- Gamma-Gamma ------------------------------------------------------------------------------


def _gg_inputs(frequency: Any, monetary_value: Any, weights: Any) -> tuple[np.ndarray, ...]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    w = np.ones(x.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (x.shape == m.shape == w.shape) or x.ndim != 1:
        raise ClvInputError("frequency, monetary_value and weights must be 1-D, one length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m)) and np.all(np.isfinite(w))):
        raise ClvInputError("frequency, monetary_value and weights must be finite")
    rep = x > 0
    if np.any(m[rep] <= 0):
        i = int(np.flatnonzero(rep & (m <= 0))[0])
        raise ClvInputError(
            f"monetary_value must be positive for customers with repeat transactions (row {i}: "
            f"{m[i]!r}); drop zero-revenue customers or define revenue so it is positive")
    if not rep.any():
        raise ClvInputError("no customer has a repeat transaction: Gamma-Gamma cannot be fitted")
    return x[rep], m[rep], w[rep]


def _gg_ll_grad(theta: np.ndarray, x: np.ndarray, m: np.ndarray,
                w: np.ndarray) -> tuple[float, np.ndarray]:
    """Fader & Hardie (2013) eq. 4: the density of a customer's mean spend m over x days."""
    p, q, g = theta
    px = p * x
    log_gxm = np.log(g + x * m)
    ll = _dot(w, gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
              + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * log_gxm)
    psi = digamma(px + q)
    d_p = _dot(w, x * (psi - digamma(px) + np.log(m) + np.log(x) - log_gxm))
    d_q = _dot(w, psi - digamma(q) + np.log(g) - log_gxm)
    d_g = _dot(w, q / g - (px + q) / (g + x * m))
    return float(ll), np.array([d_p, d_q, d_g])


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency: Any, monetary_value: Any,
                               weights: Any = None) -> float:
    x, m, w = _gg_inputs(frequency, monetary_value, weights)
    return _gg_ll_grad(np.array([params.p, params.q, params.gamma]), x, m, w)[0]


def fit_gamma_gamma(frequency: Any, monetary_value: Any, *, weights: Any = None,
                    initial: GammaGammaParams | None = None, raise_on_failure: bool = True,
                    max_iterations: int = 1000) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma parameters from customers with x > 0 (others ignored)."""
    x, m, w = _gg_inputs(frequency, monetary_value, weights)
    _enough("Gamma-Gamma", float(w.sum()), float(w.sum()), 0)
    start = initial or GammaGammaParams(1.0, 1.0, _dot(w, m) / float(w.sum()))
    theta, report = _maximise(lambda th: _gg_ll_grad(th, x, m, w),
                              np.array([start.p, start.q, start.gamma]), float(w.sum()),
                              int(len(x)), int(len(x)), max_iterations)
    params = GammaGammaParams(*map(float, theta))
    if raise_on_failure and not report.converged:
        raise ClvConvergenceError("Gamma-Gamma", report, params)
    return GammaGammaFit(params, report)
