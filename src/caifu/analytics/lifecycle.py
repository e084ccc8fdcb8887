"""Lifecycle stages: what each stage means, the tenant's thresholds, and the facts per day.

A customer is in exactly one stage on each day from the day tracking starts. Stages, by
precedence (the first whose condition holds on a day wins; ``docs/lifecycle.md`` explains
them for operations)::

    churned            account closed or transferred out (final), or a transfer-out cash flow
                       (ends when activity resumes: the account still exists)
    dormant            no trade and no fund purchase for ``dormant.days`` days
    reactivated        for ``reactivated.days`` days after activity ended a dormant or
                       churned spell
    declining          no trade for ``active.days`` days, or activity days in the last
                       ``declining.window_days`` fell by ``drop_pct`` % against the window before
    first_loss         for ``first_loss.days`` days after the first realised loss (sell below
                       the average buy price), once in a customer's life
    active             traded in the last ``active.days`` days
    funded_not_traded  deposited (or bought a fund) but never traded
    opened_not_funded  opened, nothing deposited

This module holds the definitions, the rules model (validated, with errors that name the
file and field) and the Ibis expressions that reduce the facts to one row per customer and
day; ``lifecycle_machine`` walks the days. Nothing here opens a connection.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from caifu.core.errors import ConfigError
from caifu.core.money import yuan
from caifu.pipelines.profile import ProfileInputs, local_date

# precedence order, highest first; the index is the stage's code in the state machine
STAGES: tuple[str, ...] = ("churned", "dormant", "reactivated", "declining", "first_loss",
                           "active", "funded_not_traded", "opened_not_funded")
STAGE_NAMES: dict[str, str] = {
    "opened_not_funded": "开户未入金", "funded_not_traded": "入金未交易", "active": "活跃",
    "first_loss": "首次亏损", "declining": "活跃下降", "dormant": "休眠", "churned": "流失",
    "reactivated": "重新激活"}
# lifecycle order for reports (how a customer normally moves), not precedence
REPORT_ORDER: tuple[str, ...] = ("opened_not_funded", "funded_not_traded", "active",
                                 "first_loss", "declining", "dormant", "churned", "reactivated")

# trigger code → Chinese text; the placeholders are keys of the transition's values
TRIGGERS: dict[str, str] = {
    "account_opened": "{opened_on} 开户",
    "tracking_start": "开户早于数据起点 {history_start}，自 {tracking_start} 起按行为判定",
    "first_deposit": "{deposit_date} 首次入金 {deposit_amount} 元",
    "first_fund_purchase": "{purchase_date} 首次申购基金（未见入金记录）",
    "first_trade": "{trade_date} 首次交易",
    "traded": "{trade_date} 有交易",
    "trading_resumed": "{trade_date} 恢复交易",
    "activity_recovered": "近 {window_days} 天活跃 {last_window_days} 天，前一窗口 "
                          "{previous_window_days} 天，降幅 {drop_pct}% 已回到阈值以内",
    "first_loss_period_over": "首次亏损（{first_loss_date}）已过 {days} 天",
    "reactivation_period_over": "重新激活（{reactivated_on}）已过 {days} 天",
    "first_realised_loss": "{loss_date} 卖出 {security_code} 首次实现亏损 {loss_amount} 元"
                           "（卖价 {sell_price}，买入均价 {average_cost}）",
    "activity_drop": "近 {window_days} 天活跃 {last_window_days} 天，前一窗口 "
                     "{previous_window_days} 天，下降 {drop_pct}%",
    "no_recent_trade": "连续 {days_without_trade} 天未交易（最近交易 {last_trade_date}）",
    "no_activity": "连续 {days_without_activity} 天无交易、无基金申购（最近一次 "
                   "{last_activity_date}）",
    "returned_after_dormancy": "休眠 {days_inactive} 天后于 {activity_date} 恢复{activity}",
    "returned_after_churn": "流失（{churned_on}）后于 {activity_date} 恢复{activity}",
    "assets_transferred_out": "{transfer_date} 资产转出 {transfer_amount} 元",
    "account_closed": "账户销户（{closed_on}{inferred}）",
    "account_transferred_out": "账户已转出（{closed_on}{inferred}）",
}


def trigger_text(code: str, values: dict[str, Any]) -> str:
    shown = {k: ("—" if v is None else yuan(v) if k.endswith("amount") else v)
             for k, v in values.items()}
    if code in ("account_closed", "account_transferred_out"):
        shown["inferred"] = "，日期按最后一笔业务推定" if values.get("date_inferred") else ""
    return TRIGGERS[code].format(**shown)


# --- the tenant's thresholds ------------------------------------------------------------

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActiveRules(_Section):
    days: int = Field(default=90, ge=1, le=3650, description="traded within this many days")


class DormantRules(_Section):
    days: int = Field(default=180, ge=2, le=3650, description="no trade, no fund purchase this long")


class DecliningRules(_Section):
    window_days: int = Field(default=90, ge=7, le=730)
    drop_pct: float = Field(default=50, gt=0, le=100)
    recover_pct: float = Field(default=25, ge=0, lt=100)
    min_previous_days: int = Field(default=6, ge=1)


class FirstLossRules(_Section):
    min_amount: float = Field(default=100, ge=0, description="yuan; smaller losses are noise")
    days: int = Field(default=30, ge=1, le=3650)


class ReactivatedRules(_Section):
    days: int = Field(default=90, ge=1, le=3650)


class ChurnRules(_Section):
    transfer_out_min_amount: float = Field(default=0, ge=0)


class LifecycleRules(_Section):
    version: int = 1
    active: ActiveRules = ActiveRules()
    dormant: DormantRules = DormantRules()
    declining: DecliningRules = DecliningRules()
    first_loss: FirstLossRules = FirstLossRules()
    reactivated: ReactivatedRules = ReactivatedRules()
    churn: ChurnRules = ChurnRules()

    @model_validator(mode="after")
    def _consistent(self) -> LifecycleRules:
        # a customer must be able to lapse (declining) before going dormant
        if self.dormant.days <= self.active.days:
            raise ValueError(f"dormant.days ({self.dormant.days}) must exceed active.days "
                             f"({self.active.days})")
        if self.declining.recover_pct >= self.declining.drop_pct:
            raise ValueError(f"declining.recover_pct ({self.declining.recover_pct}) must be "
                             f"below declining.drop_pct ({self.declining.drop_pct})")
        return self


def parse_rules(document: Any, source: str) -> LifecycleRules:
    """Validate a parsed lifecycle document; ``ConfigError`` names the file and field."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (active, dormant, …)")
    try:
        rules = LifecycleRules.model_validate(document)
    except ValidationError as err:
        lines = []
        for e in err.errors()[:10]:
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            lines.append(f"  {loc}: {e['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"{source}: invalid lifecycle configuration\n"
                          + "\n".join(lines)) from None
    if rules.version != 1:
        raise ConfigError(f"{source}: version: format version {rules.version} is not "
                          "supported (this caifu reads version 1)")
    return rules


# --- facts, reduced on the engine ---------------------------------------------------------

def daily_activity(inputs: ProfileInputs, as_of: date | None, utc_offset_hours: int
                   ) -> ir.Table | None:
    """One row per customer and local day with a trade, a fund purchase or a cash flow:
    ``traded``, ``fund_bought`` (0/1), ``deposit`` and ``transfer_out`` (yuan, float), up to
    ``as_of`` (``None``: every fact there is).

    Dividends paid in cash are not deposits (the customer did nothing); a transfer-out is a
    cash flow of method ``transfer_out`` leaving the account.
    """
    def upto(t: ir.Table, day: ir.Value) -> ir.Table:
        return t if as_of is None else t.filter(day <= as_of)

    zero = ibis.literal(0.0)
    parts: list[ir.Table] = []
    if inputs.trades is not None:
        t = upto(inputs.trades, inputs.trades.trade_date)
        parts.append(t.select(customer_id=t.customer_id, day=t.trade_date,
                              traded=ibis.literal(1), fund_bought=ibis.literal(0),
                              deposit=zero, transfer_out=zero))
    if inputs.fund_transactions is not None:
        f = inputs.fund_transactions
        f = upto(f, f.txn_date)
        f = f.filter(f.txn_type.isin(["subscribe", "purchase"]))
        parts.append(f.select(customer_id=f.customer_id, day=f.txn_date, traded=ibis.literal(0),
                              fund_bought=ibis.literal(1), deposit=zero, transfer_out=zero))
    if inputs.cash_flows is not None:
        c = inputs.cash_flows.mutate(day=local_date(inputs.cash_flows.flow_time,
                                                    utc_offset_hours))
        c = upto(c, c.day)
        method = c.method.fill_null("other")
        amount = c.amount.cast("float64")
        parts.append(c.select(
            customer_id=c.customer_id, day=c.day, traded=ibis.literal(0),
            fund_bought=ibis.literal(0),
            deposit=ibis.cases(((c.direction == "in") & (method != "dividend"), amount),
                               else_=zero),
            transfer_out=ibis.cases(((c.direction == "out") & (method == "transfer_out"),
                                     amount), else_=zero)))
    if not parts:
        return None
    u = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return u.group_by(["customer_id", "day"]).aggregate(
        traded=u.traded.max(), fund_bought=u.fund_bought.max(), deposit=u.deposit.sum(),
        transfer_out=u.transfer_out.sum())


def first_losses(trades: ir.Table, as_of: date, min_amount: float) -> ir.Table:
    """Each customer's first realised loss of at least ``min_amount`` yuan up to ``as_of``.

    A sell realises a loss when its price is below the average price of the customer's buys
    of that security so far; the loss is ``min(sold, bought so far) × (average − price)``,
    before fees (fees are not a market loss). Shares bought before the history began have no
    known cost, so their sales are not judged.
    """
    t = trades.filter(trades.trade_date <= as_of)
    w = ibis.cumulative_window(group_by=[t.customer_id, t.security_code],
                               order_by=[t.trade_time, t.trade_id])
    buy = t.side == "B"
    t = t.mutate(bought=ibis.cases((buy, t.quantity), else_=0).sum().over(w),
                 cost=ibis.cases((buy, t.amount.cast("float64")), else_=0.0).sum().over(w))
    s = t.filter((t.side == "S") & (t.bought > 0) & (t.quantity > 0))
    average = s.cost / s.bought
    price = s.amount.cast("float64") / s.quantity
    matched = ibis.least(s.quantity, s.bought)
    s = s.mutate(average_cost=average, sell_price=price,
                 loss_amount=(matched * (average - price)).round(2))
    s = s.filter(s.loss_amount >= max(min_amount, 0.01))
    first = ibis.window(group_by=s.customer_id,
                        order_by=[s.trade_date, s.trade_time, s.trade_id])
    s = s.mutate(n=ibis.row_number().over(first))
    s = s.filter(s.n == 0)
    return s.select(customer_id=s.customer_id, loss_date=s.trade_date,
                    security_code=s.security_code, sell_price=s.sell_price.round(3),
                    average_cost=s.average_cost.round(3), loss_amount=s.loss_amount)


def customer_status(inputs: ProfileInputs, as_of: date, utc_offset_hours: int) -> ir.Table:
    """Customers opened by ``as_of`` with what the master data says about closure.

    ``gone`` counts accounts closed or transferred out; when every account is gone the
    customer has left even without a ``closed_on`` date. The master data is a snapshot of
    today, so such an undated closure may have happened after ``as_of``: ``last_fact`` is the
    customer's last day of activity in *all* the facts (not cut at ``as_of``), the date the
    state machine gives the closure — and applies only when it is on or before ``as_of``.
    """
    c = inputs.customers.filter(inputs.customers.opened_on <= as_of)
    a = inputs.accounts
    per = a.group_by("customer_id").aggregate(
        accounts=a.count(),
        gone=a.status.isin(["closed", "transferred_out"]).cast("int64").sum(),
        transferred=(a.status == "transferred_out").cast("int64").sum())
    j = c.left_join(per, "customer_id").drop("customer_id_right")
    facts = daily_activity(inputs, None, utc_offset_hours)
    if facts is None:
        last = ibis.null("date")
    else:
        f = facts.group_by("customer_id").aggregate(last_fact=facts.day.max())
        j = j.left_join(f, "customer_id").drop("customer_id_right")
        last = j.last_fact
    out = j.select(customer_id=j.customer_id, opened_on=j.opened_on, closed_on=j.closed_on,
                   status=j.status, accounts=j.accounts.fill_null(0),
                   gone=j.gone.fill_null(0), transferred=j.transferred.fill_null(0),
                   last_fact=last)
    return out.order_by("customer_id")  # the machine's output follows this order
