"""Customer cards: what an advisor sees of one customer, as of a date — one Ibis definition.

Each function takes the broker's tables as Ibis tables and returns a table; nothing here opens
a connection (``services/profiles/cards.py`` reads the inputs and writes the cards). Definitions:

- **Stock holdings** come from the tenant's latest positions snapshot on or before the date
  (snapshots are tenant-wide exports, so one date for everyone), summed over a customer's
  fund accounts per security; unrealised P&L = market value − cost, its percentage over cost.
- **Fund holdings** are the fund-redemption analysis' positions
  (``pipelines.fund_ledger.holder_positions``: the share ledger, FIFO lots, each fund's latest
  NAV on or before the date) — one definition of a fund position in the product. A position
  holding shares from before the history has no known cost, so no P&L.
- **Recent trades**: the last ``n`` trades on or before the date, newest first (by trade
  time, then trade id so ties are broken the same way on every engine).
- **Realised P&L** of stocks uses the profile's definition (average prices over the whole
  history, ``matched × (average sell − average buy)`` per security, before fees, each
  security rounded half away from zero to the fen), so a card and a profile agree.
- **Losing positions**: stock and fund holdings below their cost, the largest loss first.
- Money is DECIMAL(18,2) end to end; percentages are floats from exact sums.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from caifu.pipelines.amounts import money, no_money, ratio
from caifu.pipelines.fund_ledger import holder_positions


def snapshot_date(positions: ir.Table, as_of: date) -> ir.Table:
    """One row, ``snapshot_date``: the latest positions snapshot on or before ``as_of``."""
    d = positions.snapshot_date
    return positions.aggregate(snapshot_date=d.max(where=d <= as_of))


def stock_holdings(positions: ir.Table, securities: ir.Table, as_of: date) -> ir.Table:
    """Per customer and security held on the latest snapshot: quantity, cost, market value,
    unrealised P&L and its percentage, with the security's short name and board."""
    snap = snapshot_date(positions, as_of)
    p = positions.join(snap, positions.snapshot_date == snap.snapshot_date)
    h = p.group_by(["customer_id", "security_code", "snapshot_date"]).aggregate(
        # DuckDB sums BIGINT to HUGEINT whatever Ibis says (a cast to int64 is dropped as a
        # no-op): an exact decimal every engine agrees on; the card shows it as an integer
        quantity=p.quantity.sum().cast("decimal(20, 0)"), cost=money(p.cost.sum()),
        market_value=money(p.market_value.sum()))
    h = h.filter(h.quantity > 0)
    pnl = money(h.market_value - h.cost)
    names = securities.select("security_code", name="short_name", board="board")
    h = h.mutate(unrealised_pnl=pnl, unrealised_pnl_pct=ratio(pnl, h.cost))
    return h.left_join(names, "security_code").drop("security_code_right")


def fund_holdings(fund_tx: ir.Table, funds: ir.Table, customers: ir.Table, as_of: date
                  ) -> ir.Table:
    """Per customer and fund held at the end of ``as_of`` (``holder_positions``), with the
    fund's risk level and the position's P&L where its cost is known."""
    pos = holder_positions(fund_tx, funds, customers, as_of)
    risk = funds.select("fund_code", risk_level="risk_level")
    pos = pos.left_join(risk, "fund_code").drop("fund_code_right")
    pnl = ibis.cases((pos.cost.notnull(), money(pos.value - pos.cost)),
                     else_=no_money())
    return pos.select("customer_id", "fund_code", "name", "fund_type", "risk_level",
                      shares=pos.shares.cast("decimal(18, 2)"), value=money(pos.value),
                      cost=pos.cost, pnl=pnl, pnl_pct=ratio(pnl, pos.cost),
                      held_days=pos.held_days, drawdown=pos.drawdown)


def recent_trades(trades: ir.Table, securities: ir.Table, as_of: date, n: int = 10
                  ) -> ir.Table:
    """Each customer's last ``n`` trades on or before ``as_of``; ``rank`` 0 is the newest."""
    t = trades.filter(trades.trade_date <= as_of)
    t = t.mutate(rank=ibis.row_number().over(
        group_by=t.customer_id, order_by=[t.trade_time.desc(), t.trade_id.desc()]))
    t = t.filter(t["rank"] < n)
    names = securities.select("security_code", name="short_name")
    t = t.left_join(names, "security_code").drop("security_code_right")
    return t.select("customer_id", "rank", "trade_id", "trade_date", "trade_time",
                    "security_code", "name", "side", "quantity", "price",
                    amount=money(t.amount), fee=money(t.fee), channel=t.channel)


def realised_pnl(trades: ir.Table, as_of: date) -> ir.Table:
    """Per customer: ``realised_pnl`` of stocks (the profile's average-price definition) and
    ``sold_securities``, the securities it comes from."""
    t = trades.filter(trades.trade_date <= as_of)
    buy, sell = t.side == "B", t.side == "S"
    per = t.group_by(["customer_id", "security_code"]).aggregate(
        buy_qty=t.quantity.sum(where=buy), buy_amt=t.amount.sum(where=buy),
        sell_qty=t.quantity.sum(where=sell), sell_amt=t.amount.sum(where=sell))
    both = (per.buy_qty > 0) & (per.sell_qty > 0)
    matched = ibis.least(per.buy_qty, per.sell_qty).cast("float64")
    raw = ibis.cases((both, matched * (per.sell_amt.cast("float64") / per.sell_qty.cast("float64")
                                       - per.buy_amt.cast("float64")
                                       / per.buy_qty.cast("float64"))), else_=0.0)
    # floor, not round: engines round halves differently (see pipelines/profile.py)
    fen = ((raw.abs() * 100 + 0.5).floor() * raw.sign()).cast("int64")
    per = per.mutate(fen=fen, both=both.cast("int64"))
    g = per.group_by("customer_id").aggregate(fen=per.fen.sum(), sold_securities=per.both.sum())
    return g.select("customer_id", "sold_securities",
                    realised_pnl=money(g.fen.cast("float64") / 100))


def losing_positions(stocks: ir.Table | None, funds: ir.Table | None) -> ir.Table | None:
    """Stock and fund holdings below their cost: ``kind`` (stock | fund), code, name, P&L
    and its percentage — the loss an advisor is asked about first."""
    parts = []
    if stocks is not None:
        s = stocks.filter(stocks.unrealised_pnl < 0)
        parts.append(s.select("customer_id", kind=ibis.literal("stock"), code=s.security_code,
                              name=s.name, value=s.market_value, pnl=s.unrealised_pnl,
                              pnl_pct=s.unrealised_pnl_pct))
    if funds is not None:
        f = funds.filter(funds.pnl < 0)
        parts.append(f.select("customer_id", kind=ibis.literal("fund"), code=f.fund_code,
                              name=f.name, value=f.value, pnl=f.pnl, pnl_pct=f.pnl_pct))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts[0].union(parts[1])


def _collect(order: list[ir.Value], **fields: ir.Value) -> ir.Value:
    """The rows of a customer as one ordered list of structs (a card section)."""
    return ibis.struct(fields).collect(order_by=order)


def stock_section(stocks: ir.Table) -> ir.Table:
    """Per customer: the stock positions (largest value first) and their totals."""
    s = stocks
    return s.group_by("customer_id").aggregate(
        stock_positions=_collect(
            [s.market_value.desc(), s.security_code], security_code=s.security_code,
            name=s.name, board=s.board, quantity=s.quantity, cost=s.cost,
            market_value=s.market_value, unrealised_pnl=s.unrealised_pnl,
            unrealised_pnl_pct=s.unrealised_pnl_pct),
        stock_value=money(s.market_value.sum()), stock_cost=money(s.cost.sum()),
        stock_pnl=money(s.unrealised_pnl.sum()))


def fund_section(funds: ir.Table) -> ir.Table:
    """Per customer: the fund positions (largest value first) and their totals; the cost and
    P&L totals cover the positions whose cost is known."""
    f = funds
    return f.group_by("customer_id").aggregate(
        fund_positions=_collect(
            [f.value.desc(), f.fund_code], fund_code=f.fund_code, name=f.name,
            fund_type=f.fund_type, risk_level=f.risk_level, shares=f.shares, value=f.value,
            cost=f.cost, pnl=f.pnl, pnl_pct=f.pnl_pct, held_days=f.held_days,
            drawdown=f.drawdown),
        fund_value=money(f.value.sum()), fund_known_cost=money(f.cost.sum()),
        fund_pnl=money(f.pnl.sum()), fund_unknown_cost=f.cost.isnull().cast("int64").sum())


def trade_section(trades: ir.Table) -> ir.Table:
    t = trades
    return t.group_by("customer_id").aggregate(recent_trades=_collect(
        [t["rank"]], trade_id=t.trade_id, trade_date=t.trade_date, trade_time=t.trade_time,
        security_code=t.security_code, name=t.name, side=t.side, quantity=t.quantity,
        price=t.price, amount=t.amount, fee=t.fee, channel=t.channel))


def losing_section(losing: ir.Table) -> ir.Table:
    x = losing
    return x.group_by("customer_id").aggregate(losing_positions=_collect(
        [x.pnl, x.kind, x.code], kind=x.kind, code=x.code, name=x.name, value=x.value,
        pnl=x.pnl, pnl_pct=x.pnl_pct))


def latest_assessment(assessments: ir.Table, as_of: date) -> ir.Table:
    """Each customer's newest suitability assessment on or before ``as_of`` and whether it
    has expired then (valid until a date before ``as_of``)."""
    s = assessments.filter(assessments.assessed_on <= as_of)
    s = s.mutate(rank=ibis.row_number().over(
        group_by=s.customer_id, order_by=[s.assessed_on.desc(), s.assessment_id.desc()]))
    s = s.filter(s["rank"] == 0)
    return s.select("customer_id", "assessment_id", "risk_level", "score", "assessed_on",
                    "valid_until", "objective", "horizon", "questionnaire_version",
                    lowest_category=s.no_loss_tolerance.fill_null(False)
                    | s.no_civil_capacity.fill_null(False),
                    expired=s.valid_until < as_of)


def score_section(scores: ir.Table) -> ir.Table:
    """Per customer: every score of one ``model_scores`` snapshot with its reasons."""
    s = scores
    return s.group_by("customer_id").aggregate(scores=_collect(
        [s.score], score=s.score, value=s.value, model_version=s.model_version,
        scored_at=s.scored_at, reasons_json=s.reasons_json))


def task_section(tasks: ir.Table) -> ir.Table:
    """Per customer: the open tasks of one ``advisor_tasks`` snapshot, most urgent first."""
    t = tasks.filter(tasks.status == "open")
    return t.group_by("customer_id").aggregate(tasks=_collect(
        [t["rank"], t.task_id], task_id=t.task_id, kind=t.kind, advisor_id=t.advisor_id,
        rank=t["rank"], score=t.score, reasons=t.reasons, created_on=t.created_on,
        as_of=t.as_of))


def lifecycle_section(stages: ir.Table) -> ir.Table:
    """Per customer: the stage of one ``lifecycle_stages`` snapshot, since when and why."""
    s = stages
    return s.select("customer_id", stage=s.stage, stage_name=s.stage_name,
                    stage_since=s.since, days_in_stage=s.days_in_stage,
                    stage_trigger=s.trigger, stage_trigger_text=s.trigger_text)


def value_section(values: ir.Table) -> ir.Table:
    """Per customer: CLV and the efficiency formula's terms from one ``customer_value``
    snapshot."""
    v = values
    return v.select("customer_id", clv=v.clv, clv_basis=v.clv_basis, p_alive=v.p_alive,
                    acquisition_cost=v.acquisition_cost, retention_cost=v.retention_cost,
                    efficiency=v.efficiency)


def join_sections(customers: ir.Table, sections: list[ir.Table]) -> ir.Table:
    """One row per customer of ``customers`` with every section's columns (null where a
    customer has no rows in a section), ordered by customer id."""
    out = customers
    for part in sections:
        joined = out.left_join(part, out.customer_id == part.customer_id)
        out = joined.select(out, *(part[c] for c in part.columns if c != "customer_id"))
    return out.order_by("customer_id")
