"""Fund transactions: subscriptions, purchases, redemptions and reinvested dividends.

Each purchase is a lot. A lot is redeemed after a holding time that shrinks with the
customer's redemption propensity, and earlier still when the market falls: a customer
with high propensity who holds through one of the world's sell-offs tends to redeem a few
days after it (the "fund-redemption analysis" has something real to find). Customers who
transfer out redeem everything before they leave. Products are matched to the customer's
assessed level (R <= C) except for a small share of self-directed purchases above it;
among those, each customer favours the funds of high utility to him (``preferences``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from caifu.data.demo import preferences
from caifu.data.demo.activity import DayIndex, _active_span, _ids
from caifu.data.demo.people import Population
from caifu.data.demo.world import FUND_TYPES, World
from caifu.data.demo.writers import dates, decimals, pick

MONEY = FUND_TYPES.index("money")
SUBSCRIBE, PURCHASE, REDEEM, DIVIDEND = range(4)
TXN_TYPES = np.array(["subscribe", "purchase", "redeem", "dividend"])


@dataclass
class FundBook:
    table: pa.Table
    purchases: DayIndex
    first_fund: np.ndarray  # per customer: a fund index they bought, -1 none


def _fund_choice(world: World, rng: np.random.Generator, level: np.ndarray,
                 taste: np.ndarray, who: np.ndarray) -> np.ndarray:
    """The fund of each purchase by customer ``taste[who]`` of level ``level``: among the
    funds of his level by his utility (``preferences.PURCHASE_TEMPERATURE``), and 3 % on his
    own request among all funds.

    One uniform per draw, as ``rng.choice`` took, so the stream after it stays put."""
    topics = world.topics
    out = np.empty(len(level), np.int64)
    for c in range(1, 6):
        rows = np.flatnonzero(level == c)
        out[rows] = preferences.draw_items(taste, topics.fund, topics.fund_quality,
                                           preferences.PURCHASE_TEMPERATURE, who[rows],
                                           rng.random(len(rows)), weight=world.fund_risk <= c)
    above = np.flatnonzero(rng.random(len(level)) < 0.03)  # bought at the customer's own request
    out[above] = preferences.draw_items(taste, topics.fund, topics.fund_quality,
                                        preferences.PURCHASE_TEMPERATURE, who[above],
                                        rng.random(len(above)))
    return out


def make_fund_transactions(world: World, pop: Population, rng: np.random.Generator) -> FundBook:
    a, b = _active_span(world, pop)
    n, nd = pop.n, world.n_days
    holder = (rng.random(n) < np.clip(0.08 + 0.8 * pop.fund_aff, 0, 0.95)) & (b > a)
    k = np.where(holder, rng.poisson((0.8 + 6 * pop.fund_aff) * (b - a) / nd), 0)
    cust = np.repeat(np.arange(n), k)
    day = a[cust] + np.floor(rng.random(len(cust)) * (b - a)[cust]).astype(np.int64)
    fund = _fund_choice(world, rng, pop.c_level[cust], pop.taste, cust)
    launch = world.fund_launch[fund]
    subscribe = world.fund_new[fund] & (day < launch) & (launch - day <= 15)
    late = (day < launch) & ~subscribe
    day = np.where(late, launch + np.floor(rng.random(len(day)) * (b[cust] - launch)), day)
    day = np.where(subscribe, launch, day).astype(np.int64)
    ok = day < b[cust]
    cust, day, fund, subscribe = cust[ok], day[ok], fund[ok], subscribe[ok]
    m = len(cust)

    yuan = np.clip(pop.wealth[cust] * rng.lognormal(np.log(0.1), 0.7, m), 1_000, 5e6)
    amount = (np.round(yuan / 100) * 100 * 100).astype(np.int64)
    fee = np.round(amount * world.fund_fee[fund, 0] * 0.1).astype(np.int64)  # 1折 online
    nav = np.where(subscribe, 10_000, world.nav[fund, day])
    shares = np.round((amount - fee) * 10_000 / nav).astype(np.int64)  # in 0.01 shares

    # redemption: natural holding time, cut short by a market fall for the nervous
    prop = pop.redeem_p[cust]
    r = day + 1 + rng.exponential((1.4 - prop) * 260).astype(np.int64)
    nxt = np.searchsorted(world.fall_days, day, side="right")
    fall = np.where(nxt < len(world.fall_days),
                    world.fall_days[np.minimum(nxt, len(world.fall_days) - 1)], nd)
    panic = (fall < nd) & (rng.random(m) < 0.85 * prop)
    r = np.where(panic, np.minimum(r, fall + rng.integers(2, 10, m)), r)
    leaving = pop.churn_kind[cust] == 2
    r = np.where(leaving, np.maximum(np.minimum(r, b[cust] - 1), day + 1), r)
    redeemed = (r < b[cust]) & (r < nd)
    held_to = np.where(redeemed, r, np.minimum(b[cust], nd) - 1)

    rows = [(cust, fund, day, np.where(subscribe, SUBSCRIBE, PURCHASE), amount, shares, nav, fee)]
    ri = np.flatnonzero(redeemed)
    r_nav = world.nav[fund[ri], r[ri]]
    gross = shares[ri] * r_nav // 10_000
    r_fee = np.where(r[ri] - day[ri] < 250,
                     np.round(gross * world.fund_fee[fund[ri], 1]), 0).astype(np.int64)
    rows.append((cust[ri], fund[ri], r[ri], np.full(len(ri), REDEEM), gross - r_fee, shares[ri],
                 r_nav, r_fee))
    rows.append(_dividends(world, cust, fund, day, held_to, shares, rng))

    cols = [np.concatenate(c) for c in zip(*rows, strict=True)]
    c_cust, c_fund, c_day, c_type, c_amt, c_shares, c_nav, c_fee = cols
    o = np.lexsort((c_type, c_cust, c_day))
    cal = world.days[c_day[o]]
    table = pa.table({
        "txn_id": _ids("J", pop.chunk, len(o)), "customer_id": pick(pop.customer_id, c_cust[o]),
        "fund_account": pick(pop.fund_account, c_cust[o]),
        "fund_code": pick(world.fund_codes, c_fund[o]),
        "txn_date": dates(cal), "txn_type": pick(TXN_TYPES, c_type[o]),
        "amount": decimals(c_amt[o]), "shares": decimals(c_shares[o]),
        "nav": decimals(c_nav[o], scale=4, precision=10), "fee": decimals(c_fee[o]),
    })
    buys = c_type != DIVIDEND
    buys &= c_type != REDEEM
    first_fund = np.full(n, -1)
    first_fund[cust[::-1]] = fund[::-1]
    return FundBook(table, DayIndex.of(c_cust[buys], world.days[c_day[buys]]), first_fund)


def _dividends(world: World, cust: np.ndarray, fund: np.ndarray, day: np.ndarray,
               held_to: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> tuple:
    """Money funds carry income forward monthly; some bond/hybrid funds pay out. Both are
    reinvested (红利再投资), so a dividend row adds shares at that day's NAV."""
    months = world.days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    month_end = np.flatnonzero(np.r_[months[1:] != months[:-1], False])
    parts: list[tuple] = []
    money = np.flatnonzero(world.fund_type[fund] == MONEY)
    lo = np.searchsorted(month_end, day[money], side="right")
    hi = np.searchsorted(month_end, held_to[money], side="right")
    cnt = np.maximum(hi - lo, 0)
    lot = np.repeat(money, cnt)
    which = month_end[np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt,
                                                                             cnt))]
    amt = np.round(shares[lot] * rng.uniform(0.0011, 0.0017, len(lot))).astype(np.int64)
    parts.append((lot, which, amt, amt))
    for f in np.unique(fund):
        dd = world.fund_div_days[f]
        if not len(dd):
            continue
        dps = 0.005 + (f * 0.0137) % 0.04  # yuan per share, fixed per fund
        lots = np.flatnonzero(fund == f)
        for d in dd:
            got = lots[(day[lots] < d) & (held_to[lots] > d)]
            a = np.round(shares[got] * dps).astype(np.int64)
            parts.append((got, np.full(len(got), d), a,
                          np.round(a * 10_000 / world.nav[f, d]).astype(np.int64)))
    lot = np.concatenate([p[0] for p in parts])
    dday = np.concatenate([p[1] for p in parts]).astype(np.int64)
    amt = np.concatenate([p[2] for p in parts])
    add = np.concatenate([p[3] for p in parts])
    keep = amt > 0
    lot, dday, amt, add = lot[keep], dday[keep], amt[keep], add[keep]
    return (cust[lot], fund[lot], dday, np.full(len(lot), DIVIDEND), amt, add,
            world.nav[fund[lot], dday], np.zeros(len(lot), np.int64))
