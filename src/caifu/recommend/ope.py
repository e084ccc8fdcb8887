"""How many clicks (or conversions) per list a new policy would get, judged from the log of
the policy that served — without serving the new one.

**Assumption: independent items.** An item's reward (click, conversion: 0 or 1) depends on
the customer and the item, not on the rest of the list nor its slot. Then a policy's value is
item by item, V(π) = mean over lists of Σ_j π(j) · r̄(j), where π(j) is the chance the policy
includes item j in that customer's list (``explore.inclusion``; 1/0 for a deterministic
target) and r̄(j) his reward probability — so the logging policy's inclusion probability μ(j)
is the propensity that reweights its log. Where the assumption fails (a slot's position
changes the click rate, and ``explore`` only explores the last slot), the estimates carry
that bias.

**The log** is one row per (list, item) pair that the logging policy showed *or* the target
policy would show (π > 0): the target's pairs the log never showed are what makes its
unsupported share visible. Per list i, with weights w = π/μ on shown rows:

- IPS        V = mean_i Y_i, Y_i = Σ_shown w·r. Unbiased where μ > 0 wherever π > 0.
- SNIPS      V = (Σ Y / Σ W) · mean_i K_i, W_i = Σ_shown w and K_i = Σ_supported π (E[W_i] =
  K_i): the target's reward per item it shows times its items per list. Slightly biased
  (O(1/n), vanishing with more lists), lower variance, and exactly c·K for a constant reward c;
  undefined (NaN) when no shown item carries target weight.
- clipped    V = mean_i Σ_shown min(w, cap)·r. Never above IPS; for rewards in [0, 1] it
  *underestimates* by Σ_pairs (π − cap·μ)⁺·r̄ / n ≤ ``clip_bias_bound`` (known exactly from
  the propensities); its interval is around that lower expectation.
- logging    V = mean_i Σ_shown r: the serving policy's own value, on-policy, for comparison.

Unsupported pairs (π > 0, μ = 0: the log can say nothing about them) add nothing to any
estimate; their count and share of the target's expected items are reported, and with
rewards in [0, 1] the full value lies between the supported estimate and it plus
``unsupported_per_list``. The effective sample size is Kish's (Σw)²/Σw² over the shown rows:
how many equally weighted shown items the log is worth for this target.

**Intervals** (95 % by default). Normal: each estimate is a smooth function of per-customer
totals (several lists of one customer are one cluster, so repeated days do not pass for
independent evidence); its variance is Σ_c ψ_c² · C/(C−1) with ψ_c the linearised
(delta-method) contribution of customer c — for IPS with one list per customer, the sample
variance of Y_i over n. Bootstrap (optional): customers are resampled whole with
replacement, the percentile interval of the re-estimates. Both assume the sum is near normal,
which rare rewards behind large weights delay: the misses fall below the truth, and a log of
a few hundred lists covers less than 95 % (docs/recommendations.md, bench/ope_coverage.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class PolicyLog:
    """Parallel columns, one row per (list, item) pair shown by the logging policy or given
    π > 0 by the target. ``customer`` defaults to ``list_id`` (one list per customer)."""

    list_id: np.ndarray
    item: np.ndarray
    logging_p: np.ndarray  # μ: the logging policy's inclusion probability (explore.propensity)
    target_p: np.ndarray  # π: the target's inclusion probability (1/0 if deterministic)
    shown: np.ndarray  # bool: the logging policy showed the pair
    reward: np.ndarray  # 0..1, read only where shown (click or conversion)
    customer: np.ndarray | None = None


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    method: str  # "normal" or "bootstrap"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class OffPolicyEstimate:
    """A target policy's expected reward per list, by three estimators, beside the logging
    policy's own; the counts say how much the log could support."""

    ips: Interval
    snips: Interval
    clipped: Interval
    logging: Interval
    cap: float
    clipped_rows: int  # shown rows whose weight exceeded the cap
    clip_bias_bound: float  # clipped's expected shortfall per list is at most this (r ≤ 1)
    effective_sample_size: float  # Kish, over the shown rows
    shown_rows: int
    lists: int
    customers: int
    target_items_per_list: float  # Σ π / lists, supported or not
    unsupported_pairs: int  # π > 0 and μ = 0
    unsupported_share: float  # of the target's expected items
    unsupported_per_list: float  # the most they could add per list (rewards in [0, 1])
    unsupported_items: np.ndarray  # the distinct item ids among them


# per-customer totals, column by column
_Y, _YC, _W, _K, _R, _N = range(6)


def _ratio(a: int, b: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda s: s[..., a] / s[..., b]


def _snips(s: np.ndarray) -> np.ndarray:
    return np.asarray((s[..., _Y] / s[..., _W]) * (s[..., _K] / s[..., _N]))


def _snips_influence(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ψ_c of SNIPS (Y/W)·(K/N) — zero-sum over customers."""
    per_item, per_list = s[_Y] / s[_W], s[_K] / s[_N]
    return np.asarray(per_list * (x[:, _Y] - per_item * x[:, _W]) / s[_W]
                      + per_item * (x[:, _K] - per_list * x[:, _N]) / s[_N])


def _ratio_influence(a: int, b: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """ψ_c of a ratio of sums A/B: (a_c − V·b_c) / B."""
    return lambda x, s: (x[:, a] - s[a] / s[b] * x[:, b]) / s[b]


_ESTIMATORS = {
    "ips": (_ratio(_Y, _N), _ratio_influence(_Y, _N)),
    "snips": (_snips, _snips_influence),
    "clipped": (_ratio(_YC, _N), _ratio_influence(_YC, _N)),
    "logging": (_ratio(_R, _N), _ratio_influence(_R, _N)),
}


def evaluate(log: PolicyLog, *, cap: float = 10.0, level: float = 0.95, bootstrap: int = 0,
             rng: np.random.Generator | None = None) -> OffPolicyEstimate:
    """Estimate the target's value per list from ``log``; ``bootstrap`` > 0 resamples that
    many times over customers (with ``rng``) instead of the normal approximation."""
    _check(log, cap, level, bootstrap, rng)
    owner, cust_code = _clusters(log)
    n_lists, n_cust = len(owner), int(owner.max()) + 1 if len(owner) else 0
    supported = log.logging_p > 0
    w = np.where(supported, log.target_p / np.where(supported, log.logging_p, 1.0), 0.0)
    shown = log.shown.astype(bool)
    r = np.where(shown, log.reward, 0.0)
    ws = np.where(shown, w, 0.0)
    columns = (ws * r, np.minimum(ws, cap) * r, ws, np.where(supported, log.target_p, 0.0), r)
    totals = np.zeros((n_cust, 6))
    for j, col in enumerate(columns):
        totals[:, j] = np.bincount(cust_code, weights=col, minlength=n_cust)
    totals[:, _N] = np.bincount(owner, minlength=n_cust)
    resampled = _resample(totals, bootstrap, rng) if bootstrap and rng is not None else None
    intervals = {name: _interval(totals, f, psi, level, resampled)
                 for name, (f, psi) in _ESTIMATORS.items()}
    gone = (log.target_p > 0) & ~supported
    target_mass = float(log.target_p.sum())
    per_list = 1 / max(n_lists, 1)
    return OffPolicyEstimate(
        **intervals, cap=cap,
        clipped_rows=int((shown & (w > cap)).sum()),
        clip_bias_bound=float(np.clip(log.target_p - cap * log.logging_p, 0, None)[supported]
                              .sum()) * per_list,
        effective_sample_size=_kish(ws[shown]),
        shown_rows=int(shown.sum()), lists=n_lists, customers=n_cust,
        target_items_per_list=target_mass * per_list,
        unsupported_pairs=int(gone.sum()),
        unsupported_share=float(log.target_p[gone].sum()) / target_mass if target_mass else 0.0,
        unsupported_per_list=float(log.target_p[gone].sum()) * per_list,
        unsupported_items=np.unique(log.item[gone]))


def _clusters(log: PolicyLog) -> tuple[np.ndarray, np.ndarray]:
    """The customer of each list (int codes, one per distinct list id) and of each row;
    refuses a (list, item) pair twice and a list shared by two customers."""
    _, list_code = np.unique(log.list_id, return_inverse=True)
    list_code = list_code.ravel()
    n_lists = int(list_code.max()) + 1 if len(list_code) else 0
    if n_lists:
        _, item_code = np.unique(log.item, return_inverse=True)
        pair = list_code.astype(np.int64) * (int(item_code.max()) + 1) + item_code.ravel()
        if len(np.unique(pair)) != len(pair):
            raise ValueError("a (list, item) pair appears twice in the log")
    if log.customer is None:
        return np.arange(n_lists), list_code
    _, cust_code = np.unique(log.customer, return_inverse=True)
    cust_code = cust_code.ravel()
    owner = np.zeros(n_lists, np.int64)
    owner[list_code] = cust_code
    if (owner[list_code] != cust_code).any():
        raise ValueError("a list belongs to more than one customer")
    return owner, cust_code


def _interval(totals: np.ndarray, f: Callable[[np.ndarray], np.ndarray],
              psi: Callable[[np.ndarray, np.ndarray], np.ndarray], level: float,
              resampled: np.ndarray | None) -> Interval:
    """The estimate from the customers' totals, with its normal interval — or, given the
    totals of bootstrap resamples, the percentile interval of their re-estimates."""
    s = totals.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(f(s))
        if resampled is not None:
            tail = (1 - level) / 2 * 100
            low, high = np.percentile(f(resampled), [tail, 100 - tail])
            return Interval(value, float(low), float(high), "bootstrap")
        c = len(totals)
        var = float((psi(totals, s) ** 2).sum()) * c / (c - 1) if c > 1 else np.nan
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(np.sqrt(var))
    return Interval(value, value - half, value + half, "normal")


def _resample(totals: np.ndarray, times: int, rng: np.random.Generator) -> np.ndarray:
    """The column sums of ``times`` resamples of the customers with replacement, (times, 6):
    each resample counts how often each customer was drawn (chunked near a million draws)."""
    c = len(totals)
    chunk = max(1, 1_000_000 // max(c, 1))
    out = []
    for start in range(0, times, chunk):
        b = min(chunk, times - start)
        drawn = rng.integers(0, c, size=(b, c)) + c * np.arange(b)[:, None]
        out.append(np.bincount(drawn.ravel(), minlength=b * c).reshape(b, c) @ totals)
    return np.concatenate(out)


def _kish(w: np.ndarray) -> float:
    sq = float((w**2).sum())
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def _check(log: PolicyLog, cap: float, level: float, bootstrap: int,
           rng: np.random.Generator | None) -> None:
    """Refuse a log the estimates would silently be wrong for."""
    cols = (log.list_id, log.item, log.logging_p, log.target_p, log.shown, log.reward,
            log.list_id if log.customer is None else log.customer)
    if len({len(c) for c in cols}) != 1 or any(np.ndim(c) != 1 for c in cols):
        raise ValueError("the log's columns must be 1-D and of one length")
    for name, p in (("logging", log.logging_p), ("target", log.target_p)):
        if not (np.isfinite(p) & (p >= 0) & (p <= 1)).all():
            raise ValueError(f"a {name} probability is outside [0, 1]")
    shown = log.shown.astype(bool)
    if (shown & (log.logging_p <= 0)).any():
        raise ValueError("a shown pair has logging propensity 0: the log's propensities are "
                         "wrong")
    rew = log.reward[shown]
    if not (np.isfinite(rew) & (rew >= 0) & (rew <= 1)).all():
        raise ValueError("a shown pair's reward is outside [0, 1] (clicks and conversions are "
                         "0 or 1)")
    if not cap > 0:
        raise ValueError(f"the weight cap must be positive, got {cap}")
    if not 0 < level < 1:
        raise ValueError(f"the interval level must be in (0, 1), got {level}")
    if bootstrap < 0 or (bootstrap and rng is None):
        raise ValueError("a bootstrap needs a positive number of resamples and a Generator")
