"""Who holds a security named in a risk story: directly, on the tenant's latest positions
snapshot, and through funds whose disclosed top holdings name it.

``holders(positions, codes, as_of, fund_tx=None, top_holdings=None)`` is one row per
customer, security and route (``via``):

- ``position``: the security held (quantity > 0) on the latest positions snapshot on or
  before ``as_of`` — chosen over the whole table, not over the named securities, so a
  security nobody holds any more has no holders rather than last month's. Market value is
  the value at risk; unrealised P&L is market value minus cost.
- ``fund:<fund code>``: a fund position at the end of ``as_of`` (``pipelines.fund_ledger``,
  the one definition of a fund position: the share ledger with its opening balance, valued
  at the fund's latest NAV on or before ``as_of``) of a fund whose latest disclosed top
  holdings on or before ``as_of`` (``fund_top_holdings``, each fund's newest
  ``report_date``) include the security. Value at risk = the fund position's value ×
  ``nav_pct`` / 100, rounded half away from zero to the fen; ``market_value``, ``cost`` and
  ``unrealised_pnl`` are the fund position's (cost and P&L unknown — null — when the
  position holds shares from before the history). ``snapshot_date`` is ``as_of``.

Columns: ``customer_id, security_code, via, fund_code, snapshot_date, report_date, nav_pct,
quantity`` (shares of the security, positions only) ``, shares`` (fund shares, funds only)
``, market_value, cost, unrealised_pnl, value_at_risk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import ibis
import ibis.expr.types as ir

from caifu.pipelines.amounts import MONEY, money, no_money
from caifu.pipelines.cards import snapshot_date
from caifu.pipelines.fund_ledger import _positions, nav_series

PCT = "decimal(7, 4)"
WIDE = "decimal(20, 4)"
COLUMNS = ("customer_id", "security_code", "via", "fund_code", "snapshot_date", "report_date",
           "nav_pct", "quantity", "shares", "market_value", "cost", "unrealised_pnl",
           "value_at_risk")


def position_holders(positions: ir.Table, codes: Sequence[str], as_of: date) -> ir.Table:
    snap = snapshot_date(positions, as_of)
    p = positions.join(snap, positions.snapshot_date == snap.snapshot_date)
    p = p.filter(p.security_code.isin(list(codes)))
    h = p.group_by(["customer_id", "security_code", "snapshot_date"]).aggregate(
        quantity=p.quantity.sum().cast("decimal(20, 0)"),
        cost=p.cost.sum().cast(MONEY),
        market_value=p.market_value.sum().cast(MONEY))
    h = h.filter(h.quantity > 0)
    return h.select("customer_id", "security_code", via=ibis.literal("position"),
                    fund_code=ibis.null("string"), snapshot_date=h.snapshot_date,
                    report_date=ibis.null("date"), nav_pct=ibis.null(PCT),
                    quantity=h.quantity, shares=ibis.null("decimal(20, 2)"),
                    market_value=h.market_value, cost=h.cost,
                    unrealised_pnl=money(h.market_value - h.cost),
                    value_at_risk=h.market_value)


def latest_top_holdings(top_holdings: ir.Table, as_of: date) -> ir.Table:
    """Each fund's disclosed holdings of its newest report date on or before ``as_of``."""
    t = top_holdings.filter(top_holdings.report_date <= as_of)
    newest = t.group_by("fund_code").aggregate(latest=t.report_date.max())
    j = t.join(newest, [t.fund_code == newest.fund_code, t.report_date == newest.latest])
    return j.select("fund_code", "report_date", "security_code", "nav_pct")


def fund_holders(fund_tx: ir.Table, top_holdings: ir.Table, codes: Sequence[str],
                 as_of: date) -> ir.Table:
    top = latest_top_holdings(top_holdings, as_of)
    top = top.filter(top.security_code.isin(list(codes)))
    pos = _positions(fund_tx, nav_series(fund_tx), as_of)
    j = pos.join(top, "fund_code")
    value = money(j.value)
    # exact: the same decimal type on both sides (Ibis refuses to mix (18,2) and (7,4))
    at_risk = (value.cast(WIDE) * j.nav_pct.cast(WIDE)
               * ibis.literal(Decimal("0.01"), "decimal(3, 2)"))
    pnl = ibis.cases((j.cost.notnull(), money(value - j.cost)), else_=no_money())
    return j.select("customer_id", "security_code", via=ibis.literal("fund:") + j.fund_code,
                    fund_code=j.fund_code, snapshot_date=ibis.literal(as_of, "date"),
                    report_date=j.report_date, nav_pct=j.nav_pct.cast(PCT),
                    quantity=ibis.null("decimal(20, 0)"),
                    shares=j.shares.cast("decimal(20, 2)"), market_value=value,
                    cost=money(j.cost), unrealised_pnl=pnl,
                    value_at_risk=money(at_risk.round(2)))


def holders(positions: ir.Table | None, codes: Sequence[str], as_of: date,
            fund_tx: ir.Table | None = None, top_holdings: ir.Table | None = None
            ) -> ir.Table | None:
    """Every route by which a customer holds one of ``codes`` (see the module docstring);
    None when there is neither a positions table nor funds with disclosed holdings."""
    parts = []
    if positions is not None:
        parts.append(position_holders(positions, codes, as_of))
    if fund_tx is not None and top_holdings is not None:
        parts.append(fund_holders(fund_tx, top_holdings, codes, as_of))
    if not parts:
        return None
    u = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
    return u.select(*COLUMNS).order_by(["security_code", "customer_id", "via"])
