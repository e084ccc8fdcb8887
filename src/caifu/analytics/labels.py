"""What the churn and propensity models predict: who is eligible at a cutoff, and the outcome
in the window after it.

Every target looks at one customer at a cutoff date ``c`` (the profile's ``as_of``) and asks
what happens in the ``horizon`` days ``c + 1 … c + horizon``. Features are computed as of ``c``
(``pipelines.profile``); nothing here is ever used as a feature, so the only thing that
separates knowledge from outcome is the date, and ``label_window`` is where it is decided.

| target | eligible at the cutoff | positive when, in the window |
|---|---|---|
| ``chinext_90d`` | account open by ``c``, not closed, no 创业板 permission yet | the permission is opened |
| ``level2_90d`` | account open, not closed, no Level-2 subscription running on ``c`` | a subscription starts |
| ``fund_purchase_90d`` | account open, not closed | a fund subscription or purchase is confirmed |
| ``churn_90d`` | account open, not closed, traded in the 90 days to ``c`` | no trade, or assets transferred out (出金 by transfer-out), or the account is closed |

A customer active at the cutoff who simply stops trading for a whole quarter counts as
churned: for a broker a silent account earns nothing, whether or not the assets stay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from caifu.pipelines.profile import ProfileInputs, local_date


@dataclass(frozen=True)
class Target:
    name: str
    title: str  # what an operations analyst calls it
    horizon_days: int
    heuristic: str  # the simple rule a team would use without a model (a profile feature)
    heuristic_sign: int  # +1: a higher feature value means more likely; -1: less likely


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("chinext_90d", "90天内开通创业板", 90, "trades_90d", +1),
    Target("level2_90d", "90天内订阅 Level-2", 90, "trades_30d", +1),
    Target("fund_purchase_90d", "90天内申购基金", 90, "fund_value", +1),
    Target("churn_90d", "90天内流失", 90, "days_since_last_trade", +1),
)}


@dataclass(frozen=True)
class LabelWindow:
    cutoff: dt.date
    horizon_days: int

    @property
    def first(self) -> dt.date:
        return self.cutoff + dt.timedelta(days=1)

    @property
    def last(self) -> dt.date:
        return self.cutoff + dt.timedelta(days=self.horizon_days)


def label_window(cutoff: dt.date, horizon_days: int, data_as_of: dt.date) -> LabelWindow:
    """The outcome window after ``cutoff``; it must lie wholly within the data."""
    w = LabelWindow(cutoff, horizon_days)
    if w.last > data_as_of:
        raise ValueError(f"the label window {w.first}…{w.last} ends after the newest data "
                         f"({data_as_of}): the outcome is not known yet")
    return w


def _open_at(inputs: ProfileInputs, cutoff: dt.date) -> ir.Table:
    c = inputs.customers
    return c.filter((c.opened_on <= cutoff) & (c.closed_on.isnull() | (c.closed_on > cutoff))
                    ).select("customer_id", "closed_on")


def _any(t: ir.Table, condition: ir.BooleanValue, name: str) -> ir.Table:
    return t.group_by("customer_id").aggregate(**{name: condition.cast("int64").max() > 0})


def labels(inputs: ProfileInputs, target: str, w: LabelWindow, utc_offset_hours: int = 8
           ) -> ir.Table:
    """``customer_id, label`` for the customers eligible at ``w.cutoff``."""
    base = _open_at(inputs, w.cutoff)
    a = inputs.accounts
    if target == "chinext_90d":
        had = _any(a, a.chinext_opened_on.notnull() & (a.chinext_opened_on <= w.cutoff), "had")
        got = _any(a, a.chinext_opened_on.between(w.first, w.last), "got")
        return _eligible_without(base, had).left_join(got, "customer_id").select(
            "customer_id", label=ibis.coalesce(ibis._.got, False))
    if target == "level2_90d":
        running = (a.level2_since.notnull() & (a.level2_since <= w.cutoff)
                   & (a.level2_until.isnull() | (a.level2_until >= w.cutoff)))
        had = _any(a, running, "had")
        got = _any(a, a.level2_since.between(w.first, w.last), "got")
        return _eligible_without(base, had).left_join(got, "customer_id").select(
            "customer_id", label=ibis.coalesce(ibis._.got, False))
    if target == "fund_purchase_90d":
        f = inputs.fund_transactions
        if f is None:
            return base.select("customer_id", label=ibis.literal(False))
        bought = _any(f.filter(f.txn_type.isin(["subscribe", "purchase"])),
                      f.txn_date.between(w.first, w.last), "got")
        return base.left_join(bought, "customer_id").select(
            "customer_id", label=ibis.coalesce(ibis._.got, False))
    if target == "churn_90d":
        return _churn(inputs, base, w, utc_offset_hours)
    raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")


def _eligible_without(base: ir.Table, had: ir.Table) -> ir.Table:
    joined = base.left_join(had, "customer_id")
    return joined.filter(~ibis.coalesce(joined.had, False)).select("customer_id")


def _churn(inputs: ProfileInputs, base: ir.Table, w: LabelWindow, offset: int) -> ir.Table:
    t = inputs.trades
    if t is None:
        return base.filter(ibis.literal(False)).select("customer_id", label=ibis.literal(True))
    lookback = w.cutoff - dt.timedelta(days=89)
    active = t.filter(t.trade_date.between(lookback, w.cutoff)).select("customer_id").distinct()
    traded_after = t.filter(t.trade_date.between(w.first, w.last)).select(
        "customer_id", traded=ibis.literal(True)).distinct()
    parts = base.join(active, "customer_id").left_join(traded_after, "customer_id")
    parts = parts.select("customer_id", "closed_on", traded=ibis.coalesce(parts.traded, False))
    cash = inputs.cash_flows
    if cash is not None:
        day = local_date(cash.flow_time, offset)
        moved = cash.filter((cash.method == "transfer_out") & day.between(w.first, w.last))
        moved = moved.select("customer_id", moved_out=ibis.literal(True)).distinct()
        parts = parts.left_join(moved, "customer_id")
        moved_out = ibis.coalesce(parts.moved_out, False)
    else:
        moved_out = ibis.literal(False)
    closed = parts.closed_on.notnull() & (parts.closed_on <= w.last)
    return parts.select("customer_id", label=(~parts.traded) | moved_out | closed)
