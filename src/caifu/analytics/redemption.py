"""Fund-redemption analysis, questions 1 and 3 of the four operations ask after a market fall.

1. ``fund_redemptions`` — which funds had the highest redemption amount and ratio in a period;
3. ``redemption_holding_periods`` + ``holding_period_summary`` — how long redeemed shares
   had been held (median, quartiles, by fund type).

Question 2 (what redeemed holdings have in common, with effect sizes) is
``analytics/redemption_effects``; question 4 (which current holders need reassurance) is
``analytics/reassurance``. The share ledger they all read — lots, FIFO matching, NAVs,
positions — is ``pipelines/fund_ledger``; ``docs/fund-redemption.md`` explains the
definitions for operations.

Ibis expressions take the broker's tables and return tables (DuckDB or Spark); summaries are
numpy over the small Arrow results. Nothing here opens a connection.

- A period (``Period``) is ``[start, end]`` in business (confirmation) dates, both inclusive.
- Redemption ratio = shares redeemed in the period / (shares held at the start + shares added
  in the period). Shares, not yuan: a fall lowers a holding's value but not its shares, so the
  ratio measures behaviour, not the market; it cannot exceed 1. Shares held at the start
  include the ledger's opening balance (holdings older than the history).
- A redemption's holding period is the share-weighted mean age of the FIFO lots it consumed
  (the registrar's rule for redemption fees); shares from the opening balance have no known
  age and are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from caifu.pipelines.amounts import money
from caifu.pipelines.fund_ledger import KEY, _ledger, fifo_matches


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


def holding_flows(fund_tx: ir.Table, period: Period) -> ir.Table:
    """Per customer and fund in the ledger to the period's end: ``shares_at_start`` (with the
    opening balance), ``shares_added`` in the period, and its redemptions —
    ``redeemed_shares``, ``redeemed_amount``, ``redeem_fees`` (0 without any) and their
    number ``redemptions``. The rows questions 1 and 2 are made of."""
    f = _ledger(fund_tx, period.end)
    inside = f.txn_date >= period.start
    red = inside & (f.is_redeem == 1)
    return f.group_by(KEY).aggregate(
        shares_at_start=f.signed.sum(where=~inside).fill_null(0) + f.opening.max(),
        shares_added=f.signed.sum(where=inside & (f.is_redeem == 0)).fill_null(0),
        redeemed_shares=f.shares.sum(where=red).fill_null(0),
        redeemed_amount=money(f.amount.sum(where=red).fill_null(0)),
        redeem_fees=money(f.fee.sum(where=red).fill_null(0)), redemptions=f.count(where=red))


def fund_redemptions(fund_tx: ir.Table, funds: ir.Table, period: Period) -> ir.Table:
    """Question 1: per fund held or bought in the period, what was redeemed, ranked by amount.

    ``redemption_ratio`` = redeemed shares / (shares at the start + shares added in it).
    """
    per = holding_flows(fund_tx, period)
    g = per.group_by("fund_code").aggregate(
        shares_at_start=per.shares_at_start.sum(),
        holders_at_start=per.count(where=per.shares_at_start > 0),
        shares_added=per.shares_added.sum(), redeemed_shares=per.redeemed_shares.sum(),
        redeemed_amount=money(per.redeemed_amount.sum()),
        redeem_fees=money(per.redeem_fees.sum()),
        redemptions=per.redemptions.sum(), redeemers=per.count(where=per.redeemed_shares > 0))
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
