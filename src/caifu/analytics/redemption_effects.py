"""Fund-redemption analysis, question 2: what redeemed holdings have in common versus the
rest — ``exposed_holdings`` (one row per customer and fund exposed in the period, with the
holding's and the fund's features) and ``compare_redeemed`` (effect sizes: Cramér's V for
categories, rank-biserial correlation for numbers, each with its p-value).

Ibis for the holdings; numpy and scipy over the small Arrow result for the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from scipy import stats

from caifu.analytics.redemption import Period, holding_flows
from caifu.pipelines.fund_ledger import KEY, _positions, nav_drawdowns, nav_series

# --- question 2: what redeemed holdings have in common ---------------------------------------

CATEGORICAL = ("fund_type", "risk_level", "manager_company", "c_level")
NUMERIC = ("nav_max_drawdown", "mgmt_fee_rate", "purchase_fee_rate", "redeem_fee_rate",
           "value_at_start", "return_at_start", "held_days_at_start", "past_redemptions",
           "tenure_days", "aum")
# the holding's flows in the period (``holding_flows``): what question 1 sums per fund
FLOWS = ("shares_at_start", "shares_added", "redeemed_shares", "redeemed_amount", "redeem_fees",
         "redemptions")


def exposed_holdings(fund_tx: ir.Table, funds: ir.Table, period: Period,
                     profile: ir.Table | None = None, lookback_days: int = 60,
                     history_days: int = 365) -> ir.Table:
    """One row per customer and fund held at the start of the period or bought in it, with
    ``redeemed`` (any redemption in the period), its flows in the period (``FLOWS``, from
    ``holding_flows``) and the features ``compare_redeemed`` compares: the fund's (type, R-level, manager, fees, largest NAV drawdown in
    ``[start - lookback_days, end]``), the position's at the start (value, return on paid-in
    cost, share-weighted age), and the holder's (redemptions in the ``history_days`` before
    the start; with a ``profile`` snapshot, C-level, tenure and AUM).

    The position at the start uses the same opening balances as ``shares_at_start`` (the ledger to
    the period's end), so a holding bought before the history and redeemed in the period has
    its value. ``prehistory_shares_at_start`` says how many of its shares are of unknown
    purchase date and cost; with any, its return and age are null (unknown), and
    ``compare_redeemed`` leaves it out of those two features (its ``n`` says how many stay).
    """
    per = holding_flows(fund_tx, period)
    per = per.filter(per.shares_at_start + per.shares_added > 0)
    per = per.mutate(redeemed=per.redemptions > 0)
    navs = nav_series(fund_tx)
    # the opening balances of ``per``: a redemption in the period can reveal them
    pos = _positions(fund_tx, navs, period.start - timedelta(days=1), period.end)
    dd = nav_drawdowns(navs, period.start, period.end, lookback_days).select(
        "fund_code", nav_max_drawdown="max_drawdown")
    h = fund_tx.filter((fund_tx.txn_type == "redeem") & (fund_tx.txn_date < period.start)
                       & (fund_tx.txn_date >= period.start - timedelta(days=history_days)))
    past = h.group_by("customer_id").aggregate(past_redemptions=h.count())
    info = funds.select("fund_code", "fund_type", "risk_level", "manager_company",
                        *[funds[c].cast("float64").name(c) for c in
                          ("mgmt_fee_rate", "purchase_fee_rate", "redeem_fee_rate")])
    j = (per.left_join(pos, KEY).drop("customer_id_right", "fund_code_right")
         .left_join(info, "fund_code").drop("fund_code_right")
         .left_join(dd, "fund_code").drop("fund_code_right")
         .left_join(past, "customer_id").drop("customer_id_right"))
    cols: dict[str, ir.Value] = {
        "value_at_start": j.value.cast("float64"),
        "return_at_start": ibis.cases((j.cost > 0, j.value.cast("float64")
                                       / j.cost.cast("float64") - 1), else_=ibis.null("float64")),
        "held_days_at_start": j.held_days,
        "prehistory_shares_at_start": j.prehistory_shares.fill_null(0),
        "past_redemptions": j.past_redemptions.fill_null(0)}
    out = j.select(*KEY, "redeemed", "fund_type", "risk_level", "manager_company",
                   "mgmt_fee_rate", "purchase_fee_rate", "redeem_fee_rate", "nav_max_drawdown",
                   **cols, **{c: j[c] for c in FLOWS})
    if profile is not None:
        p = profile.select("customer_id", "c_level", "tenure_days",
                           aum=profile.aum.cast("float64"))
        out = out.left_join(p, "customer_id").drop("customer_id_right")
    return out.order_by(KEY)


MISSING_LEVEL = "(空)"


def categorical_effect(levels: Sequence[object], redeemed: np.ndarray
                       ) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """Per level: holdings, redeemed, rate and risk ratio (rate in the level / rate in all
    other levels); for the feature: Cramér's V and the chi-square p-value (no continuity
    correction; None when there are fewer than two levels or one outcome only)."""
    lv = np.array([MISSING_LEVEL if v is None else str(v) for v in levels], dtype=object)
    return effect_of_counts([(name, int((lv == name).sum()), int(redeemed[lv == name].sum()))
                             for name in sorted(set(lv))])


def effect_of_counts(counts: Sequence[tuple[str, int, int]]
                     ) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """``categorical_effect`` from (level, holdings, redeemed) counts, one per level with
    holdings — the statistic needs nothing else, so governed counts (the metric layer's
    ``study_holdings`` and ``study_redeemed_holdings`` by a dimension) give it too."""
    total_n = sum(n for _, n, _ in counts)
    total_k = sum(k for _, _, k in counts)
    rows = []
    for name, n, k in counts:
        rest_n = total_n - n
        rest_rate = (total_k - k) / rest_n if rest_n else float("nan")
        rate = k / n
        rr = rate / rest_rate if rest_n and rest_rate > 0 else None
        rows.append({"level": name, "n": n, "redeemed": k, "rate": rate,
                     "risk_ratio": None if rr is None else float(rr)})
    table = np.array([[r["redeemed"], r["n"] - r["redeemed"]] for r in rows])
    if len(rows) < 2 or (table.sum(axis=0) == 0).any():
        return rows, None, None
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return rows, float(np.sqrt(chi2 / table.sum())), float(p)


def rank_biserial(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Rank-biserial correlation of ``x`` (redeemed) versus ``y`` (the rest):
    ``2U / (n_x n_y) - 1`` = P(x > y) - P(x < y), in [-1, 1]; with the Mann-Whitney p-value."""
    if len(x) == 0 or len(y) == 0:
        return None, None
    u, p = stats.mannwhitneyu(x, y, alternative="two-sided")
    return float(2 * u / (len(x) * len(y)) - 1), float(p)


def compare_redeemed(rows: pa.Table, categorical: Sequence[str] = CATEGORICAL,
                     numeric: Sequence[str] = NUMERIC) -> pa.Table:
    """Question 2: redeemed holdings versus the rest, feature by feature, with effect sizes.

    Categorical features: redemption rate per level with its risk ratio, and Cramér's V for
    the feature (0 = no association … 1 = the level decides). Numeric features: medians of
    both groups and the rank-biserial correlation, not Cohen's d — amounts, returns and
    drawdowns are skewed with heavy tails and many zeros, where a mean difference in standard
    deviations is driven by a few large accounts; a rank effect is unchanged by any monotone
    rescaling (yuan or log-yuan) and reads as "how much more often a redeemed holding has the
    larger value". Missing values are left out feature by feature (``n`` says how many stay).
    """
    red_all = np.asarray(rows["redeemed"].to_pylist(), dtype=bool)
    out: list[dict[str, Any]] = []
    for feat in (c for c in categorical if c in rows.column_names):
        levels, v, p = categorical_effect(rows[feat].to_pylist(), red_all)
        out += [{"feature": feat, "kind": "categorical", **lv, "effect": v,
                 "effect_size": "cramers_v", "p_value": p} for lv in levels]
    for feat in (c for c in numeric if c in rows.column_names):
        x = np.asarray(rows[feat].to_numpy(zero_copy_only=False), dtype=float)
        ok = ~np.isnan(x)
        xr, xo = x[ok & red_all], x[ok & ~red_all]
        r, p = rank_biserial(xr, xo)
        out.append({"feature": feat, "kind": "numeric", "level": None, "n": int(ok.sum()),
                    "redeemed": len(xr), "rate": len(xr) / ok.sum() if ok.any() else None,
                    "risk_ratio": None, "effect": r, "effect_size": "rank_biserial",
                    "p_value": p,
                    "median_redeemed": float(np.median(xr)) if len(xr) else None,
                    "median_rest": float(np.median(xo)) if len(xo) else None})
    schema = pa.schema([("feature", pa.string()), ("kind", pa.string()), ("level", pa.string()),
                        ("n", pa.int64()), ("redeemed", pa.int64()), ("rate", pa.float64()),
                        ("risk_ratio", pa.float64()), ("effect", pa.float64()),
                        ("effect_size", pa.string()), ("p_value", pa.float64()),
                        ("median_redeemed", pa.float64()), ("median_rest", pa.float64())])
    return pa.Table.from_pylist(out, schema=schema)
