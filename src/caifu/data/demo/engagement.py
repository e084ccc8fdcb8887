"""APP behaviour and marketing: app events, campaigns and their funnels.

App sessions follow app engagement and trading activity and fade before a customer stops;
ChiNext-interested customers visit the permission page (and do so in the days before they
open it), Level-2-interested ones the Level-2 page. Campaigns target eligible customers with
marketing consent; ChiNext and Level-2 campaigns have a real, trait-dependent uplift (a
clicked customer may open the permission earlier than he otherwise would), and every
conversion is an observable event (permission, deposit, fund purchase, trade) in its window.
Which content item or fund page a customer opens, and how likely he opens and clicks a
campaign's message, follow his hidden preferences (``preferences``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from caifu.data.demo import preferences
from caifu.data.demo.activity import DayIndex, _ids
from caifu.data.demo.people import DEVICES, NO_DAY, Population
from caifu.data.demo.world import (
    BOARD_CHINEXT,
    US_PER_DAY,
    World,
    day_number,
    local_micros,
    to_date,
)
from caifu.data.demo.writers import dates, decimals, pick, timestamps

EVENT_TYPES = np.array(["login", "view_quote", "view_position", "search", "add_watchlist",
                        "view_fund", "view_content", "level2_page", "open_permission_page",
                        "logout"])
PAGES = np.array(["login", "quote_detail", "position", "search", "watchlist", "fund_detail",
                  "content_detail", "level2", "permission_chinext", "logout"])
LOGIN, QUOTE, POSITION, SEARCH, WATCH, FUND, CONTENT, LEVEL2, PERMISSION, LOGOUT = range(10)

# name, channel, goal, relative start in the window, length in days
CAMPAIGNS = (
    ("2024冬季新客入金礼", "channel_qr", "funded", 0.02, 40),
    ("创业板开通有礼（2025春）", "sms", "chinext_opened", 0.12, 30),
    ("Level-2免费体验月", "app_push", "level2", 0.16, 30),
    ("基金定投节", "mass_send", "fund_purchase", 0.20, 21),
    ("沉睡客户唤醒计划", "sms", "reactivation", 0.25, 30),
    ("2025春季企微拉新", "channel_qr", "funded", 0.22, 45),
    ("创业板权限知识讲堂", "group", "chinext_opened", 0.33, 14),
    ("稳健理财周", "group", "fund_purchase", 0.38, 14),
    ("618理财节", "mass_send", "fund_purchase", 0.30, 20),
    ("Level-2年卡特惠", "sms", "level2", 0.45, 30),
    ("国庆持币过节", "app_push", "fund_purchase", 0.47, 14),
    ("降佣回流计划", "sms", "reactivation", 0.52, 45),
    ("新客首月陪伴", "group", "funded", 0.55, 30),
    ("双十一理财节", "mass_send", "fund_purchase", 0.53, 14),
    ("2026春季企微拉新", "channel_qr", "funded", 0.70, 45),
    ("创业板开通有礼（2026）", "app_push", "chinext_opened", 0.72, 30),
    ("Level-2暑期体验", "app_push", "level2", 0.85, 30),
    ("债基配置提醒", "mass_send", "fund_purchase", 0.80, 14),
    ("老客回馈季", "sms", "reactivation", 0.88, 30),
    ("指数基金训练营", "group", "fund_purchase", 0.92, 14),
)
STAGES = np.array(["targeted", "sent", "delivered", "opened", "clicked", "converted"])


@dataclass
class Campaigns:
    table: pa.Table
    start: np.ndarray  # day numbers
    end: np.ndarray
    ids: np.ndarray
    goal: list[str]
    channel: list[str]
    share: np.ndarray  # share of eligible customers targeted
    content: np.ndarray  # index into world.content_ids, -1 none


def build_campaigns(world: World, seed: int) -> Campaigns:
    rng = np.random.default_rng([seed, 2])
    s0, e0 = day_number(world.start), day_number(world.end)
    start = np.array([s0 + int(rel * (e0 - s0)) for _, _, _, rel, _ in CAMPAIGNS])
    end = np.minimum(start + np.array([c[4] for c in CAMPAIGNS]) - 1, e0)
    published = world.contents["published_at"].cast(pa.int64()).to_numpy() // (86400 * 10**6)
    content = [world.content_ids[rng.choice(np.flatnonzero(published < s))]
               if (published < s).any() and rng.random() < 0.8 else None for s in start]
    ids = np.array([f"HD{to_date(s):%Y%m}{i + 1:02d}"
                    for i, s in enumerate(start)])
    spend = np.round(rng.uniform(20_000, 300_000, len(CAMPAIGNS)), -2) * 100
    table = pa.table({
        "campaign_id": ids, "name": [c[0] for c in CAMPAIGNS],
        "channel": [c[1] for c in CAMPAIGNS], "content_id": pa.array(content, pa.string()),
        "goal": [c[2] for c in CAMPAIGNS], "starts_on": dates(start), "ends_on": dates(end),
        "spend": decimals(spend.astype(np.int64)),
    })
    index = {cid: i for i, cid in enumerate(world.content_ids)}
    return Campaigns(table, start, end, ids, [c[2] for c in CAMPAIGNS],
                     [c[1] for c in CAMPAIGNS], rng.uniform(0.04, 0.15, len(CAMPAIGNS)),
                     np.array([-1 if c is None else index[c] for c in content]))


def target_campaigns(world: World, pop: Population, camps: Campaigns, rng: np.random.Generator,
                     goals: set[str], trades: DayIndex | None = None) -> dict[int, dict]:
    """Who each campaign with a goal in ``goals`` reached and how far down the funnel.

    Applies the ChiNext and Level-2 uplift to ``pop``, so run those before trades and events
    are generated; reactivation targets customers observed not trading, so it needs
    ``trades``."""
    funnels: dict[int, dict] = {}
    end_d = day_number(world.end)
    idx = np.arange(pop.n)
    for c, goal in enumerate(camps.goal):
        if goal not in goals:
            continue
        s = int(camps.start[c])
        active = (pop.active_from <= s) & (pop.active_to > s) & pop.consent
        if goal == "chinext_opened":
            eligible, relevance = active & (pop.chinext_day > s) & (pop.activity > 0), pop.chinext_i
        elif goal == "level2":
            eligible = active & ((pop.l2_since > s) | (pop.l2_until < s))
            relevance = pop.level2_i
        elif goal == "fund_purchase":
            eligible, relevance = active, pop.fund_aff
        elif goal == "funded":
            eligible, relevance = active & (pop.opened >= s - 120), np.full(pop.n, 0.5)
        else:
            if trades is None:
                raise ValueError("reactivation campaigns need the trades index")
            quiet = trades.first_between(idx, np.full(pop.n, s - 90), np.full(pop.n, s)) == NO_DAY
            eligible = active & quiet & (pop.active_from < s - 90)
            relevance = np.full(pop.n, 0.3)
        pick = eligible & (rng.random(pop.n) < camps.share[c] * (0.5 + relevance))
        cust = np.flatnonzero(pick)
        m = len(cust)
        rel = relevance[cust]
        sent = rng.random(m) < 0.97
        delivered = sent & (rng.random(m) < (0.8 if camps.channel[c] == "app_push" else 0.93))
        liking = (np.ones(m) if camps.content[c] < 0 else
                  preferences.open_factor(pop.taste[cust], world.topics, int(camps.content[c])))
        opened = delivered & (rng.random(m) < (0.12 + 0.4 * rel) * liking)
        clicked = opened & (rng.random(m) < 0.35 * liking)
        t0 = local_micros(np.full(m, s), np.full(m, 8 * 3600 + 1800)) + rng.integers(0, 3600, m) * 10**6
        t_open = t0 + (rng.random(m) * 3 * 86400).astype(np.int64) * 10**6
        t_click = t_open + rng.integers(5, 600, m) * 10**6
        click_day = (t_click // 10**6 + 8 * 3600) // 86400
        lift = clicked & (rng.random(m) < 0.2 + 0.5 * rel)
        new_day = click_day + rng.integers(1, 8, m)
        ok = lift & (new_day < pop.active_to[cust]) & (new_day <= end_d)
        if goal == "chinext_opened":
            upd = cust[ok]
            pop.chinext_day[upd] = np.minimum(pop.chinext_day[upd], new_day[ok])
        elif goal == "level2":
            upd = cust[ok]
            pop.l2_since[upd] = new_day[ok]
            pop.l2_until[upd] = new_day[ok] + 30 * rng.integers(1, 13, len(upd)) - 1
        funnels[c] = {"cust": cust, "t0": t0, "sent": sent, "delivered": delivered,
                      "opened": opened, "clicked": clicked, "t_open": t_open, "t_click": t_click}
    return funnels


def touches_table(world: World, pop: Population, camps: Campaigns, funnels: dict[int, dict],
                  conversions: dict[str, DayIndex], rng: np.random.Generator) -> pa.Table:
    end_d = day_number(world.end)
    parts = []
    for c in sorted(funnels):
        f = funnels[c]
        cust, m, goal = f["cust"], len(f["cust"]), camps.goal[c]
        lo = np.full(m, int(camps.start[c]))
        hi = np.full(m, min(int(camps.end[c]) + 14, end_d))
        if goal == "chinext_opened":
            got = np.where((pop.chinext_day[cust] >= lo) & (pop.chinext_day[cust] <= hi),
                           pop.chinext_day[cust], NO_DAY)
        elif goal == "level2":
            got = np.where((pop.l2_since[cust] >= lo) & (pop.l2_since[cust] <= hi),
                           pop.l2_since[cust], NO_DAY)
        else:
            got = conversions[goal].first_between(cust, lo, hi)
        conv = (got < NO_DAY) & f["delivered"]
        t_conv = local_micros(np.where(conv, got, lo), np.full(m, 10 * 3600)) + \
            rng.integers(0, 6 * 3600, m) * 10**6
        sms = camps.channel[c] == "sms"
        qr = camps.channel[c] == "channel_qr"
        stages = [
            (np.ones(m, bool), f["t0"], None),
            (f["sent"], f["t0"] + 60 * 10**6, 5 if sms else None),
            (f["delivered"], f["t0"] + 90 * 10**6, None),
            (f["opened"], f["t_open"], None),
            (f["clicked"], f["t_click"], None),
            (conv, np.maximum(t_conv, f["t0"] + 120 * 10**6), 2000 if qr else None),
        ]
        for k, (mask, t, cost) in enumerate(stages):
            rows = np.flatnonzero(mask)
            parts.append((np.full(len(rows), c), cust[rows], t[rows], np.full(len(rows), k),
                          np.full(len(rows), -1 if cost is None else cost)))
    if not parts:
        cols = [np.array([], np.int64)] * 5
    else:
        cols = [np.concatenate(p) for p in zip(*parts, strict=True)]
    camp, cust, t, stage, cost = cols
    o = np.lexsort((stage, t))
    return pa.table({
        "touch_id": _ids("TC", pop.chunk, len(o)), "campaign_id": pick(camps.ids, camp[o]),
        "customer_id": pick(pop.customer_id, cust[o]), "touched_at": timestamps(t[o]),
        "stage": pick(STAGES, stage[o]), "cost": decimals(cost[o], valid=cost[o] >= 0),
    })


def make_app_events(world: World, pop: Population, rng: np.random.Generator) -> pa.Table:
    span = np.maximum(pop.active_to - pop.active_from + 1, 0)
    rate = pop.app_eng * (0.009 + 0.003 * np.minimum(pop.activity, 5))
    k = rng.poisson(rate * span)
    s_cust = np.repeat(np.arange(pop.n), k)
    s_day = pop.active_from[s_cust] + np.floor(rng.random(len(s_cust)) * span[s_cust]).astype(
        np.int64)
    churner = pop.churn_day[s_cust] < NO_DAY
    keep = ~churner | (rng.random(len(s_cust)) < np.clip((pop.active_to[s_cust] - s_day) / 90,
                                                          0.1, 1))
    s_cust, s_day = s_cust[keep], s_day[keep]
    ns = len(s_cust)
    slot = rng.choice(3, ns, p=[0.45, 0.25, 0.30])
    sec0 = np.array([9 * 3600, 13 * 3600, 19 * 3600])[slot]
    s_len = np.array([9000, 7200, 14400])[slot]
    s_t = local_micros(s_day, sec0 + (rng.random(ns) * s_len).astype(np.int64))
    n_act = 1 + rng.poisson(1.8, ns)
    logout = rng.random(ns) < 0.5
    per = 1 + n_act + logout
    ev_s = np.repeat(np.arange(ns), per)
    pos = np.arange(len(ev_s)) - np.repeat(np.cumsum(per) - per, per)
    cust = s_cust[ev_s]
    t = s_t[ev_s] + pos * rng.integers(5, 120, len(ev_s)) * 10**6
    e = len(ev_s)
    day = s_day[ev_s]

    w = np.zeros((e, 10))
    w[:, QUOTE] = 3.0
    w[:, POSITION] = 1.2 * (pop.activity[cust] > 0)
    w[:, SEARCH] = 0.8
    w[:, WATCH] = 0.4
    w[:, FUND] = 0.3 + 2.5 * pop.fund_aff[cust]
    w[:, CONTENT] = 0.5
    w[:, LEVEL2] = 2.5 * pop.level2_i[cust] ** 2
    w[:, PERMISSION] = np.where(day < pop.chinext_day[cust], 2.0 * pop.chinext_i[cust] ** 2, 0.03)
    cw = np.cumsum(w, axis=1)
    etype = (rng.random(e)[:, None] * cw[:, -1:] > cw).sum(axis=1)
    etype[pos == 0] = LOGIN
    etype[logout[ev_s] & (pos == per[ev_s] - 1)] = LOGOUT

    # the days before opening ChiNext or subscribing Level-2 leave their own trace
    extra = []
    for days_, et in ((pop.chinext_day, PERMISSION), (pop.l2_since, LEVEL2)):
        who = np.flatnonzero((days_ < NO_DAY) & (days_ > pop.active_from + 3)
                             & (pop.app_eng > 0))
        reps = rng.integers(1, 4, len(who))
        c = np.repeat(who, reps)
        d = np.maximum(days_[c] - rng.integers(1, 21, len(c)), pop.active_from[c])
        extra.append((c, d, local_micros(d, rng.integers(9 * 3600, 22 * 3600, len(c))),
                      np.full(len(c), et)))
    cust = np.concatenate([cust] + [x[0] for x in extra])
    t = np.concatenate([t] + [x[2] for x in extra])
    etype = np.concatenate([etype] + [x[3] for x in extra])
    return _event_table(world, pop, rng, cust, t, etype)


def _event_table(world: World, pop: Population, rng: np.random.Generator, cust: np.ndarray,
                 t: np.ndarray, etype: np.ndarray) -> pa.Table:
    e = len(cust)
    published = world.contents["published_at"].cast(pa.int64()).to_numpy()
    etype = np.where((etype == CONTENT) & (t <= published.min()), SEARCH, etype)
    content = _by_taste(world.topics.content, world.topics.content_quality, pop, cust, t,
                        etype == CONTENT, rng.random(e), preferences.CONTENT_TEMPERATURE,
                        published, recency=True)
    wb = np.stack([np.ones(e), 0.2 + 1.5 * pop.chinext_i[cust], 0.1 + 0.5 * pop.risk[cust],
                   np.full(e, 0.05), np.full(e, 0.3)], axis=1)
    cw = np.cumsum(wb, axis=1)
    board = (rng.random(e)[:, None] * cw[:, -1:] > cw).sum(axis=1)
    sec = np.zeros(e, np.int64)
    for b in range(5):
        rows = np.flatnonzero(board == b)
        sec[rows] = world.board_members[b][rng.choice(len(world.board_members[b]), len(rows),
                                                      p=world.board_pop[b])]
    with_sec = np.isin(etype, (QUOTE, WATCH, LEVEL2)) | ((etype == SEARCH) & (rng.random(e) < .6))
    announced = np.where(world.fund_new, world.days[world.fund_launch] - 15, 0) * US_PER_DAY
    fund = _by_taste(world.topics.fund, world.topics.fund_quality, pop, cust, t, etype == FUND,
                     rng.random(e), preferences.FUND_VIEW_TEMPERATURE, announced)
    star_page = (etype == PERMISSION) & (board != BOARD_CHINEXT) & (rng.random(e) < 0.2)
    page = np.where(star_page, len(PAGES), etype)
    device = np.where(rng.random(e) < 0.95, pop.device[cust], rng.integers(0, 4, e))
    o = np.argsort(t, kind="stable")
    return pa.table({
        "event_id": _ids("E", pop.chunk, e), "customer_id": pick(pop.customer_id, cust[o]),
        "event_time": timestamps(t[o]), "event_type": pick(EVENT_TYPES, etype[o]),
        "page": pick([*PAGES, "permission_star"], page[o]),
        "security_code": pick(world.sec_codes, sec[o], with_sec[o]),
        "fund_code": pick(world.fund_codes, np.maximum(fund[o], 0), fund[o] >= 0),
        "content_id": pick(world.content_ids, np.maximum(content[o], 0), content[o] >= 0),
        "device": pick(DEVICES, device[o]),
    })


def _by_taste(loadings: np.ndarray, quality: np.ndarray, pop: Population, cust: np.ndarray,
              t: np.ndarray, rows: np.ndarray, uniform: np.ndarray, temperature: float,
              since: np.ndarray, recency: bool = False) -> np.ndarray:
    """The item each event in ``rows`` looked at, drawn by the customer's utility among the
    items available at its time (-1 for the other events)."""
    out = np.full(len(cust), -1, np.int64)
    at = np.flatnonzero(rows)
    out[at] = preferences.draw_items(pop.taste, loadings, quality, temperature, cust[at],
                                     uniform[at], at=t[at], since=since, recency=recency)
    return out
