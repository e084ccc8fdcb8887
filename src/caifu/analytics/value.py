"""Customer value and the efficiency formula: efficiency = CLV − (acquisition + retention cost).

docs/customer-value.md explains the definitions to operations; in short, as of a date T:

- **Transaction log** (``revenue_log``): one row per customer-day with broker revenue > 0 —
  trades (fee less the estimated exchange/regulatory fees, transfer fee and stamp duty, times
  the commission share) and fund subscriptions/purchases (fee times the distributor's share).
- **CLV** (``estimate_clv``): BG/NBD + Gamma-Gamma (``analytics.clv``) fitted on every customer
  opened by T, calibration end T, discounted over the horizon — the lifetime view (ten years
  by default) and the payback view (the next year). A customer's clock starts at
  account opening (or the start of the history, for older accounts): opening is the
  acquisition, as the first purchase is in the literature, so a customer who never traded is
  still forecast — by the model, not by a guess. Accounts closed by T are worth 0.
- **Acquisition cost** (``customer_costs``): the channel's cost per customer, plus — for a
  customer converted by an acquisition campaign (goal in ``campaign_goals``) — that campaign's
  spend and touch costs divided equally among the customers it acquired. A customer converted
  by several is attributed to the first conversion only, so the costs add up to the spend.
- **Retention cost**: touch costs of the other campaigns in the window (T − window, T], their
  spend spread over the customers each one targeted (if configured), and a per-customer
  service cost for the days served in the window — a run rate that each view charges for
  the months the customer is expected to stay active over its horizon (``efficiency``).

Ibis expressions take the broker's tables and return tables; the CLV fit is numpy over the
small per-customer summary. Nothing here opens a connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.analytics import clv, clv_predict
from caifu.analytics.clv import BgNbdFit, GammaGammaFit
from caifu.analytics.clv_data import DAYS_PER_UNIT
from caifu.analytics.value_config import ClvConfig, RevenueConfig, ValueConfig
from caifu.pipelines.profile import local_date

NONE_GROUP = "(none)"
ROLLUPS = {"channel": "channel", "campaign": "acquisition_campaign_id",
           "advisor": "advisor_id", "branch": "branch_id", "cohort": "cohort"}
COST_COLUMNS = ("acquisition_channel_cost", "acquisition_campaign_cost", "retention_touch_cost",
                "retention_campaign_cost", "retention_service_cost", "revenue_past")
MONEY = pa.decimal128(18, 2)


def window_start(as_of: dt.date, months: int) -> dt.date:
    """The first day of the ``months`` months ending on ``as_of`` (a 29 Feb start clamps)."""
    month = as_of.year * 12 + as_of.month - 1 - months
    year, m = divmod(month, 12)
    day = min(as_of.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
                          31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m])
    return dt.date(year, m + 1, day) + dt.timedelta(days=1)


# --- the transaction log ------------------------------------------------------------------------


def trade_revenue(trades: ir.Table, securities: ir.Table, config: RevenueConfig) -> ir.Table:
    """Per trade: ``customer_id, date, revenue`` — the broker's net commission, estimated.

    Levies come off the fee at the configured rates; a security missing from the master
    counts as a stock (the larger deduction). Never below 0: a fee smaller than the estimated
    levies (a waived commission) earned nothing.
    """
    sec = securities.select(code=securities.security_code, security_type=securities.security_type)
    t = trades.left_join(sec, trades.security_code == sec.code)
    amount, fee = t.amount.cast("float64"), t.fee.cast("float64")
    stamp: ir.Value = ibis.literal(0.0)
    if config.stamp_duty:
        stamp = ibis.cases(*[(t.trade_date >= ibis.date(p.since), p.rate)
                             for p in reversed(config.stamp_duty)], else_=0.0)
    stock = t.security_type.fill_null("stock") == "stock"
    stock_levy = config.transfer_fee_rate + ibis.ifelse(t.side == "S", stamp, 0.0)
    levy = amount * config.exchange_fee_rate + ibis.ifelse(stock, amount * stock_levy, 0.0)
    net = ibis.greatest(fee - levy, 0.0) * config.commission_share
    return t.select(customer_id=t.customer_id, date=t.trade_date, revenue=net)


def fund_revenue(fund_transactions: ir.Table, config: RevenueConfig) -> ir.Table:
    """Per subscription or purchase: its fee times the distributor's share. Redemption fees
    mostly go to the fund's assets, and a redemption is not a transaction (docs/clv.md)."""
    f = fund_transactions.filter(fund_transactions.txn_type.isin(["subscribe", "purchase"]))
    return f.select(customer_id=f.customer_id, date=f.txn_date,
                    revenue=f.fee.cast("float64") * config.fund_fee_share)


def revenue_log(trades: ir.Table | None, fund_transactions: ir.Table | None,
                securities: ir.Table, config: RevenueConfig, as_of: dt.date,
                start: dt.date | None = None) -> ir.Table | None:
    """One row per customer-day with revenue > 0 in [start, as_of]: ``customer_id, date,
    revenue`` (float yuan). None when there are no trades or fund transactions at all."""
    parts = []
    if trades is not None:
        parts.append(trade_revenue(trades, securities, config))
    if fund_transactions is not None:
        parts.append(fund_revenue(fund_transactions, config))
    if not parts:
        return None
    u = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
    keep = u.date <= ibis.date(as_of)
    if start is not None:
        keep &= u.date >= ibis.date(start)
    u = u.filter(keep)
    days = u.group_by(["customer_id", "date"]).aggregate(revenue=u.revenue.sum())
    return days.filter(days.revenue > 0)


# --- customers and costs -------------------------------------------------------------------------


def customer_base(customers: ir.Table, as_of: dt.date, cohort: str = "quarter") -> ir.Table:
    """Customers opened by ``as_of`` with their groupings: ``customer_id, channel, branch_id,
    advisor_id, opened_on, closed_on`` (only if closed by as_of) ``, cohort``."""
    c = customers.filter(customers.opened_on <= ibis.date(as_of))
    year = c.opened_on.year().cast("string")
    if cohort == "month":
        label = year + "-" + c.opened_on.month().cast("string").lpad(2, "0")
    else:
        label = year + "Q" + c.opened_on.quarter().cast("string")
    closed = c.closed_on.notnull() & (c.closed_on <= ibis.date(as_of))
    return c.select("customer_id", "channel", "branch_id", "advisor_id", "opened_on",
                    closed_on=ibis.ifelse(closed, c.closed_on, ibis.null("date")),
                    cohort=label)


def _is_acquisition(campaigns: ir.Table, goals: list[str]) -> ir.BooleanValue:
    if not goals:
        return ibis.literal(False)
    return campaigns.goal.fill_null("").isin(goals)


def _touches_by(touches: ir.Table, as_of: dt.date, offset: int) -> ir.Table:
    day = local_date(touches.touched_at, offset)
    t = touches.mutate(day=day, cost=touches.cost.cast("float64").fill_null(0.0))
    return t.filter(t.day <= ibis.date(as_of))


def campaign_costs(base: ir.Table, campaigns: ir.Table, touches: ir.Table | None,
                   config: ValueConfig, as_of: dt.date, offset: int) -> ir.Table:
    """One row per campaign that counts as of ``as_of``: ``campaign_id, role`` (acquisition or
    retention) ``, spend, touch_cost, customers`` (acquired, or targeted) ``, per_customer``
    (the share each of them carries; null when nobody took it: spend left unattributed).

    Acquisition campaigns count whenever they started (acquisition cost is sunk for good);
    retention campaigns only if they started in the retention window, and carry their spend
    only if ``retention.campaign_spend`` is on (their touch costs are per touch, not here).
    """
    goals = list(config.acquisition.campaign_goals)
    start = window_start(as_of, config.retention.window_months)
    c = campaigns.mutate(role=ibis.ifelse(_is_acquisition(campaigns, goals), "acquisition",
                                          "retention"),
                         spend=campaigns.spend.cast("float64").fill_null(0.0))
    counted = (c.starts_on <= ibis.date(as_of)) & (
        (c.role == "acquisition") | (c.starts_on >= ibis.date(start)))
    c = c.filter(counted).select("campaign_id", "role", "spend")
    if not config.retention.campaign_spend:
        c = c.mutate(spend=ibis.ifelse(c.role == "retention", 0.0, c.spend))
    if touches is None:
        return c.mutate(touch_cost=0.0, customers=ibis.literal(0, "int64"),
                        per_customer=ibis.null("float64"))
    t = _touches_by(touches, as_of, offset)
    cost = t.group_by("campaign_id").aggregate(touch_cost=t.cost.sum())
    acquired = first_conversions(base, campaigns, touches, goals, as_of, offset)
    n_acq = acquired.group_by(cid=acquired.acquisition_campaign_id).aggregate(n_acq=ibis._.count())
    ids = base.select(kid=base.customer_id)
    known = t.inner_join(ids, t.customer_id == ids.kid)
    n_tgt = known.group_by(tgt_cid=known.campaign_id).aggregate(
        n_tgt=known.customer_id.nunique())
    cost = cost.rename(cost_cid="campaign_id")
    j = (c.left_join(cost, c.campaign_id == cost.cost_cid)
         .left_join(n_acq, c.campaign_id == n_acq.cid)
         .left_join(n_tgt, c.campaign_id == n_tgt.tgt_cid))
    # acquisition: spend and all touch costs over those acquired; retention: spend over those
    # targeted (its touch costs stay with the customer touched)
    n = ibis.ifelse(j.role == "acquisition", j.n_acq.fill_null(0), j.n_tgt.fill_null(0))
    touch_cost = j.touch_cost.fill_null(0.0)
    shared = ibis.ifelse(j.role == "acquisition", j.spend + touch_cost, j.spend)
    return j.select("campaign_id", "role", "spend", touch_cost=touch_cost,
                    customers=n.cast("int64"),
                    per_customer=ibis.ifelse(n > 0, shared / n, ibis.null("float64")))


def first_conversions(base: ir.Table, campaigns: ir.Table, touches: ir.Table, goals: list[str],
                      as_of: dt.date, offset: int) -> ir.Table:
    """``customer_id, acquisition_campaign_id``: each customer's first conversion (by time,
    then campaign id) in an acquisition campaign by ``as_of``."""
    acq = campaigns.filter(_is_acquisition(campaigns, goals)).select(acq_id="campaign_id")
    t = _touches_by(touches, as_of, offset)
    conv = t.filter(t.stage == "converted").inner_join(acq, t.campaign_id == acq.acq_id)
    ids = base.select(kid=base.customer_id)
    conv = conv.inner_join(ids, conv.customer_id == ids.kid)
    rank = ibis.row_number().over(group_by=conv.customer_id,
                                  order_by=[conv.touched_at, conv.campaign_id])
    ranked = conv.mutate(rank=rank)
    first = ranked.filter(ranked["rank"] == 0)
    return first.select("customer_id", acquisition_campaign_id=first.campaign_id)


def customer_costs(base: ir.Table, log: ir.Table | None, campaigns: ir.Table,
                   touches: ir.Table | None, config: ValueConfig, as_of: dt.date,
                   offset: int) -> ir.Table:
    """Per customer of ``base``: ``customer_id, acquisition_campaign_id`` and the float yuan
    columns of ``COST_COLUMNS`` (``revenue_past``: revenue in the retention window)."""
    start = window_start(as_of, config.retention.window_months)
    window_days = (as_of - start).days + 1
    costs = config.acquisition.channel_costs
    channel_cost = (ibis.cases(*[(base.channel == k, float(v)) for k, v in costs.items()],
                               else_=0.0) if costs else ibis.literal(0.0))
    served_from = ibis.greatest(base.opened_on, ibis.date(start))
    served_to = base.closed_on.fill_null(ibis.date(as_of))
    days = ibis.greatest(served_to.delta(served_from, unit="day") + 1, 0)
    r = config.retention
    per_year = r.annual_service_cost + ibis.ifelse(base.advisor_id.notnull(),
                                                   r.annual_advisor_cost, 0.0)
    service = per_year * (r.window_months / 12) * days.cast("float64") / window_days
    out = base.select("customer_id", acquisition_channel_cost=channel_cost,
                      retention_service_cost=service)

    if log is not None:
        recent = log.filter(log.date >= ibis.date(start))
        rev = recent.group_by(rid="customer_id").aggregate(revenue_past=recent.revenue.sum())
        out = out.left_join(rev, out.customer_id == rev.rid).drop("rid")
    else:
        out = out.mutate(revenue_past=ibis.null("float64"))
    if touches is None:
        return out.mutate(acquisition_campaign_id=ibis.null("string"),
                          acquisition_campaign_cost=0.0, retention_touch_cost=0.0,
                          retention_campaign_cost=0.0, revenue_past=out.revenue_past.fill_null(0.0))

    goals = list(config.acquisition.campaign_goals)
    per_campaign = campaign_costs(base, campaigns, touches, config, as_of, offset)
    first = first_conversions(base, campaigns, touches, goals, as_of, offset)
    shares_of = per_campaign.select(pid="campaign_id", share="per_customer")
    acq = first.inner_join(shares_of, first.acquisition_campaign_id == shares_of.pid)
    acq = acq.select(aid=acq.customer_id, acquisition_campaign_id=acq.acquisition_campaign_id,
                     acquisition_campaign_cost=acq.share.fill_null(0.0))

    # every touch in the window that is not an acquisition campaign's, whenever its campaign
    # started: a reminder sent this year costs this year
    t = _touches_by(touches, as_of, offset)
    acq_ids = campaigns.filter(_is_acquisition(campaigns, goals)).select(acq_id="campaign_id")
    recent = t.filter(t.day >= ibis.date(start))
    rt = recent.anti_join(acq_ids, recent.campaign_id == acq_ids.acq_id)
    touch = rt.group_by(tid="customer_id").aggregate(retention_touch_cost=rt.cost.sum())
    ret = per_campaign.filter(per_campaign.role == "retention")
    # spend shares: one per customer and retention campaign that targeted them
    targeted = t.select(t.customer_id, t.campaign_id).distinct()
    ret_shares = ret.select(scid="campaign_id", share="per_customer")
    shares = targeted.inner_join(ret_shares, targeted.campaign_id == ret_shares.scid)
    spend = shares.group_by(sid="customer_id").aggregate(
        retention_campaign_cost=shares.share.fill_null(0.0).sum())

    out = out.left_join(acq, out.customer_id == acq.aid).drop("aid")
    out = out.left_join(touch, out.customer_id == touch.tid).drop("tid")
    out = out.left_join(spend, out.customer_id == spend.sid).drop("sid")
    return out.mutate(**{name: out[name].fill_null(0.0) for name in (
        "acquisition_campaign_cost", "retention_touch_cost", "retention_campaign_cost",
        "revenue_past")})


# --- CLV per customer ---------------------------------------------------------------------------


@dataclass
class ClvEstimate:
    """Per customer (in ``customer_id`` order) the summary, forecasts and CLV, with the fits."""

    customer_id: np.ndarray
    frequency: np.ndarray  # repeat transaction days
    recency: np.ndarray  # time units, first to last transaction day
    T: np.ndarray  # time units, birth to as_of
    monetary_value: np.ndarray  # mean revenue of the repeat days
    p_alive: np.ndarray
    expected_transactions: np.ndarray  # over the payback horizon (the next year, by default)
    clv: np.ndarray  # the lifetime view: over ``horizon_months``
    estimated: bool = False  # the CLV column is a forecast (else zeros: no fit was possible)
    bgnbd: BgNbdFit | None = None
    gamma_gamma: GammaGammaFit | None = None
    notes: list[str] = field(default_factory=list)
    clv_payback: np.ndarray | None = None  # the payback view: over ``payback_months``
    # discounted months expected active over each horizon: what a run-rate retention cost
    # costs there (None: no fit, the window's cost stands as it is)
    active_months: np.ndarray | None = None
    active_months_payback: np.ndarray | None = None

    def payback_view(self) -> ClvEstimate:
        """The same customers with the payback view's CLV and active months in place."""
        return replace(self, clv=self.clv_payback if self.clv_payback is not None
                       else np.zeros(len(self.clv)), active_months=self.active_months_payback)


def estimate_clv(base: pa.Table, log: pa.Table | None, config: ClvConfig, as_of: dt.date,
                 history_start: dt.date | None) -> ClvEstimate:
    """CLV of every customer of ``base`` (``customer_id, opened_on, closed_on``) from the
    transaction log (``customer_id, date, revenue``).

    Each customer's birth is the later of account opening and ``history_start`` — an account
    older than the history starts with it, so years without data do not read as years without
    trading. The birth is a zero-revenue event the summary counts as the first day (its revenue
    is not repeat spend, by the literature's convention). A fit that does not converge is
    used as it stands and reported in ``notes``; one that cannot be made leaves CLV at 0.
    """
    ids = np.asarray(base["customer_id"].to_pylist(), dtype=object)
    opened = np.asarray(base["opened_on"].to_numpy(zero_copy_only=False), "datetime64[D]")
    birth = opened if history_start is None else np.maximum(opened, np.datetime64(history_start))
    birth = np.minimum(birth, np.datetime64(as_of))
    if log is not None and log.num_rows:  # customers opened after as-of are not in the base
        log = log.filter(pc.is_in(log["customer_id"], value_set=base["customer_id"]
                                  .combine_chunks()))
    events = pa.table({"customer_id": pa.array(ids, pa.string()),
                       "date": pa.array(birth, pa.date32()),
                       "amount": pa.array(np.zeros(len(ids)), pa.float64())})
    if log is not None and log.num_rows:
        events = pa.concat_tables([events, pa.table({
            "customer_id": log["customer_id"].cast(pa.string()),
            "date": log["date"].cast(pa.date32()),
            "amount": log["revenue"].cast(pa.float64())})])
    s = clv.summary_from_transactions(events, calibration_end=as_of, time_unit=config.time_unit)
    n = len(s)
    money = s.monetary_value if s.monetary_value is not None else np.zeros(n)
    out = ClvEstimate(s.customer_id, s.frequency, s.recency, s.T, money, np.ones(n),
                      np.zeros(n), np.zeros(n))
    try:
        out.bgnbd = clv.fit_bgnbd(s.frequency, s.recency, s.T, raise_on_failure=False)
    except clv.ClvInputError as exc:
        out.notes.append(f"CLV not estimated (BG/NBD): {exc}")
        return out
    try:
        out.gamma_gamma = clv.fit_gamma_gamma(s.frequency, money, raise_on_failure=False)
    except clv.ClvInputError as exc:
        out.notes.append(f"CLV not estimated (Gamma-Gamma): {exc}")
        return out
    for name, fit in (("BG/NBD", out.bgnbd), ("Gamma-Gamma", out.gamma_gamma)):
        if not fit.report.converged:
            out.notes.append(f"{name} fit did not converge ({fit.report.message}; log-likelihood "
                             f"{fit.report.log_likelihood:.6g}, gradient norm "
                             f"{fit.report.gradient_norm:.3g}): CLV uses its last estimate "
                             f"{fit.params}")
    bg, gg = out.bgnbd.params, out.gamma_gamma.params
    unit = config.time_unit
    horizon = config.payback_months * clv_predict.DAYS_PER_MONTH / DAYS_PER_UNIT[unit]
    out.p_alive = clv_predict.probability_alive(bg, s.frequency, s.recency, s.T)
    out.expected_transactions = clv_predict.expected_purchases(bg, horizon, s.frequency, s.recency, s.T)
    rate = config.monthly_discount_rate
    try:
        out.clv = clv_predict.customer_lifetime_value(bg, gg, s, months=config.horizon_months,
                                              monthly_discount_rate=rate)
        out.clv_payback = clv_predict.customer_lifetime_value(bg, gg, s, months=config.payback_months,
                                                      monthly_discount_rate=rate)
        out.active_months, out.active_months_payback = (
            clv_predict.expected_active_months(bg, s.frequency, s.recency, s.T, months=months,
                                       monthly_discount_rate=rate, time_unit=unit)
            for months in (config.horizon_months, config.payback_months))
        out.estimated = True
    except clv.ClvInputError as exc:
        out.notes.append(f"CLV not estimated: {exc}")
    return out
