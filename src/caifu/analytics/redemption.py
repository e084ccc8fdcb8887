"""Fund-redemption analysis: the four questions operations ask after a market fall.

1. ``fund_redemptions`` — which funds had the highest redemption amount and ratio in a period;
2. ``exposed_holdings`` + ``compare_redeemed`` — what redeemed holdings have in common versus
   the rest, with effect sizes;
3. ``redemption_holding_periods`` + ``holding_period_summary`` — how long redeemed shares
   had been held (median, quartiles, by fund type);
4. ``holder_positions`` + ``redeemer_history`` + ``reassurance_list`` — which current holders
   need reassurance, ranked, with reasons.

Ibis expressions take the broker's tables and return tables (DuckDB or Spark); effect sizes
and the reasons are numpy/scipy/Python over the small Arrow results. Nothing here opens a
connection. Definitions (``docs/fund-redemption.md`` explains them for operations):

- A period is ``[start, end]`` in business (confirmation) dates, both inclusive.
- The share ledger: subscriptions, purchases and reinvested dividends add shares, redemptions
  remove them. Shares redeemed beyond what the ledger ever added (holdings older than the
  history) are an *opening balance* per customer and fund: the smallest balance consistent with
  the ledger, held since an unknown date.
- Redemption ratio = shares redeemed in the period / (shares held at the start + shares added
  in the period). Shares, not yuan: a fall lowers a holding's value but not its shares, so the
  ratio measures behaviour, not the market; it cannot exceed 1.
- FIFO lots (``fifo_matches``): redeemed shares consume the oldest shares first, as the fund
  registrar (登记机构) does when it computes holding periods for redemption fees. Each lot is a
  subscription, purchase or reinvested dividend; a lot and a redemption match where their
  intervals on the cumulative-shares line overlap. The opening balance is the oldest lot.
- NAVs are not a table of their own: ``nav_series`` takes each fund's NAV from its confirmed
  transactions of a date. A fund has a NAV only on dates somebody transacted in it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from scipy import stats

from caifu.core.money import pct
from caifu.pipelines.amounts import money
from caifu.pipelines.fund_ledger import (
    EXACT as EXACT,
)
from caifu.pipelines.fund_ledger import (
    KEY as KEY,
)
from caifu.pipelines.fund_ledger import (
    LOT_TYPES as LOT_TYPES,
)
from caifu.pipelines.fund_ledger import (
    _ledger as _ledger,
)
from caifu.pipelines.fund_ledger import (
    _positions as _positions,
)
from caifu.pipelines.fund_ledger import (
    fifo_matches as fifo_matches,
)
from caifu.pipelines.fund_ledger import (
    holder_positions as holder_positions,
)
from caifu.pipelines.fund_ledger import (
    latest_navs as latest_navs,
)
from caifu.pipelines.fund_ledger import (
    nav_drawdowns as nav_drawdowns,
)
from caifu.pipelines.fund_ledger import (
    nav_series as nav_series,
)
from caifu.pipelines.fund_ledger import (
    open_lots as open_lots,
)


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"period starts {self.start} after it ends {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


















def fund_redemptions(fund_tx: ir.Table, funds: ir.Table, period: Period) -> ir.Table:
    """Question 1: per fund held or bought in the period, what was redeemed, ranked by amount.

    ``redemption_ratio`` = redeemed shares / (shares at the start + shares added in it).
    """
    f = _ledger(fund_tx, period.end)
    inside = f.txn_date >= period.start
    red = inside & (f.is_redeem == 1)
    per = f.group_by(KEY).aggregate(
        at_start=f.signed.sum(where=~inside).fill_null(0) + f.opening.max(),
        added=f.signed.sum(where=inside & (f.is_redeem == 0)).fill_null(0),
        redeemed=f.shares.sum(where=red).fill_null(0), amount=f.amount.sum(where=red),
        fees=f.fee.sum(where=red), redemptions=f.count(where=red))
    g = per.group_by("fund_code").aggregate(
        shares_at_start=per.at_start.sum(), holders_at_start=per.count(where=per.at_start > 0),
        shares_added=per.added.sum(), redeemed_shares=per.redeemed.sum(),
        redeemed_amount=money(per.amount.sum().fill_null(0)),
        redeem_fees=money(per.fees.sum().fill_null(0)),
        redemptions=per.redemptions.sum(), redeemers=per.count(where=per.redeemed > 0))
    base = g.shares_at_start + g.shares_added
    g = g.filter(base > 0).mutate(
        redemption_ratio=g.redeemed_shares.cast("float64") / base.cast("float64"))
    info = funds.select("fund_code", "name", "fund_type", "risk_level", "manager_company")
    out = g.left_join(info, "fund_code").drop("fund_code_right")
    return out.order_by([ibis.desc("redeemed_amount"), ibis.desc("redemption_ratio"),
                         "fund_code"])


def redemption_holding_periods(fund_tx: ir.Table, funds: ir.Table, period: Period) -> ir.Table:
    """Question 3, one row per redemption in the period: its share-weighted mean holding days
    over the FIFO lots it consumed (``prehistory_shares``: shares from the opening balance,
    of unknown age and left out of the mean; null mean when all were)."""
    m = fifo_matches(fund_tx, period.end)
    m = m.filter(m.redeem_date >= period.start)
    known = m.lot_date.notnull()
    g = m.group_by(["redeem_txn_id", *KEY, "redeem_date", "redeem_shares", "redeem_amount"]
                   ).aggregate(
        aged=(m.matched_shares.cast("float64") * m.holding_days.cast("float64")).sum(where=known),
        known_shares=m.matched_shares.sum(where=known).fill_null(0),
        prehistory_shares=m.matched_shares.sum(where=~known).fill_null(0),
        oldest_lot=m.lot_date.min())
    g = g.mutate(holding_days=ibis.cases(
        (g.known_shares > 0, g.aged / g.known_shares.cast("float64")), else_=ibis.null("float64")))
    g = g.left_join(funds.select("fund_code", "fund_type"), "fund_code").drop("fund_code_right")
    return g.drop("aged").order_by(["redeem_date", "redeem_txn_id"])


def holding_period_summary(rows: pa.Table) -> pa.Table:
    """Median, quartiles and mean of ``holding_days`` over all redemptions and per fund type
    (quartiles by linear interpolation; redemptions of unknown age are counted apart)."""
    days = np.asarray(rows["holding_days"].to_numpy(zero_copy_only=False), dtype=float)
    kinds = np.asarray(rows["fund_type"].to_pylist(), dtype=object)
    out: dict[str, list[Any]] = {k: [] for k in ("fund_type", "redemptions", "unknown_age", "p25",
                                            "median", "p75", "mean")}
    for kind in ["all", *sorted({str(k) for k in kinds})]:
        sel = np.ones(len(days), bool) if kind == "all" else kinds == kind
        d = days[sel]
        ok = d[~np.isnan(d)]
        q = np.quantile(ok, [0.25, 0.5, 0.75]) if len(ok) else [None] * 3
        for k, v in zip(out, (kind, int(sel.sum()), int(np.isnan(d).sum()), *q,
                              float(ok.mean()) if len(ok) else None), strict=True):
            out[k].append(None if v is None else v if isinstance(v, str | int) else float(v))
    return pa.table(out)


# --- question 2: what redeemed holdings have in common ---------------------------------------

CATEGORICAL = ("fund_type", "risk_level", "manager_company", "c_level")
NUMERIC = ("nav_max_drawdown", "mgmt_fee_rate", "purchase_fee_rate", "redeem_fee_rate",
           "value_at_start", "return_at_start", "held_days_at_start", "past_redemptions",
           "tenure_days", "aum")


def exposed_holdings(fund_tx: ir.Table, funds: ir.Table, period: Period,
                     profile: ir.Table | None = None, lookback_days: int = 60,
                     history_days: int = 365) -> ir.Table:
    """One row per customer and fund held at the start of the period or bought in it, with
    ``redeemed`` (any shares redeemed in the period) and the features ``compare_redeemed``
    compares: the fund's (type, R-level, manager, fees, largest NAV drawdown in
    ``[start - lookback_days, end]``), the position's at the start (value, return on paid-in
    cost, share-weighted age), and the holder's (redemptions in the ``history_days`` before
    the start; with a ``profile`` snapshot, C-level, tenure and AUM).

    The position at the start uses the same opening balances as ``at_start`` (the ledger to
    the period's end), so a holding bought before the history and redeemed in the period has
    its value. ``prehistory_shares_at_start`` says how many of its shares are of unknown
    purchase date and cost; with any, its return and age are null (unknown), and
    ``compare_redeemed`` leaves it out of those two features (its ``n`` says how many stay).
    """
    f = _ledger(fund_tx, period.end)
    inside = f.txn_date >= period.start
    per = f.group_by(KEY).aggregate(
        at_start=f.signed.sum(where=~inside).fill_null(0) + f.opening.max(),
        added=f.signed.sum(where=inside & (f.is_redeem == 0)).fill_null(0),
        redeemed=f.count(where=inside & (f.is_redeem == 1)) > 0)
    per = per.filter(per.at_start + per.added > 0)
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
                   **cols)
    if profile is not None:
        p = profile.select("customer_id", "c_level", "tenure_days",
                           aum=profile.aum.cast("float64"))
        out = out.left_join(p, "customer_id").drop("customer_id_right")
    return out.order_by(KEY)


def categorical_effect(levels: Sequence[object], redeemed: np.ndarray
                       ) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """Per level: holdings, redeemed, rate and risk ratio (rate in the level / rate in all
    other levels); for the feature: Cramér's V and the chi-square p-value (no continuity
    correction; None when there are fewer than two levels or one outcome only)."""
    lv = np.array(["(空)" if v is None else str(v) for v in levels], dtype=object)
    rows = []
    names = sorted(set(lv))
    for name in names:
        inl = lv == name
        k, n = int(redeemed[inl].sum()), int(inl.sum())
        rest_n = len(lv) - n
        rest_rate = redeemed[~inl].mean() if rest_n else float("nan")
        rate = k / n
        rr = rate / rest_rate if rest_n and rest_rate > 0 else None
        rows.append({"level": name, "n": n, "redeemed": k, "rate": rate,
                     "risk_ratio": None if rr is None else float(rr)})
    table = np.array([[r["redeemed"], r["n"] - r["redeemed"]] for r in rows])
    if len(names) < 2 or (table.sum(axis=0) == 0).any():
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


# --- question 4: which holders need reassurance ----------------------------------------------

REASONS = {  # code: Chinese label
    "fund_drawdown": "持有基金净值回撤",
    "resembles_redeemers": "在本轮或往期赎回高峰中赎回过",
    "recent_loss": "近期亏损",
    "chat_signal": "聊天中流露赎回意向或不满",
}


@dataclass(frozen=True)
class ReassuranceRules:
    """Thresholds and points of the reassurance score (a tenant may pass its own)."""

    drawdown: float = 0.05  # the fund's NAV this far below its high of the lookback
    lookback_days: int = 60
    loss: float = 0.05  # a position this far below its paid-in cost
    history_days: int = 730  # redemption waves looked back at
    wave_window_days: int = 10
    wave_factor: float = 3.0  # × the median count of a window
    wave_minimum: int = 10  # redemptions in a window, at least
    chat_tags: tuple[str, ...] = ("intent_redeem", "complaint", "loss_anxiety")
    loss_tags: tuple[str, ...] = ("recent_loss",)
    points: dict[str, int] = field(default_factory=lambda: {
        "fund_drawdown": 1, "resembles_redeemers": 2, "recent_loss": 1, "chat_signal": 2})


def daily_redemptions(fund_tx: ir.Table, start: date, end: date) -> ir.Table:
    """Redemptions per confirmation date in ``[start, end]``: ``txn_date, redemptions, amount``."""
    r = fund_tx.filter((fund_tx.txn_type == "redeem") & fund_tx.txn_date.between(start, end))
    return r.group_by("txn_date").aggregate(redemptions=r.count(),
                                            amount=money(r.amount.sum())).order_by("txn_date")


def redemption_waves(daily: pa.Table, start: date, end: date, window_days: int = 10,
                     factor: float = 3.0, minimum: int = 10) -> pa.Table:
    """Redemption waves (赎回高峰) in ``[start, end]`` from ``daily_redemptions``.

    A day is *high* when the redemptions of the ``window_days`` calendar days ending on it are
    at least ``max(factor × median window, minimum)`` — the median over every full window of
    the range, so the baseline is the tenant's own. A wave runs from ``window_days - 1`` days before its
    first high day to its last, and waves that touch are one; ``baseline`` is the median.
    """
    n = (end - start).days + 1
    counts = np.zeros(n)
    for d, k in zip(daily["txn_date"].to_pylist(), daily["redemptions"].to_pylist(), strict=True):
        if start <= d <= end:
            counts[(d - start).days] += k
    window = np.convolve(counts, np.ones(window_days))[:n]
    full = window[window_days - 1:] if n >= window_days else window
    baseline = float(np.median(full)) if n else 0.0
    high = window >= max(factor * baseline, minimum)
    spans: list[list[int]] = []  # [first, last] day offsets; touching or overlapping merge
    for i in np.flatnonzero(high):
        first = max(0, int(i) - window_days + 1)
        if spans and first <= spans[-1][1] + 1:
            spans[-1][1] = int(i)
        else:
            spans.append([first, int(i)])
    rows = [{"wave_start": start + timedelta(days=lo), "wave_end": start + timedelta(days=hi),
             "redemptions": int(counts[lo:hi + 1].sum()),
             "peak_window": int(window[lo:hi + 1].max()), "baseline": baseline}
            for lo, hi in spans]
    schema = pa.schema([("wave_start", pa.date32()), ("wave_end", pa.date32()),
                        ("redemptions", pa.int64()), ("peak_window", pa.int64()),
                        ("baseline", pa.float64())])
    return pa.Table.from_pylist(rows, schema=schema)




def reassurance_list(positions: pa.Table, redemptions: pa.Table, waves: pa.Table,
                     tags: pa.Table | None = None, rules: ReassuranceRules | None = None,
                     tag_names: dict[str, str] | None = None,
                     current_from: date | None = None) -> pa.Table:
    """Question 4: current holders ranked by a transparent score, each with its reasons.

    ``positions`` from ``holder_positions``; ``redemptions`` the customers' redemptions
    (``customer_id, fund_code, txn_date``) of the history window and ``waves`` its
    ``redemption_waves``; ``tags`` the tags held (``customer_id, tag_id``). Each reason a
    customer has earns its points once:

    - ``fund_drawdown``: holds a fund at least ``drawdown`` below its recent high;
    - ``resembles_redeemers``: redeemed during a redemption wave of the history window — the
      behaviour of the customers who redeem after a fall. The window runs to the list's date,
      so the current wave counts too: a holder who already redeemed part of their funds in
      this wave and still holds others is the likeliest to redeem the rest. A wave ending on
      or after ``current_from`` (the analysed period's start) is the current one
      (``本轮赎回高峰``, ``current_wave`` in the evidence); earlier ones are ``往期`` (without
      ``current_from``, neither is said and ``current_wave`` is null);
    - ``recent_loss``: a fund position at least ``loss`` below its paid-in cost, or a loss tag
      (a position holding shares from before the history has no known cost: not judged);
    - ``chat_signal``: holds a chat tag (redemption intent, complaint, loss anxiety).

    Ranked by score, then by the number of pieces of evidence, fund value and customer id;
    customers with no reason are left out.
    """
    rules = rules or ReassuranceRules()
    names = tag_names or {}
    found: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]] = {}
    info: dict[str, dict[str, Any]] = {}

    def add(cid: str, code: str, text: str, detail: dict[str, Any]) -> None:
        found.setdefault(cid, {}).setdefault(code, []).append((text, detail))

    for p in positions.to_pylist():
        c = info.setdefault(p["customer_id"], {"advisor_id": p["advisor_id"], "value": 0,
                                               "funds": 0})
        c["value"] += p["value"] or 0
        c["funds"] += 1
        fund = f"{p['fund_code']} {p['name'] or ''}".strip()
        if p["drawdown"] is not None and p["drawdown"] >= rules.drawdown:
            add(p["customer_id"], "fund_drawdown", f"{fund} 净值较{rules.lookback_days}日高点回撤"
                f"{pct(p['drawdown'])}", {"fund_code": p["fund_code"],
                                          "drawdown": round(p["drawdown"], 4)})
        cost = float(p["cost"] or 0)
        if cost > 0 and float(p["value"] or 0) <= cost * (1 - rules.loss):
            ret = float(p["value"]) / cost - 1
            add(p["customer_id"], "recent_loss", f"{fund} 浮亏{pct(-ret)}",
                {"fund_code": p["fund_code"], "return": round(ret, 4)})
    spans = list(zip(waves["wave_start"].to_pylist(), waves["wave_end"].to_pylist(), strict=True))
    for r in redemptions.to_pylist():
        wave = next(((a, b) for a, b in spans if a <= r["txn_date"] <= b), None)
        if wave and r["customer_id"] in info:
            current = None if current_from is None else wave[1] >= current_from
            which = {True: "本轮", False: "往期", None: ""}[current]
            add(r["customer_id"], "resembles_redeemers",
                f"{r['txn_date']} 赎回 {r['fund_code']}（{which}赎回高峰 {wave[0]}～{wave[1]}）",
                {"fund_code": r["fund_code"], "redeem_date": str(r["txn_date"]),
                 "wave": [str(wave[0]), str(wave[1])], "current_wave": current})
    for t in (tags.to_pylist() if tags is not None else []):
        code = ("chat_signal" if t["tag_id"] in rules.chat_tags else
                "recent_loss" if t["tag_id"] in rules.loss_tags else None)
        if code and t["customer_id"] in info:
            add(t["customer_id"], code, f"标签「{names.get(t['tag_id'], t['tag_id'])}」",
                {"tag_id": t["tag_id"]})
    rows = []
    for cid, reasons in found.items():
        codes = [c for c in REASONS if c in reasons]
        items = [{"code": c, "points": rules.points.get(c, 0), "label": REASONS[c],
                  "evidence": [d for _, d in reasons[c]]} for c in codes]
        text = "；".join(f"{REASONS[c]}：{'、'.join(t for t, _ in reasons[c][:3])}"
                        + ("等" if len(reasons[c]) > 3 else "") for c in codes)
        rows.append({"customer_id": cid, "advisor_id": info[cid]["advisor_id"],
                     "score": sum(rules.points.get(c, 0) for c in codes), "reason_codes": ",".join(codes),
                     "evidence_count": sum(len(reasons[c]) for c in codes), "reasons": text,
                     "reasons_json": json.dumps(items, ensure_ascii=False, sort_keys=True),
                     "fund_value": info[cid]["value"], "funds_held": info[cid]["funds"]})
    rows.sort(key=lambda r: (-r["score"], -r["evidence_count"], -r["fund_value"],
                             r["customer_id"]))
    for i, r in enumerate(rows):
        r["rank"] = i + 1
    schema = pa.schema([("rank", pa.int64()), ("customer_id", pa.string()),
                        ("advisor_id", pa.string()), ("score", pa.int64()),
                        ("reason_codes", pa.string()), ("evidence_count", pa.int64()),
                        ("reasons", pa.string()), ("reasons_json", pa.string()),
                        ("fund_value", pa.decimal128(18, 2)), ("funds_held", pa.int64())])
    return pa.Table.from_pylist(rows, schema=schema)
