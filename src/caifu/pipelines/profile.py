"""Customer profile features as of a date — one Ibis definition for DuckDB and Spark.

``profile_features(inputs, as_of)`` takes the broker's tables as Ibis tables and returns one
row per customer who had opened an account by ``as_of``. Nothing here opens a connection;
``services/profiles/build.py`` hands in tables from whichever engine runs the job.

Definitions a reader of a profile needs (rendered into ``docs/profile-features.md``):

- Every window ends at ``as_of`` inclusive: "30d" is the 30 calendar days
  ``as_of - 29 … as_of``. Timestamps are stored as naive UTC and are turned into local dates
  with the tenant's UTC offset (Asia/Shanghai: +8 h, no daylight saving) before windowing.
- Holdings come from the latest positions snapshot on or before the date (snapshots are
  tenant-wide exports); fund holdings from the fund-transaction ledger (subscribe, purchase and
  reinvested dividends add shares, redemptions remove them) valued at each fund's latest NAV
  on or before the date. AUM = stock market value + fund value.
- Realised P&L uses average prices over the whole trade history to ``as_of``:
  ``matched × (average sell price − average buy price)`` per security, with
  ``matched = min(bought, sold)`` so sales of shares bought before the history began are not
  guessed at; before fees (fees are a feature of their own); rounded to the fen per
  security, then summed exactly.
- "Trading stopped on" is the last trade date once no trade happened in the last 30 days.
- RFM scores use the fixed thresholds in ``RFM_THRESHOLDS`` (never quantiles: quantile ties
  are broken arbitrarily and engines would disagree).
- Money (P&L included) is DECIMAL(18,2) summed exactly; ratios are floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
from ibis import _

# short names: they read better inside the long aggregations below
from caifu.pipelines.amounts import money as _money
from caifu.pipelines.amounts import no_money
from caifu.pipelines.amounts import zero_money as _zero
from caifu.pipelines.joins import left_join_customer

BOARDS = ("main", "chinext", "star", "bse")
FUND_TYPES = ("money", "bond", "hybrid", "equity", "index", "qdii", "fof")
RISK_LEVELS = ("R1", "R2", "R3", "R4", "R5")
STOPPED_AFTER_DAYS = 30

# score: lower bound (inclusive) for 5, 4, 3, 2; anything else scores 1.
RFM_THRESHOLDS = {
    # recency scores by days since the last trade: at most 7 days → 5 … never traded → 1
    "recency_max_days": (7, 30, 90, 180),
    "frequency_min_trades_365d": (100, 40, 12, 1),
    "monetary_min_amount_365d": (5_000_000, 1_000_000, 200_000, 1),
}


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # a contract kind: string, int, decimal, float, date, timestamp, bool
    desc: str


def _f(name: str, kind: str, desc: str) -> Feature:
    return Feature(name, kind, desc)


FEATURES: tuple[Feature, ...] = (
    _f("customer_id", "string", "客户号"),
    _f("as_of", "date", "画像日期"),
    _f("branch_id", "string", "营业部"),
    _f("advisor_id", "string", "服务投顾"),
    _f("channel", "string", "获客渠道"),
    _f("customer_type", "string", "客户类型"),
    _f("status", "string", "客户状态"),
    _f("tenure_days", "int", "开户天数"),
    *(_f(f"trades_{w}d", "int", f"近{w}天交易笔数") for w in (30, 90, 365)),
    *(_f(f"trade_amount_{w}d", "decimal", f"近{w}天成交金额") for w in (30, 90, 365)),
    _f("fees_365d", "decimal", "近365天佣金费用"),
    _f("distinct_securities_365d", "int", "近365天交易证券数"),
    *(_f(f"traded_{b}_365d", "bool", f"近365天交易过{n}")
      for b, n in zip(BOARDS, ("主板", "创业板", "科创板", "北交所"), strict=True)),
    _f("first_trade_date", "date", "首次交易日"),
    _f("last_trade_date", "date", "最近交易日"),
    _f("days_since_last_trade", "int", "距最近交易天数"),
    _f("trading_stopped_on", "date", "停止交易日期（30天无交易时的最后交易日）"),
    _f("rfm_recency", "int", "RFM 近度分 1–5"),
    _f("rfm_frequency", "int", "RFM 频度分 1–5"),
    _f("rfm_monetary", "int", "RFM 额度分 1–5"),
    _f("positions_count", "int", "持仓证券数"),
    _f("holdings_value", "decimal", "股票持仓市值"),
    _f("unrealised_pnl", "decimal", "持仓浮动盈亏"),
    _f("realised_pnl", "decimal", "已实现盈亏（均价法，不含费用，逐证券取整到分）"),
    _f("worst_security_code", "string", "亏损最多的持仓证券"),
    _f("worst_security_pnl", "decimal", "该持仓浮动盈亏"),
    _f("fund_value", "decimal", "基金持有市值"),
    *(_f(f"fund_value_{t}", "decimal", f"{t} 类基金市值") for t in FUND_TYPES),
    *(_f(f"fund_value_{r.lower()}", "decimal", f"{r} 风险等级基金市值") for r in RISK_LEVELS),
    _f("fund_purchase_365d", "decimal", "近365天基金申购金额"),
    _f("fund_redeem_365d", "decimal", "近365天基金赎回金额"),
    _f("fund_redemption_ratio_365d", "float", "近365天赎回/申购"),
    _f("aum", "decimal", "资产（股票+基金）"),
    _f("aum_30d_ago", "decimal", "30天前资产"),
    _f("aum_90d_ago", "decimal", "90天前资产"),
    _f("aum_trend_30d", "float", "资产30天变化率"),
    _f("aum_trend_90d", "float", "资产90天变化率"),
    *(_f(f"net_inflow_{w}d", "decimal", f"近{w}天净入金") for w in (30, 90, 365)),
    _f("deposits_30d", "decimal", "近30天入金"),
    _f("withdrawals_30d", "decimal", "近30天出金"),
    _f("last_deposit_date", "date", "最近入金日"),
    _f("days_since_last_deposit", "int", "距最近入金天数"),
    _f("last_login_at", "timestamp", "最近登录时间（UTC）"),
    _f("days_since_last_login", "int", "距最近登录天数"),
    _f("login_days_30d", "int", "近30天登录天数"),
    _f("login_days_without_trade_30d", "int", "近30天只登录不交易天数"),
    _f("chinext_opened", "bool", "已开通创业板"),
    _f("star_opened", "bool", "已开通科创板"),
    _f("bse_opened", "bool", "已开通北交所"),
    _f("margin_opened", "bool", "已开通两融"),
    _f("level2_active", "bool", "Level-2 行情有效"),
    _f("account_transferred_out", "bool", "有转销户/转出账户"),
    _f("follows_on_wecom", "bool", "企业微信好友（有效）"),
    _f("days_since_wecom_removed", "int", "距客户最近删除投顾企业微信天数（流失信号）"),
    _f("c_level", "string", "风险承受等级 C1–C5"),
    _f("lowest_category", "bool", "最低类别投资者"),
    _f("assessment_valid_until", "date", "测评有效期"),
    _f("assessment_expired", "bool", "测评已过期"),
)
FEATURE_KINDS: dict[str, str] = {f.name: f.kind for f in FEATURES}


@dataclass(frozen=True)
class ProfileInputs:
    """The tables a profile reads, on one engine. Fact tables may be None when empty."""

    customers: ir.Table
    accounts: ir.Table
    securities: ir.Table
    fund_products: ir.Table
    suitability_assessments: ir.Table
    wecom_follows: ir.Table
    trades: ir.Table | None = None
    positions: ir.Table | None = None
    cash_flows: ir.Table | None = None
    fund_transactions: ir.Table | None = None
    app_events: ir.Table | None = None
    # whole-tenant tables when the others hold only some customers (see ``restrict``): the
    # latest positions snapshot date and fund NAVs are facts of the market, not of a customer
    market_positions: ir.Table | None = None
    market_fund_transactions: ir.Table | None = None


def restrict(inputs: ProfileInputs, customer_ids: list[str]) -> ProfileInputs:
    """The same inputs narrowed to some customers (the real-time path's incremental build).

    Reference tables (securities, funds) stay whole; everything a customer owns is filtered,
    so each customer's features are exactly what a full build computes for them.
    """
    def only(t: ir.Table | None) -> ir.Table | None:
        return None if t is None else t.filter(t.customer_id.isin(customer_ids))

    return ProfileInputs(
        customers=only(inputs.customers), accounts=only(inputs.accounts),  # type: ignore[arg-type]
        securities=inputs.securities, fund_products=inputs.fund_products,
        suitability_assessments=only(inputs.suitability_assessments),  # type: ignore[arg-type]
        wecom_follows=only(inputs.wecom_follows),  # type: ignore[arg-type]
        trades=only(inputs.trades), positions=only(inputs.positions),
        cash_flows=only(inputs.cash_flows), fund_transactions=only(inputs.fund_transactions),
        app_events=only(inputs.app_events),
        market_positions=inputs.positions, market_fund_transactions=inputs.fund_transactions)


def local_date(ts: ir.TimestampValue, utc_offset_hours: int) -> ir.DateValue:
    return (ts + ibis.interval(hours=utc_offset_hours)).date()


def _days_between(later: date, earlier: ir.DateValue) -> ir.IntegerValue:
    return ibis.date(later).delta(earlier, unit="day").cast("int64")


def _since(as_of: date, days: int) -> date:
    """First day of a window of ``days`` days ending at ``as_of`` inclusive."""
    return as_of - timedelta(days=days - 1)


def _score(value: ir.NumericValue, bounds: tuple[int, ...], higher_is_better: bool) -> ir.Value:
    cases = []
    for score, bound in zip((5, 4, 3, 2), bounds, strict=True):
        cases.append(((value >= bound) if higher_is_better else (value <= bound), score))
    return ibis.cases(*cases, else_=1).cast("int64")


def _trade_features(trades: ir.Table, as_of: date) -> ir.Table:
    """Per customer: first/last trade and the windows, in one pass over the trades."""
    t = trades.select("customer_id", "trade_date", "trade_id", "amount", "fee")
    t = t.filter(t.trade_date <= as_of)
    aggs: dict[str, ir.Value] = {"first_trade_date": t.trade_date.min(),
                                 "last_trade_date": t.trade_date.max()}
    for w in (30, 90, 365):
        in_window = t.trade_date >= _since(as_of, w)
        aggs[f"trades_{w}d"] = t.trade_id.count(where=in_window)
        aggs[f"trade_amount_{w}d"] = _money(t.amount.sum(where=in_window))
    aggs["fees_365d"] = _money(t.fee.sum(where=t.trade_date >= _since(as_of, 365)))
    return t.group_by("customer_id").aggregate(**aggs)


def _security_features(trades: ir.Table, securities: ir.Table, as_of: date) -> ir.Table:
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
    recent = per.last_trade_date >= _since(as_of, 365)
    aggs: dict[str, ir.Value] = {
        "realised_fen": per.fen.sum(),
        "distinct_securities_365d": per.security_code.count(where=recent)}
    for b in BOARDS:
        aggs[f"traded_{b}_365d"] = per.security_code.count(where=recent & (per.board == b)) > 0
    total = per.group_by("customer_id").aggregate(**aggs)
    return total.mutate(realised_pnl=_money(total.realised_fen.cast("float64") / 100)).drop(
        "realised_fen")


def _snapshot_dates(positions: ir.Table, as_of: date) -> ir.Table:
    """One row: the tenant's latest positions snapshot on or before as_of, 30 and 90 days ago."""
    d = positions.snapshot_date
    return positions.aggregate(
        d0=d.max(where=d <= as_of), d30=d.max(where=d <= as_of - timedelta(days=30)),
        d90=d.max(where=d <= as_of - timedelta(days=90)))


def _position_features(positions: ir.Table, as_of: date, market: ir.Table | None) -> ir.Table:
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
        "customer_id", worst_security_code=_.security_code, worst_security_pnl=_money(_.pnl))
    totals = h.group_by("customer_id").aggregate(
        positions_count=h.security_code.count(where=h.held > 0),
        holdings_value=_money(h.market_value.sum()), unrealised_pnl=_money(h.pnl.sum()),
        stock_30d_ago=_money(h.mv30.sum()), stock_90d_ago=_money(h.mv90.sum()))
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


def _fund_features(fund_tx: ir.Table, funds: ir.Table, as_of: date,
                   market: ir.Table | None) -> ir.Table:
    """Fund holdings valued at as_of, 30 and 90 days ago, and the 365-day flows, in one pass
    over the ledger.

    NAVs come from every customer's transactions (``market``, when ``fund_tx`` holds only
    some customers).
    """
    f = fund_tx.select("customer_id", "fund_code", "txn_date", "txn_type", "shares", "amount")
    f = f.filter(f.txn_date <= as_of)
    signed = f.shares * ibis.cases((f.txn_type == "redeem", -1), else_=1)
    recent = f.txn_date >= _since(as_of, 365)
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
        return ibis.cases((shares > 0, _money((shares.cast(exact) * nav.cast(exact)).round(2))),
                          else_=no_money())

    v = v.mutate(v0=value(v.held0, v.nav0), v30=value(v.held30, v.nav30),
                 v90=value(v.held90, v.nav90))
    aggs: dict[str, ir.Value] = {"fund_value": _money(v.v0.sum(where=v.listed.notnull()))}
    for t in FUND_TYPES:
        aggs[f"fund_value_{t}"] = _money(v.v0.sum(where=v.fund_type == t))
    for r in RISK_LEVELS:
        aggs[f"fund_value_{r.lower()}"] = _money(v.v0.sum(where=v.risk_level == r))
    aggs["fund_30d_ago"] = _money(v.v30.sum())
    aggs["fund_90d_ago"] = _money(v.v90.sum())
    aggs["fund_purchase_365d"] = _money(v.purchase.sum())
    aggs["fund_redeem_365d"] = _money(v.redeem.sum())
    return v.group_by("customer_id").aggregate(**aggs)


def _local_day_start(day: date, utc_offset_hours: int) -> ir.TimestampValue:
    """The naive-UTC instant at which local ``day`` begins: ``local_date(ts) >= day`` is
    ``ts >= _local_day_start(day)``, a bound engines can prune stored files with."""
    start = datetime.combine(day, time()) - timedelta(hours=utc_offset_hours)
    return ibis.timestamp(start)


def _cash_features(cash: ir.Table, as_of: date, offset: int) -> ir.Table:
    c = cash.filter(cash.flow_time < _local_day_start(as_of + timedelta(days=1), offset))
    signed = ibis.cases((c.direction == "in", c.amount), else_=-c.amount)
    aggs: dict[str, ir.Value] = {}
    for w in (30, 90, 365):
        in_window = c.flow_time >= _local_day_start(_since(as_of, w), offset)
        aggs[f"net_inflow_{w}d"] = _money(signed.sum(where=in_window))
    last30 = c.flow_time >= _local_day_start(_since(as_of, 30), offset)
    aggs["deposits_30d"] = _money(c.amount.sum(where=last30 & (c.direction == "in")))
    aggs["withdrawals_30d"] = _money(c.amount.sum(where=last30 & (c.direction == "out")))
    aggs["last_deposit_at"] = c.flow_time.max(where=c.direction == "in")
    out = c.group_by("customer_id").aggregate(**aggs)
    return out.mutate(last_deposit_date=local_date(out.last_deposit_at, offset)).drop(
        "last_deposit_at")


def _login_features(events: ir.Table, trades: ir.Table | None, as_of: date,
                    offset: int) -> ir.Table:
    end = _local_day_start(as_of + timedelta(days=1), offset)
    e = events.filter((events.event_type == "login") & (events.event_time < end))
    last = e.group_by("customer_id").aggregate(last_login_at=e.event_time.max())
    d = e.filter(e.event_time >= _local_day_start(_since(as_of, 30), offset))
    days = d.select("customer_id", day=local_date(d.event_time, offset)).distinct()
    if trades is not None:
        traded = trades.filter((trades.trade_date >= _since(as_of, 30))
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


def _account_features(accounts: ir.Table, as_of: date) -> ir.Table:
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


def _suitability(assessments: ir.Table, as_of: date) -> ir.Table:
    s = assessments.filter(assessments.assessed_on <= as_of)
    s = s.mutate(rank=ibis.row_number().over(
        group_by=s.customer_id, order_by=[s.assessed_on.desc(), s.assessment_id.desc()]))
    latest = s.filter(s["rank"] == 0)
    return latest.select(
        "customer_id", c_level=latest.risk_level,
        lowest_category=latest.no_loss_tolerance.fill_null(False)
        | latest.no_civil_capacity.fill_null(False),
        assessment_valid_until=latest.valid_until)


def _wecom(follows: ir.Table, as_of: date, offset: int) -> ir.Table:
    f = follows.filter(follows.customer_id.notnull()
                       & (local_date(follows.added_at, offset) <= as_of))
    active = f.removed_at.isnull() | (local_date(f.removed_at, offset) > as_of)
    # the customer deleted the advisor (del_follow_user): a churn signal, dated
    removed = ibis.cases(((f.status == "deleted_by_customer") & ~active,
                          local_date(f.removed_at, offset)), else_=ibis.null("date"))
    return f.group_by("customer_id").aggregate(
        follows_on_wecom=active.cast("int64").max() > 0, wecom_removed_on=removed.max())


def profile_features(inputs: ProfileInputs, as_of: date, utc_offset_hours: int = 8) -> ir.Table:
    """One row per customer opened by ``as_of``, with the columns of ``FEATURES`` in order."""
    c = inputs.customers.filter(inputs.customers.opened_on <= as_of)
    base = c.select("customer_id", "branch_id", "advisor_id", "channel", "customer_type",
                    "status", tenure_days=_days_between(as_of, c.opened_on))
    t = inputs.trades
    snaps, navs = inputs.market_positions, inputs.market_fund_transactions
    parts: list[ir.Table | None] = [
        _trade_features(t, as_of) if t is not None else None,
        _security_features(t, inputs.securities, as_of) if t is not None else None,
        _position_features(inputs.positions, as_of, snaps)
        if inputs.positions is not None else None,
        _fund_features(inputs.fund_transactions, inputs.fund_products, as_of, navs)
        if inputs.fund_transactions is not None else None,
        _cash_features(inputs.cash_flows, as_of, utc_offset_hours)
        if inputs.cash_flows is not None else None,
        _login_features(inputs.app_events, t, as_of, utc_offset_hours)
        if inputs.app_events is not None else None,
        _account_features(inputs.accounts, as_of),
        _suitability(inputs.suitability_assessments, as_of),
        _wecom(inputs.wecom_follows, as_of, utc_offset_hours),
    ]
    wide = base
    for part in parts:
        wide = left_join_customer(wide, part)
    return _finish(wide, as_of, utc_offset_hours)


def _finish(w: ir.Table, as_of: date, offset: int) -> ir.Table:
    """Fill what a missing part means (no trades = 0 trades) and put columns in order."""
    cols = set(w.columns)

    def col(name: str, default: ir.Value | None = None) -> ir.Value:
        kind = FEATURE_KINDS.get(name)
        if name in cols:
            value = w[name]
            return value.fill_null(default) if default is not None else value
        if default is not None:
            return default
        return ibis.null(_IBIS_TYPES[kind or "string"])

    zero_int = ibis.literal(0).cast("int64")
    out: dict[str, ir.Value] = {"customer_id": w.customer_id, "as_of": ibis.date(as_of)}
    for name in ("branch_id", "advisor_id", "channel", "customer_type", "status", "tenure_days"):
        out[name] = w[name]
    for wd in (30, 90, 365):
        out[f"trades_{wd}d"] = col(f"trades_{wd}d", zero_int)
        out[f"trade_amount_{wd}d"] = col(f"trade_amount_{wd}d", _zero())
    out["fees_365d"] = col("fees_365d", _zero())
    out["distinct_securities_365d"] = col("distinct_securities_365d", zero_int)
    for b in BOARDS:
        out[f"traded_{b}_365d"] = col(f"traded_{b}_365d", ibis.literal(False))
    out["first_trade_date"] = col("first_trade_date")
    last_trade = col("last_trade_date")
    out["last_trade_date"] = last_trade
    since_trade = _days_between(as_of, last_trade)
    out["days_since_last_trade"] = since_trade
    out["trading_stopped_on"] = ibis.cases((since_trade >= STOPPED_AFTER_DAYS, last_trade),
                                           else_=ibis.null("date"))
    th = RFM_THRESHOLDS
    out["rfm_recency"] = ibis.cases(
        (since_trade.isnull(), 1), else_=_score(since_trade, th["recency_max_days"], False)
    ).cast("int64")
    out["rfm_frequency"] = _score(out["trades_365d"], th["frequency_min_trades_365d"], True)
    out["rfm_monetary"] = _score(out["trade_amount_365d"], th["monetary_min_amount_365d"], True)
    out["positions_count"] = col("positions_count", zero_int)
    out["holdings_value"] = col("holdings_value", _zero())
    out["unrealised_pnl"] = col("unrealised_pnl", _zero())
    out["realised_pnl"] = col("realised_pnl", _zero())
    out["worst_security_code"] = col("worst_security_code")
    out["worst_security_pnl"] = col("worst_security_pnl")
    out["fund_value"] = col("fund_value", _zero())
    for t in FUND_TYPES:
        out[f"fund_value_{t}"] = col(f"fund_value_{t}", _zero())
    for r in RISK_LEVELS:
        out[f"fund_value_{r.lower()}"] = col(f"fund_value_{r.lower()}", _zero())
    out["fund_purchase_365d"] = col("fund_purchase_365d", _zero())
    out["fund_redeem_365d"] = col("fund_redeem_365d", _zero())
    out["fund_redemption_ratio_365d"] = _ratio(out["fund_redeem_365d"], out["fund_purchase_365d"])
    aum = _money(out["holdings_value"] + out["fund_value"])
    aum30 = _money(col("stock_30d_ago", _zero()) + col("fund_30d_ago", _zero()))
    aum90 = _money(col("stock_90d_ago", _zero()) + col("fund_90d_ago", _zero()))
    out["aum"], out["aum_30d_ago"], out["aum_90d_ago"] = aum, aum30, aum90
    out["aum_trend_30d"] = _ratio(aum - aum30, aum30)
    out["aum_trend_90d"] = _ratio(aum - aum90, aum90)
    for wd in (30, 90, 365):
        out[f"net_inflow_{wd}d"] = col(f"net_inflow_{wd}d", _zero())
    out["deposits_30d"] = col("deposits_30d", _zero())
    out["withdrawals_30d"] = col("withdrawals_30d", _zero())
    last_dep = col("last_deposit_date")
    out["last_deposit_date"] = last_dep
    out["days_since_last_deposit"] = _days_between(as_of, last_dep)
    last_login = col("last_login_at")
    out["last_login_at"] = last_login
    out["days_since_last_login"] = ibis.cases(
        (last_login.isnull(), ibis.null("int64")),
        else_=_days_between(as_of, local_date(last_login, offset)))
    out["login_days_30d"] = col("login_days_30d", zero_int)
    out["login_days_without_trade_30d"] = col("login_days_without_trade_30d", zero_int)
    for name in ("chinext_opened", "star_opened", "bse_opened", "margin_opened",
                 "level2_active", "account_transferred_out", "follows_on_wecom",
                 "lowest_category"):
        out[name] = col(name, ibis.literal(False))
    removed_on = w["wecom_removed_on"] if "wecom_removed_on" in cols else ibis.null("date")
    out["days_since_wecom_removed"] = _days_between(as_of, removed_on)
    out["c_level"] = col("c_level")
    valid = col("assessment_valid_until")
    out["assessment_valid_until"] = valid
    out["assessment_expired"] = valid.isnull() | (valid < as_of)
    ordered = {f.name: out[f.name].cast(_IBIS_TYPES[f.kind]) for f in FEATURES}
    return w.select(**ordered)


def _ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    return ibis.cases((den > 0, num.cast("float64") / den.cast("float64")),
                      else_=ibis.null("float64"))


_IBIS_TYPES = {"string": "string", "int": "int64", "decimal": "decimal(18, 2)",
               "float": "float64", "date": "date", "timestamp": "timestamp", "bool": "boolean"}
