"""Money that moves: trades, month-end positions, cash flows and fund transactions.

All vectorised over one chunk of customers. Trades follow a round-trip model per
(customer, security): buys and sells alternate and a sell closes the preceding buy, so a
position is never negative and month-end holdings can be derived exactly from the trades.
Amounts are integers in fen (prices in 0.001 yuan, NAVs in 0.0001 yuan) until written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from caifu.data.demo.people import NO_DAY, Population
from caifu.data.demo.world import (
    BOARD_BSE,
    BOARD_CHINEXT,
    BOARD_ETF,
    BOARD_STAR,
    World,
    local_micros,
)
from caifu.data.demo.writers import (
    dates,
    decimals,
    fixed_point_text,
    pick,
    sequence_ids,
    timestamps,
)

FAVOURITES = 6  # securities a customer keeps coming back to, per board
TRADE_CHANNELS = np.array(["app", "pc", "phone", "counter", "api"])


@dataclass
class DayIndex:
    """(customer, day) events, sorted, to ask "did customer c do it between lo and hi?"."""

    key: np.ndarray

    @classmethod
    def of(cls, cust: np.ndarray, day: np.ndarray) -> DayIndex:
        return cls(np.sort(cust.astype(np.int64) * NO_DAY + day))

    def first_between(self, cust: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """First day in [lo, hi] per query, NO_DAY if none."""
        if len(self.key) == 0:
            return np.full(len(cust), NO_DAY)
        base = cust.astype(np.int64) * NO_DAY
        pos = np.searchsorted(self.key, base + lo)
        val = self.key[np.minimum(pos, len(self.key) - 1)]
        found = (pos < len(self.key)) & (val <= base + hi)
        return np.where(found, val - base, NO_DAY)


def _ids(prefix: str, chunk: int, n: int) -> pa.Array:
    return sequence_ids(prefix, chunk, n)


def _active_span(world: World, pop: Population) -> tuple[np.ndarray, np.ndarray]:
    a = world.day_index(pop.active_from)
    b = world.day_index(pop.active_to, side="right")
    return a, np.maximum(b, a)


@dataclass
class TradeBook:
    table: pa.Table  # export form: price as text with 3 decimals, in trade time order
    index: DayIndex  # customers' trade days, for campaign conversions
    positions: pa.Table


def make_trades(world: World, pop: Population, rng: np.random.Generator) -> TradeBook:
    a, b = _active_span(world, pop)
    span = b - a
    n_i = rng.poisson(pop.activity * span / 21)
    cust = np.repeat(np.arange(pop.n), n_i)
    day = a[cust] + np.floor(rng.random(len(cust)) * span[cust]).astype(np.int64)
    # trading fades out over the last ~60 trading days before a customer stops
    churner = pop.churn_day[cust] < NO_DAY
    keep = ~churner | (rng.random(len(cust)) < np.clip((b[cust] - day) / 60, 0.15, 1))
    cust, day = cust[keep], day[keep]
    t = len(cust)
    cal = world.days[day]

    risk = pop.risk[cust]
    w = np.empty((t, 5))
    w[:, 0] = 1.0
    w[:, BOARD_CHINEXT] = (0.15 + 1.4 * pop.chinext_i[cust]) * (cal >= pop.chinext_day[cust])
    w[:, BOARD_STAR] = (0.1 + 0.6 * risk) * (cal >= pop.star_day[cust])
    w[:, BOARD_BSE] = (0.04 + 0.2 * risk) * (cal >= pop.bse_day[cust])
    w[:, BOARD_ETF] = 0.04 + 0.14 * (1 - risk)
    cw = np.cumsum(w, axis=1)
    board = (rng.random(t)[:, None] * cw[:, -1:] > cw).sum(axis=1)
    fav = np.stack([world.board_members[k][rng.choice(len(world.board_members[k]),
                                                      (pop.n, FAVOURITES), p=world.board_pop[k])]
                    for k in range(5)], axis=1)
    slot = np.minimum(rng.geometric(0.4, t) - 1, FAVOURITES - 1)
    sec = fav[cust, board, slot]

    morning = rng.random(t) < 0.55
    minute = np.where(morning, 570 + 120 * rng.random(t) ** 1.6, 780 + 120 * rng.random(t) ** 0.8)
    secs = (minute * 60).astype(np.int64)
    micros = local_micros(cal, secs) + rng.integers(0, 1000, t) * 1000

    order = np.lexsort((micros, sec, cust))
    cust, day, sec, micros, board = cust[order], day[order], sec[order], micros[order], board[order]
    cal = world.days[day]
    new_group = np.r_[True, (cust[1:] != cust[:-1]) | (sec[1:] != sec[:-1])]
    gstart = np.flatnonzero(new_group)
    rank = np.arange(t) - np.repeat(gstart, np.diff(np.r_[gstart, t]))
    sell = rank % 2 == 1

    tick = world.tick_milli[sec]
    px = world.price_milli[sec, day] * np.exp(rng.normal(0, 0.004, t))
    price = np.maximum(np.round(px / tick) * tick, tick).astype(np.int64)
    value = np.clip(pop.wealth[cust] * rng.uniform(0.03, 0.35, t), 2_000, 5e6)
    lots = np.maximum(np.round(value * 1000 / price / 100), np.where(board == BOARD_STAR, 2, 1))
    qty = (lots * 100).astype(np.int64)
    prev = np.maximum(np.arange(t) - 1, 0)
    qty = np.where(sell, qty[prev], qty)
    amount = (price * qty + 5) // 10
    stock = board != BOARD_ETF
    fee = np.maximum(np.round(amount * pop.commission[cust]), 500)
    fee += np.round(amount * (0.0005 * (sell & stock) + 0.00001 * stock))
    fee = fee.astype(np.int64)

    pref = rng.choice(5, pop.n, p=[0.78, 0.12, 0.03, 0.01, 0.06])
    pref = np.where((pref == 4) & (pop.activity < 3), 0, pref)
    chan = np.where(rng.random(t) < 0.9, pref[cust], rng.choice(5, t, p=[.7, .2, .05, .02, .03]))

    positions = _positions(world, pop, cust, sec, day, qty, amount + fee, new_group)
    index = DayIndex.of(cust, cal)

    out = np.argsort(micros, kind="stable")
    table = pa.table({
        "trade_id": _ids("T", pop.chunk, t), "customer_id": pick(pop.customer_id, cust[out]),
        "fund_account": pick(pop.fund_account, cust[out]), "trade_date": dates(cal[out]),
        "trade_time": timestamps(micros[out]), "security_code": pick(world.sec_codes, sec[out]),
        "side": pick(["B", "S"], sell[out]), "quantity": qty[out],
        "price": fixed_point_text(price[out], 3), "amount": decimals(amount[out]),
        "fee": decimals(fee[out]), "channel": pick(TRADE_CHANNELS, chan[out]),
    })
    return TradeBook(table, index, positions)


def _positions(world: World, pop: Population, cust: np.ndarray, sec: np.ndarray,
               day: np.ndarray, qty: np.ndarray, cost: np.ndarray,
               new_group: np.ndarray) -> pa.Table:
    gstart = np.flatnonzero(new_group)
    parts = []
    for snap in world.snapshots:
        s = int(world.day_index(np.array([snap]))[0])
        count = (np.add.reduceat((day <= s).astype(np.int64), gstart) if len(gstart)
                 else np.zeros(0, np.int64))
        last = gstart + count - 1
        held = (count % 2 == 1) & (pop.closed_day[cust[last]] > snap)
        last = last[held]
        q = qty[last]
        mv = (q * world.price_milli[sec[last], s] + 5) // 10
        parts.append(pa.table({
            "snapshot_date": dates(np.full(len(last), snap)),
            "fund_account": pick(pop.fund_account, cust[last]),
            "security_code": pick(world.sec_codes, sec[last]),
            "customer_id": pick(pop.customer_id, cust[last]), "quantity": q.astype(np.int64),
            "cost": decimals(cost[last]), "market_value": decimals(mv),
        }))
    return pa.concat_tables(parts)


def make_cash_flows(world: World, pop: Population, rng: np.random.Generator) -> tuple[pa.Table,
                                                                                     DayIndex]:
    a, b = _active_span(world, pop)
    span = b - a
    n = pop.n
    start_d = int(world.days[0])
    # first deposit of customers who opened inside the window
    first = (pop.opened >= start_d) & (span > 0)
    f_cust = np.flatnonzero(first)
    f_day = np.minimum(a[f_cust] + rng.integers(0, 4, len(f_cust)), b[f_cust] - 1)
    f_amt = np.round(pop.wealth[f_cust] * rng.uniform(0.3, 1.0, len(f_cust)) / 100) * 100
    f_dir = np.zeros(len(f_cust), np.int64)
    # ordinary deposits and withdrawals while active
    lam = span / 21 * (0.12 + 0.25 * np.minimum(pop.activity, 4) / 4)
    k = rng.poisson(lam)
    p_cust = np.repeat(np.arange(n), k)
    p_day = a[p_cust] + np.floor(rng.random(len(p_cust)) * span[p_cust]).astype(np.int64)
    p_dir = (rng.random(len(p_cust)) < 0.45).astype(np.int64)  # 1 = out
    p_amt = np.clip(pop.wealth[p_cust] * rng.lognormal(np.log(0.12), 0.8, len(p_cust)), 100, 5e7)
    p_amt = np.where((p_dir == 0) & (rng.random(len(p_cust)) < 0.8),
                     np.maximum(np.round(p_amt / 100) * 100, 100), np.round(p_amt, 2))
    # leaving: dormant customers often empty the account, transfer-outs move everything
    leave = (pop.churn_kind == 1) & (rng.random(n) < 0.5) & (span > 0)
    l_cust = np.flatnonzero(leave)
    l_day = np.maximum(b[l_cust] - 1 - rng.integers(0, 5, len(l_cust)), a[l_cust])
    l_amt = np.round(pop.wealth[l_cust] * rng.uniform(0.2, 0.9, len(l_cust)), 2)
    t_cust = np.flatnonzero((pop.churn_kind == 2) & (span > 0))
    t_day = np.minimum(world.day_index(pop.closed_day[t_cust]), world.n_days - 1)
    t_amt = np.round(pop.wealth[t_cust] * rng.uniform(0.2, 1.0, len(t_cust)), 2)
    # cash dividends in June/July for some traders
    dmonth = (world.days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12)
    div_days = np.flatnonzero((dmonth == 5) | (dmonth == 6))
    d_cust = np.flatnonzero((pop.activity > 0) & (rng.random(n) < 0.4))
    d_day = div_days[rng.integers(0, len(div_days), len(d_cust))] if len(div_days) else \
        np.zeros(len(d_cust), np.int64)
    ok = (d_day >= a[d_cust]) & (d_day < b[d_cust])
    d_cust, d_day = d_cust[ok], d_day[ok]
    d_amt = np.round(pop.wealth[d_cust] * rng.uniform(0.002, 0.02, len(d_cust)), 2)

    cust = np.r_[f_cust, p_cust, l_cust, t_cust, d_cust]
    day = np.r_[f_day, p_day, l_day, t_day, d_day].astype(np.int64)
    out = np.r_[f_dir, p_dir, np.ones(len(l_cust) + len(t_cust), np.int64),
                np.zeros(len(d_cust), np.int64)].astype(bool)
    method = np.r_[np.zeros(len(f_cust) + len(p_cust) + len(l_cust), np.int64),
                   np.ones(len(t_cust), np.int64), np.full(len(d_cust), 2)]
    fen = np.maximum(np.round(np.r_[f_amt, p_amt, l_amt, t_amt, d_amt] * 100), 1).astype(np.int64)
    secs = np.where(method == 2, 9 * 3600 + rng.integers(0, 1800, len(cust)),
                    9 * 3600 + rng.integers(0, 7 * 3600, len(cust)))
    micros = local_micros(world.days[day], secs)
    o = np.argsort(micros, kind="stable")
    table = pa.table({
        "flow_id": _ids("F", pop.chunk, len(o)), "customer_id": pick(pop.customer_id, cust[o]),
        "fund_account": pick(pop.fund_account, cust[o]), "flow_time": timestamps(micros[o]),
        "direction": pick(["in", "out"], out[o]), "amount": decimals(fen[o]),
        "method": pick(["bank_transfer", "transfer_out", "dividend"], method[o]),
    })
    deposits = ~out & (method == 0)
    return table, DayIndex.of(cust[deposits], world.days[day[deposits]])
