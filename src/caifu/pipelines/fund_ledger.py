"""The fund share ledger: NAVs from transactions, FIFO lots, positions on a date.

Shared by the fund-redemption analysis (``analytics/redemption``) and the customer cards
(``pipelines/cards``), so it lives in the pipelines layer below both. Definitions:

- The share ledger: subscriptions, purchases and reinvested dividends add shares, redemptions
  remove them. Shares redeemed beyond what the ledger ever added (holdings older than the
  history) are an *opening balance* per customer and fund: the smallest balance consistent with
  the ledger, held since an unknown date.
- FIFO lots (``fifo_matches``): redeemed shares consume the oldest shares first, as the fund
  registrar (登记机构) does when it computes holding periods for redemption fees. Each lot is a
  subscription, purchase or reinvested dividend; a lot and a redemption match where their
  intervals on the cumulative-shares line overlap. The opening balance is the oldest lot.
- NAVs are not a table of their own: ``nav_series`` takes each fund's NAV from its confirmed
  transactions of a date. A fund has a NAV only on dates somebody transacted in it.

Ibis expressions only: tables in, tables out, no connection.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from caifu.pipelines.amounts import money, no_money

LOT_TYPES = ("subscribe", "purchase", "dividend")


EXACT = "decimal(28, 6)"


KEY = ["customer_id", "fund_code"]


def nav_series(fund_tx: ir.Table) -> ir.Table:
    """One NAV per fund and date it was observed: ``fund_code, nav_date, nav, observations,
    conflicting`` (transactions of one fund and date disagreeing on the NAV: a data problem)."""
    g = fund_tx.group_by(["fund_code", "txn_date"]).aggregate(
        nav=fund_tx.nav.max(), low=fund_tx.nav.min(), observations=fund_tx.count())
    return g.select("fund_code", nav_date=g.txn_date, nav=g.nav, observations=g.observations,
                    conflicting=g.low != g.nav)


def nav_drawdowns(navs: ir.Table, start: date, end: date, lookback_days: int = 60) -> ir.Table:
    """Per fund over the NAVs observed in ``[start - lookback_days, end]``:

    ``peak_nav``, ``last_nav`` and ``last_nav_date`` (the newest observation), the largest
    peak-to-trough fall ``max_drawdown`` and ``current_drawdown = 1 - last_nav / peak_nav``.
    """
    w = navs.filter((navs.nav_date >= start - timedelta(days=lookback_days))
                    & (navs.nav_date <= end))
    peak = w.nav.max().over(ibis.cumulative_window(group_by="fund_code", order_by="nav_date"))
    w = w.mutate(dd=1 - w.nav.cast("float64") / peak.cast("float64"))
    g = w.group_by("fund_code").aggregate(
        peak_nav=w.nav.max(), last_nav=w.nav.argmax(w.nav_date),
        last_nav_date=w.nav_date.max(), max_drawdown=w.dd.max())
    return g.mutate(current_drawdown=1 - g.last_nav.cast("float64") / g.peak_nav.cast("float64"))


def latest_navs(navs: ir.Table, day: date) -> ir.Table:
    """Each fund's newest NAV on or before ``day``: ``fund_code, nav, nav_date``."""
    n = navs.filter(navs.nav_date <= day)
    return n.group_by("fund_code").aggregate(nav=n.nav.argmax(n.nav_date),
                                             nav_date=n.nav_date.max())


def _ledger(fund_tx: ir.Table, upto: date) -> ir.Table:
    """The rows to ``upto`` with signed shares, cumulative lot/redeemed shares and the
    opening balance of their customer and fund."""
    f = fund_tx.filter(fund_tx.txn_date <= upto)
    redeem = f.txn_type == "redeem"
    f = f.mutate(is_redeem=redeem.cast("int8"),
                 signed=ibis.cases((redeem, -f.shares), else_=f.shares).cast(EXACT))
    # same-day lots come before redemptions: a redemption never needs a later lot
    win = ibis.cumulative_window(group_by=KEY, order_by=["txn_date", "is_redeem", "txn_id"])
    f = f.mutate(balance=f.signed.sum().over(win))
    opening = f.group_by(KEY).aggregate(opening=ibis.greatest(-f.balance.min(), 0).cast(EXACT))
    return f.join(opening, KEY)


def fifo_matches(fund_tx: ir.Table, upto: date) -> ir.Table:
    """Every (redemption, lot) pair FIFO matches, with the shares they share.

    ``lot_txn_id``/``lot_date`` are null for the opening balance (held since before the
    history: ``holding_days`` unknown). Calendar days, redemption date − lot date.
    """
    f = _ledger(fund_tx, upto)
    order = ["txn_date", "txn_id"]
    lots = f.filter(f.is_redeem == 0)
    lots = lots.mutate(hi=lots.opening + lots.shares.cast(EXACT).sum().over(
        ibis.cumulative_window(group_by=KEY, order_by=order)))
    lots = lots.select(*KEY, lot_txn_id=lots.txn_id, lot_date=lots.txn_date,
                       lot_type=lots.txn_type, lot_lo=lots.hi - lots.shares.cast(EXACT),
                       lot_hi=lots.hi)
    reds = f.filter(f.is_redeem == 1)
    reds = reds.mutate(hi=reds.shares.cast(EXACT).sum().over(
        ibis.cumulative_window(group_by=KEY, order_by=order)))
    reds = reds.select(*KEY, "opening", redeem_txn_id=reds.txn_id, redeem_date=reds.txn_date,
                       redeem_shares=reds.shares, redeem_amount=reds.amount,
                       red_lo=reds.hi - reds.shares.cast(EXACT), red_hi=reds.hi)
    j = reds.join(lots, [reds.customer_id == lots.customer_id, reds.fund_code == lots.fund_code,
                         lots.lot_lo < reds.red_hi, reds.red_lo < lots.lot_hi])
    known = j.select(*KEY, "redeem_txn_id", "redeem_date", "redeem_shares", "redeem_amount",
                     "lot_txn_id", "lot_date", "lot_type",
                     matched_shares=ibis.least(j.lot_hi, j.red_hi) - ibis.greatest(j.lot_lo,
                                                                                   j.red_lo))
    old = reds.filter(reds.red_lo < reds.opening)
    opening = old.select(*KEY, "redeem_txn_id", "redeem_date", "redeem_shares", "redeem_amount",
                         lot_txn_id=ibis.null("string"), lot_date=ibis.null("date"),
                         lot_type=ibis.literal("opening"),
                         matched_shares=ibis.least(old.opening, old.red_hi) - old.red_lo)
    m = known.union(opening)
    return m.mutate(holding_days=m.redeem_date.delta(m.lot_date, unit="day").cast("int64"))


def open_lots(fund_tx: ir.Table, day: date, ledger_end: date | None = None) -> ir.Table:
    """Lots still (partly) held at the end of ``day``, with their share of the paid-in cost.

    Cost is what the customer paid for the remaining shares (amount × remaining / shares);
    reinvested dividends cost nothing, so a position's P&L counts its dividends. The opening
    balances are inferred from the ledger to ``ledger_end`` (default ``day``): a later
    redemption can reveal shares held before the history, which earlier redemptions consumed
    first, leaving more of the known lots open on ``day``.
    """
    f = fund_tx.filter((fund_tx.txn_date <= day) & fund_tx.txn_type.isin(LOT_TYPES))
    used = fifo_matches(fund_tx, ledger_end or day).filter(
        lambda m: m.lot_txn_id.notnull() & (m.redeem_date <= day))
    used = used.group_by("lot_txn_id").aggregate(used=used.matched_shares.sum())
    j = f.left_join(used, f.txn_id == used.lot_txn_id)
    left = j.shares.cast(EXACT) - j.used.fill_null(0)
    paid = ibis.cases((j.txn_type == "dividend", 0), else_=j.amount).cast(EXACT)
    j = j.mutate(remaining=left, cost=paid * left / j.shares.cast(EXACT))
    return j.filter(j.remaining > 0).select(*KEY, lot_date=j.txn_date, lot_type=j.txn_type,
                                            remaining=j.remaining, cost=j.cost)


def _positions(fund_tx: ir.Table, navs: ir.Table, day: date,
               ledger_end: date | None = None) -> ir.Table:
    """Per customer and fund at the end of ``day``: shares (opening balance included, inferred
    from the ledger to ``ledger_end``, default ``day``) and their value at the latest NAV.

    ``prehistory_shares`` are the opening-balance shares still held: bought before the
    history, at an unknown date and cost. A position holding any has ``cost`` (paid-in cost of
    the FIFO lots still held) and ``held_days`` (their share-weighted age) null — unknown,
    not the figures of its known lots, which would make an old position look young and its
    return be value of every share over the cost of some.
    """
    f = _ledger(fund_tx, ledger_end or day)
    # over every row to ledger_end: a holding whose first row is after ``day`` (a redemption
    # of shares from before the history) was held on ``day``
    held = f.group_by(KEY).aggregate(
        shares=f.signed.sum(where=f.txn_date <= day).fill_null(0) + f.opening.max())
    held = held.filter(held.shares > 0)
    lots = open_lots(fund_tx, day, ledger_end)
    lots = lots.group_by(KEY).aggregate(
        cost=lots.cost.sum(), lot_shares=lots.remaining.sum(),
        age=(lots.remaining.cast("float64")
             * ibis.date(day).delta(lots.lot_date, unit="day").cast("float64")).sum())
    nav = latest_navs(navs, day)
    j = held.left_join(lots, KEY).left_join(nav, "fund_code")
    value = (j.shares * j.nav.cast(EXACT)).round(2)
    prehistory = j.shares - j.lot_shares.fill_null(0)
    known = prehistory <= 0
    return j.select(*KEY, shares=j.shares, value=money(value), prehistory_shares=prehistory,
                    cost=ibis.cases((known, money(j.cost)), else_=no_money()),
                    held_days=ibis.cases((known, j.age / j.lot_shares.cast("float64")),
                                         else_=ibis.null("float64")))


def holder_positions(fund_tx: ir.Table, funds: ir.Table, customers: ir.Table, as_of: date,
                     lookback_days: int = 60) -> ir.Table:
    """Every fund position held at the end of ``as_of``: value, paid-in cost, the fund's
    current drawdown from its high in ``[as_of - lookback_days, as_of]`` and the holder's
    advisor."""
    navs = nav_series(fund_tx)
    pos = _positions(fund_tx, navs, as_of)
    dd = nav_drawdowns(navs, as_of, as_of, lookback_days).select(
        "fund_code", drawdown="current_drawdown")
    j = (pos.left_join(funds.select("fund_code", "name", "fund_type"), "fund_code")
         .drop("fund_code_right")
         .left_join(dd, "fund_code").drop("fund_code_right")
         .left_join(customers.select("customer_id", "advisor_id"), "customer_id")
         .drop("customer_id_right"))
    return j.order_by(KEY)

