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
from datetime import date

import ibis
import ibis.expr.types as ir

from caifu.pipelines import profile_sources as src
from caifu.pipelines.amounts import money, zero_money
from caifu.pipelines.amounts import ratio as _ratio
from caifu.pipelines.joins import left_join_customer
from caifu.pipelines.profile_sources import BOARDS, FUND_TYPES, RISK_LEVELS, local_date

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


def profile_features(inputs: ProfileInputs, as_of: date, utc_offset_hours: int = 8) -> ir.Table:
    """One row per customer opened by ``as_of``, with the columns of ``FEATURES`` in order."""
    c = inputs.customers.filter(inputs.customers.opened_on <= as_of)
    base = c.select("customer_id", "branch_id", "advisor_id", "channel", "customer_type",
                    "status", tenure_days=src.days_between(as_of, c.opened_on))
    t = inputs.trades
    snaps, navs = inputs.market_positions, inputs.market_fund_transactions
    parts: list[ir.Table | None] = [
        src.trade_features(t, as_of) if t is not None else None,
        src.security_features(t, inputs.securities, as_of) if t is not None else None,
        src.position_features(inputs.positions, as_of, snaps)
        if inputs.positions is not None else None,
        src.fund_features(inputs.fund_transactions, inputs.fund_products, as_of, navs)
        if inputs.fund_transactions is not None else None,
        src.cash_features(inputs.cash_flows, as_of, utc_offset_hours)
        if inputs.cash_flows is not None else None,
        src.login_features(inputs.app_events, t, as_of, utc_offset_hours)
        if inputs.app_events is not None else None,
        src.account_features(inputs.accounts, as_of),
        src.suitability_features(inputs.suitability_assessments, as_of),
        src.wecom_features(inputs.wecom_follows, as_of, utc_offset_hours),
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
        out[f"trade_amount_{wd}d"] = col(f"trade_amount_{wd}d", zero_money())
    out["fees_365d"] = col("fees_365d", zero_money())
    out["distinct_securities_365d"] = col("distinct_securities_365d", zero_int)
    for b in BOARDS:
        out[f"traded_{b}_365d"] = col(f"traded_{b}_365d", ibis.literal(False))
    out["first_trade_date"] = col("first_trade_date")
    last_trade = col("last_trade_date")
    out["last_trade_date"] = last_trade
    since_trade = src.days_between(as_of, last_trade)
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
    out["holdings_value"] = col("holdings_value", zero_money())
    out["unrealised_pnl"] = col("unrealised_pnl", zero_money())
    out["realised_pnl"] = col("realised_pnl", zero_money())
    out["worst_security_code"] = col("worst_security_code")
    out["worst_security_pnl"] = col("worst_security_pnl")
    out["fund_value"] = col("fund_value", zero_money())
    for t in FUND_TYPES:
        out[f"fund_value_{t}"] = col(f"fund_value_{t}", zero_money())
    for r in RISK_LEVELS:
        out[f"fund_value_{r.lower()}"] = col(f"fund_value_{r.lower()}", zero_money())
    out["fund_purchase_365d"] = col("fund_purchase_365d", zero_money())
    out["fund_redeem_365d"] = col("fund_redeem_365d", zero_money())
    out["fund_redemption_ratio_365d"] = _ratio(out["fund_redeem_365d"], out["fund_purchase_365d"])
    aum = money(out["holdings_value"] + out["fund_value"])
    aum30 = money(col("stock_30d_ago", zero_money()) + col("fund_30d_ago", zero_money()))
    aum90 = money(col("stock_90d_ago", zero_money()) + col("fund_90d_ago", zero_money()))
    out["aum"], out["aum_30d_ago"], out["aum_90d_ago"] = aum, aum30, aum90
    out["aum_trend_30d"] = _ratio(aum - aum30, aum30)
    out["aum_trend_90d"] = _ratio(aum - aum90, aum90)
    for wd in (30, 90, 365):
        out[f"net_inflow_{wd}d"] = col(f"net_inflow_{wd}d", zero_money())
    out["deposits_30d"] = col("deposits_30d", zero_money())
    out["withdrawals_30d"] = col("withdrawals_30d", zero_money())
    last_dep = col("last_deposit_date")
    out["last_deposit_date"] = last_dep
    out["days_since_last_deposit"] = src.days_between(as_of, last_dep)
    last_login = col("last_login_at")
    out["last_login_at"] = last_login
    out["days_since_last_login"] = ibis.cases(
        (last_login.isnull(), ibis.null("int64")),
        else_=src.days_between(as_of, local_date(last_login, offset)))
    out["login_days_30d"] = col("login_days_30d", zero_int)
    out["login_days_without_trade_30d"] = col("login_days_without_trade_30d", zero_int)
    for name in ("chinext_opened", "star_opened", "bse_opened", "margin_opened",
                 "level2_active", "account_transferred_out", "follows_on_wecom",
                 "lowest_category"):
        out[name] = col(name, ibis.literal(False))
    removed_on = w["wecom_removed_on"] if "wecom_removed_on" in cols else ibis.null("date")
    out["days_since_wecom_removed"] = src.days_between(as_of, removed_on)
    out["c_level"] = col("c_level")
    valid = col("assessment_valid_until")
    out["assessment_valid_until"] = valid
    out["assessment_expired"] = valid.isnull() | (valid < as_of)
    ordered = {f.name: out[f.name].cast(_IBIS_TYPES[f.kind]) for f in FEATURES}
    return w.select(**ordered)


def _score(value: ir.NumericValue, bounds: tuple[int, ...], higher_is_better: bool) -> ir.Value:
    cases = []
    for score, bound in zip((5, 4, 3, 2), bounds, strict=True):
        cases.append(((value >= bound) if higher_is_better else (value <= bound), score))
    return ibis.cases(*cases, else_=1).cast("int64")


_IBIS_TYPES = {"string": "string", "int": "int64", "decimal": "decimal(18, 2)",
               "float": "float64", "date": "date", "timestamp": "timestamp", "bool": "boolean"}
