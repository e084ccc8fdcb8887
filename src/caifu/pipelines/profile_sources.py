"""Profile features by source, as of a date: one function per table of the broker's
(trades, securities traded, positions, fund transactions, cash flows, logins, accounts,
suitability assessments, WeCom follows), each returning one row per customer with that
source's columns. ``pipelines/profile.profile_features`` joins them onto the customers and
finishes the derived features; the definitions are in its module docstring.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
from ibis import _

from caifu.pipelines.amounts import money as money
from caifu.pipelines.amounts import no_money
from caifu.pipelines.joins import left_join_customer

BOARDS = ("main", "chinext", "star", "bse")
FUND_TYPES = ("money", "bond", "hybrid", "equity", "index", "qdii", "fof")
RISK_LEVELS = ("R1", "R2", "R3", "R4", "R5")


def local_date(ts: ir.TimestampValue, utc_offset_hours: int) -> ir.DateValue:
    return (ts + ibis.interval(hours=utc_offset_hours)).date()


def days_between(later: date, earlier: ir.DateValue) -> ir.IntegerValue:
    return ibis.date(later).delta(earlier, unit="day").cast("int64")


def since(as_of: date, days: int) -> date:
    """First day of a window of ``days`` days ending at ``as_of`` inclusive."""
    return as_of - timedelta(days=days - 1)


def trade_features(trades: ir.Table, as_of: date) -> ir.Table:
    """Per customer: first/last trade and the windows, in one pass over the trades."""
    t = trades.select("customer_id", "trade_date", "trade_id", "amount", "fee")
    t = t.filter(t.trade_date <= as_of)
    aggs: dict[str, ir.Value] = {"first_trade_date": t.trade_date.min(),
                                 "last_trade_date": t.trade_date.max()}
    for w in (30, 90, 365):
        in_window = t.trade_date >= since(as_of, w)
        aggs[f"trades_{w}d"] = t.trade_id.count(where=in_window)
        aggs[f"trade_amount_{w}d"] = money(t.amount.sum(where=in_window))
    aggs["fees_365d"] = money(t.fee.sum(where=t.trade_date >= since(as_of, 365)))
    return t.group_by("customer_id").aggregate(**aggs)


def security_features(trades: ir.Table, securities: ir.Table, as_of: date) -> ir.Table:
    """Per customer, from one aggregate per customer and security: realised P&L, and which
    securities and boards were traded in 365 days (those whose last trade is in the window).
    """
    t = trades.select("customer_id", "security_code", "trade_date", "side", "quantity", "amount")
    t = t.filter(t.trade_date <= as_of)
    buy, sell = t.side == "B", t.side == "S"
    per = t.group_by(["customer_id", "security_code"]).aggregate(
        last_trade_date=t.trade_date.max(),
        buy_qty=t.quantity.sum(where=buy), buy_amt=t.amount.sum(where=buy),
        sell_qty=t.quantity.sum(where=sell), sell_amt=t.amount.sum(where=sell))
    matched = ibis.least(per.buy_qty, per.sell_qty).cast("float64")
    pnl = matched * (per.sell_amt.cast("float64") / per.sell_qty.cast("float64")
                     - per.buy_amt.cast("float64") / per.buy_qty.cast("float64"))
    # Each security's P&L is rounded half away from zero to whole fen by floor(), then summed
    # as integers: engines' round() differ on halves (DuckDB 1.005 → 1.00, Spark → 1.01) and
    # a float sum depends on the order engines add in; the real-time path must match a
    # rebuild, and Spark DuckDB, to the fen.
    raw = ibis.cases(((per.buy_qty > 0) & (per.sell_qty > 0), pnl), else_=0.0)
    fen = ((raw.abs() * 100 + 0.5).floor() * raw.sign()).cast("int64")
    board = securities.select("security_code", "board")
    per = per.mutate(fen=fen).left_join(board, "security_code")
    recent = per.last_trade_date >= since(as_of, 365)
    aggs: dict[str, ir.Value] = {
        "realised_fen": per.fen.sum(),
        "distinct_securities_365d": per.security_code.count(where=recent)}
    for b in BOARDS:
        aggs[f"traded_{b}_365d"] = per.security_code.count(where=recent & (per.board == b)) > 0
    total = per.group_by("customer_id").aggregate(**aggs)
    return total.mutate(realised_pnl=money(total.realised_fen.cast("float64") / 100)).drop(
        "realised_fen")


def _snapshot_dates(positions: ir.Table, as_of: date) -> ir.Table:
    """One row: the tenant's latest positions snapshot on or before as_of, 30 and 90 days ago."""
    d = positions.snapshot_date
    return positions.aggregate(
        d0=d.max(where=d <= as_of), d30=d.max(where=d <= as_of - timedelta(days=30)),
        d90=d.max(where=d <= as_of - timedelta(days=90)))


def position_features(positions: ir.Table, as_of: date, market: ir.Table | None) -> ir.Table:
    """Holdings at as_of (count, value, P&L, worst position) and the stock value 30 and 90
    days ago, in one pass over the three snapshots.

    ``market`` is the whole positions table when ``positions`` holds only some customers.
    """
    snaps = _snapshot_dates(market if market is not None else positions, as_of)
    p = positions.select("customer_id", "security_code", "snapshot_date", "market_value",
                         "cost").cross_join(snaps)
    p = p.filter((p.snapshot_date == p.d0) | (p.snapshot_date == p.d30)
                 | (p.snapshot_date == p.d90))
    now = p.snapshot_date == p.d0
    h = p.group_by(["customer_id", "security_code"]).aggregate(
        held=now.cast("int64").sum(), market_value=p.market_value.sum(where=now),
        cost=p.cost.sum(where=now),
        mv30=p.market_value.sum(where=p.snapshot_date == p.d30),
        mv90=p.market_value.sum(where=p.snapshot_date == p.d90))
    h = h.mutate(pnl=h.market_value - h.cost)
    ranked = h.filter(h.held > 0)
    ranked = ranked.mutate(rank=ibis.row_number().over(
        group_by=ranked.customer_id, order_by=[ranked.pnl, ranked.security_code]))
    worst = ranked.filter((ranked["rank"] == 0) & (ranked.pnl < 0)).select(
        "customer_id", worst_security_code=_.security_code, worst_security_pnl=money(_.pnl))
    totals = h.group_by("customer_id").aggregate(
        positions_count=h.security_code.count(where=h.held > 0),
        holdings_value=money(h.market_value.sum()), unrealised_pnl=money(h.pnl.sum()),
        stock_30d_ago=money(h.mv30.sum()), stock_90d_ago=money(h.mv90.sum()))
    return left_join_customer(totals, worst)


def _fund_navs(fund_tx: ir.Table, as_of: date) -> ir.Table:
    """Each fund's NAV on its latest transaction day on or before as_of, 30 and 90 days ago
    (the larger NAV if a day has two, as when a NAV is corrected)."""
    m = fund_tx.filter(fund_tx.txn_date <= as_of)
    daily = m.group_by(["fund_code", "txn_date"]).aggregate(nav=m.nav.max())
    d = daily.txn_date
    return daily.group_by("fund_code").aggregate(
        nav0=daily.nav.argmax(d),
        nav30=daily.nav.argmax(d, where=d <= as_of - timedelta(days=30)),
        nav90=daily.nav.argmax(d, where=d <= as_of - timedelta(days=90)))


def fund_features(fund_tx: ir.Table, funds: ir.Table, as_of: date,
                   market: ir.Table | None) -> ir.Table:
    """Fund holdings valued at as_of, 30 and 90 days ago, and the 365-day flows, in one pass
    over the ledger.

    NAVs come from every customer's transactions (``market``, when ``fund_tx`` holds only
    some customers).
    """
    f = fund_tx.select("customer_id", "fund_code", "txn_date", "txn_type", "shares", "amount")
    f = f.filter(f.txn_date <= as_of)
    signed = f.shares * ibis.cases((f.txn_type == "redeem", -1), else_=1)
    recent = f.txn_date >= since(as_of, 365)
    per = f.group_by(["customer_id", "fund_code"]).aggregate(
        held0=signed.sum(), held30=signed.sum(where=f.txn_date <= as_of - timedelta(days=30)),
        held90=signed.sum(where=f.txn_date <= as_of - timedelta(days=90)),
        purchase=f.amount.sum(where=recent & f.txn_type.isin(["subscribe", "purchase"])),
        redeem=f.amount.sum(where=recent & (f.txn_type == "redeem")))
    navs = _fund_navs(market if market is not None else fund_tx, as_of)
    listed = funds.select("fund_code", "fund_type", "risk_level", listed=ibis.literal(True))
    v = per.join(navs, "fund_code").left_join(listed, "fund_code")

    def value(shares: ir.NumericValue, nav: ir.NumericValue) -> ir.Value:
        # one decimal type for both factors: Ibis has no precedence between decimal widths
        exact = "decimal(28, 6)"
        return ibis.cases((shares > 0, money((shares.cast(exact) * nav.cast(exact)).round(2))),
                          else_=no_money())

    v = v.mutate(v0=value(v.held0, v.nav0), v30=value(v.held30, v.nav30),
                 v90=value(v.held90, v.nav90))
    aggs: dict[str, ir.Value] = {"fund_value": money(v.v0.sum(where=v.listed.notnull()))}
    for t in FUND_TYPES:
        aggs[f"fund_value_{t}"] = money(v.v0.sum(where=v.fund_type == t))
    for r in RISK_LEVELS:
        aggs[f"fund_value_{r.lower()}"] = money(v.v0.sum(where=v.risk_level == r))
    aggs["fund_30d_ago"] = money(v.v30.sum())
    aggs["fund_90d_ago"] = money(v.v90.sum())
    aggs["fund_purchase_365d"] = money(v.purchase.sum())
    aggs["fund_redeem_365d"] = money(v.redeem.sum())
    return v.group_by("customer_id").aggregate(**aggs)


def _local_day_start(day: date, utc_offset_hours: int) -> ir.TimestampValue:
    """The naive-UTC instant at which local ``day`` begins: ``local_date(ts) >= day`` is
    ``ts >= _local_day_start(day)``, a bound engines can prune stored files with."""
    start = datetime.combine(day, time()) - timedelta(hours=utc_offset_hours)
    return ibis.timestamp(start)


def cash_features(cash: ir.Table, as_of: date, offset: int) -> ir.Table:
    c = cash.filter(cash.flow_time < _local_day_start(as_of + timedelta(days=1), offset))
    signed = ibis.cases((c.direction == "in", c.amount), else_=-c.amount)
    aggs: dict[str, ir.Value] = {}
    for w in (30, 90, 365):
        in_window = c.flow_time >= _local_day_start(since(as_of, w), offset)
        aggs[f"net_inflow_{w}d"] = money(signed.sum(where=in_window))
    last30 = c.flow_time >= _local_day_start(since(as_of, 30), offset)
    aggs["deposits_30d"] = money(c.amount.sum(where=last30 & (c.direction == "in")))
    aggs["withdrawals_30d"] = money(c.amount.sum(where=last30 & (c.direction == "out")))
    aggs["last_deposit_at"] = c.flow_time.max(where=c.direction == "in")
    out = c.group_by("customer_id").aggregate(**aggs)
    return out.mutate(last_deposit_date=local_date(out.last_deposit_at, offset)).drop(
        "last_deposit_at")


def login_features(events: ir.Table, trades: ir.Table | None, as_of: date,
                    offset: int) -> ir.Table:
    end = _local_day_start(as_of + timedelta(days=1), offset)
    e = events.filter((events.event_type == "login") & (events.event_time < end))
    last = e.group_by("customer_id").aggregate(last_login_at=e.event_time.max())
    d = e.filter(e.event_time >= _local_day_start(since(as_of, 30), offset))
    days = d.select("customer_id", day=local_date(d.event_time, offset)).distinct()
    if trades is not None:
        traded = trades.filter((trades.trade_date >= since(as_of, 30))
                               & (trades.trade_date <= as_of))
        traded = traded.select("customer_id", day=traded.trade_date).distinct().mutate(
            traded=ibis.literal(True))
        days = days.left_join(traded, ["customer_id", "day"]).select(
            "customer_id", "day", "traded")
        idle = days.traded.isnull()
    else:
        idle = ibis.literal(True)
    counts = days.group_by("customer_id").aggregate(
        login_days_30d=days.day.count(),
        login_days_without_trade_30d=days.day.count(where=idle))
    return left_join_customer(last, counts)


def account_features(accounts: ir.Table, as_of: date) -> ir.Table:
    a = accounts

    def opened(col: str) -> ir.BooleanValue:
        return (a[col].notnull() & (a[col] <= as_of)).cast("int64").max() > 0

    level2 = (a.level2_since.notnull() & (a.level2_since <= as_of)
              & (a.level2_until.isnull() | (a.level2_until >= as_of)))
    return a.group_by("customer_id").aggregate(
        chinext_opened=opened("chinext_opened_on"), star_opened=opened("star_opened_on"),
        bse_opened=opened("bse_opened_on"), margin_opened=opened("margin_opened_on"),
        level2_active=level2.cast("int64").max() > 0,
        account_transferred_out=(a.status.isin(["transferred_out", "closed"])).cast("int64").max() > 0,
    )


def suitability_features(assessments: ir.Table, as_of: date) -> ir.Table:
    s = assessments.filter(assessments.assessed_on <= as_of)
    s = s.mutate(rank=ibis.row_number().over(
        group_by=s.customer_id, order_by=[s.assessed_on.desc(), s.assessment_id.desc()]))
    latest = s.filter(s["rank"] == 0)
    return latest.select(
        "customer_id", c_level=latest.risk_level,
        lowest_category=latest.no_loss_tolerance.fill_null(False)
        | latest.no_civil_capacity.fill_null(False),
        assessment_valid_until=latest.valid_until)


def wecom_features(follows: ir.Table, as_of: date, offset: int) -> ir.Table:
    f = follows.filter(follows.customer_id.notnull()
                       & (local_date(follows.added_at, offset) <= as_of))
    active = f.removed_at.isnull() | (local_date(f.removed_at, offset) > as_of)
    # the customer deleted the advisor (del_follow_user): a churn signal, dated
    removed = ibis.cases(((f.status == "deleted_by_customer") & ~active,
                          local_date(f.removed_at, offset)), else_=ibis.null("date"))
    return f.group_by("customer_id").aggregate(
        follows_on_wecom=active.cast("int64").max() > 0, wecom_removed_on=removed.max())
