"""The demo broker's world: calendar, branches, advisors, securities, funds, prices, content.

Everything here is shared by all customers and built once per run from its own random
stream, so a run's customers can be generated chunk by chunk against the same world.
Days are integers (days since 1970-01-01) throughout; ``World.days`` is the window's
trading days and most arrays are indexed by position in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from caifu.core.ids import USCC_ALPHABET, make_uscc
from caifu.data import reference
from caifu.data.demo import preferences, text
from caifu.data.demo.writers import EPOCH, dates, decimals, timestamps

BOARD_MAIN, BOARD_CHINEXT, BOARD_STAR, BOARD_BSE, BOARD_ETF = range(5)
BOARD_NAMES = ("main", "chinext", "star", "bse", None)
FUND_TYPES = tuple(text.FUND_KINDS)
N_CONTENTS = 300  # two years of research, views, events and product notes: ~3 a week
MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156,
                            157, 158, 159, 166, 176, 177, 178, 180, 181, 182, 183, 185, 186, 187,
                            188, 189, 191, 198, 199])
US_PER_DAY = 86_400_000_000
UTC_OFFSET_S = 8 * 3600  # Asia/Shanghai; exported timestamps are naive UTC


def day_number(d: date) -> int:
    return (d - EPOCH).days


def to_date(n: int) -> date:
    return EPOCH + timedelta(days=int(n))


def open_days(start: date, end: date) -> np.ndarray:
    """Trading days in [start, end] as day numbers: the vendored exchange calendar where it
    has the year, weekdays outside it (so any end date works, with less realism)."""
    first, last = reference.calendar_range()
    all_days = np.arange(day_number(start), day_number(end) + 1)
    weekday = (all_days + 3) % 7 < 5  # 1970-01-01 was a Thursday
    cal = reference.trade_calendar()
    cal_days = np.asarray(cal["trade_date"].cast(pa.int32()).to_numpy())
    cal_open = np.asarray(cal["is_open"].to_numpy(zero_copy_only=False))
    inside = (all_days >= day_number(first)) & (all_days <= day_number(last))
    is_open = weekday.copy()
    is_open[inside] = cal_open[all_days[inside] - cal_days[0]]
    return all_days[is_open]


def local_micros(days: np.ndarray, local_seconds: np.ndarray) -> np.ndarray:
    """Naive-UTC microseconds for a Beijing-time second of day on a day number."""
    return (days.astype(np.int64) * 86400 + local_seconds.astype(np.int64) - UTC_OFFSET_S) * 10**6


def person_names(rng: np.random.Generator, male: np.ndarray) -> list[str]:
    n = len(male)
    ranks = np.arange(1, len(text.SURNAMES) + 1)
    p = 1 / ranks**0.9
    sur = rng.choice(len(text.SURNAMES), size=n, p=p / p.sum())
    compound = rng.random(n) < 0.004
    comp = rng.integers(0, len(text.COMPOUND_SURNAMES), n)
    two = rng.random(n) < 0.7
    g1 = rng.integers(0, 1 << 16, n)
    g2 = rng.integers(0, 1 << 16, n)
    out = []
    for i in range(n):
        chars = text.GIVEN_MALE if male[i] else text.GIVEN_FEMALE
        s = text.COMPOUND_SURNAMES[comp[i]] if compound[i] else text.SURNAMES[sur[i]]
        g = chars[g1[i] % len(chars)] + (chars[g2[i] % len(chars)] if two[i] else "")
        out.append(s + g)
    return out


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES), n)]
    return (prefix.astype(np.int64) * 10**8 + rng.integers(0, 10**8, n)).astype(str)


@dataclass
class World:
    seed: int
    start: date
    end: date
    days: np.ndarray  # trading days of the window (day numbers)
    snapshots: np.ndarray  # positions snapshot days: last 3 month-ends + end
    fall_days: np.ndarray  # indices into days where a market fall starts
    branches: pa.Table
    branch_weight: np.ndarray
    branch_city: np.ndarray
    advisors: pa.Table
    advisor_ids: np.ndarray
    advisor_branch: np.ndarray
    advisor_active: np.ndarray
    securities: pa.Table
    sec_codes: np.ndarray  # tradable universe (subset of securities)
    sec_names: np.ndarray
    sec_board: np.ndarray
    board_members: list[np.ndarray]  # per board: indices into sec_codes, by popularity
    board_pop: list[np.ndarray]
    price_milli: np.ndarray  # (n_sec, n_days) close price in 0.001 yuan
    tick_milli: np.ndarray
    funds: pa.Table
    fund_codes: np.ndarray
    fund_names: np.ndarray
    fund_type: np.ndarray  # index into FUND_TYPES
    fund_risk: np.ndarray  # 1..5
    fund_launch: np.ndarray  # index into days (0 if launched before the window)
    fund_new: np.ndarray  # launched inside the window (subscriptions happen)
    fund_fee: np.ndarray  # (n_funds, 2) purchase, redeem rate
    fund_pop: np.ndarray
    nav: np.ndarray  # (n_funds, n_days) in 0.0001 yuan
    fund_div_days: list[np.ndarray]  # per fund: indices into days of dividends
    contents: pa.Table
    content_ids: np.ndarray
    content_titles: list[str]
    topics: preferences.ItemTopics  # hidden loadings and quality of contents and funds

    @property
    def n_days(self) -> int:
        return len(self.days)

    def day_index(self, day_numbers: np.ndarray, side: str = "left") -> np.ndarray:
        return np.searchsorted(self.days, day_numbers, side=side)


def build_world(seed: int, end: date, customers: int) -> World:
    rng = np.random.default_rng([seed, 0])
    start = date(end.year - 2, end.month, 1) + timedelta(days=end.day)  # two years back
    days = open_days(start, end)
    months = (days.astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64)
    month_last = np.r_[months[1:] != months[:-1], True]
    month_ends = days[month_last & (days < days[-1])]
    snapshots = np.r_[month_ends[-3:], days[-1]]
    n_days = len(days)

    # market: a random walk with two scripted sell-offs that drive fund redemptions
    ret = rng.normal(0.0003, 0.011, n_days)
    fall_days = np.array([int(n_days * 0.35), int(n_days * 0.78)])
    for f, depth in zip(fall_days, (-0.10, -0.075), strict=True):
        ret[f:f + 4] += depth / 4
        ret[f + 4:f + 30] += 0.002
    market = np.cumsum(ret)

    branches, branch_weight, branch_city = _branches(rng, end)
    advisors, adv_ids, adv_branch, adv_active = _advisors(rng, branches, branch_weight, end,
                                                          max(len(branch_city), customers // 333))
    sec = _securities(rng, market)
    funds = _funds(rng, start, end, days, market)
    contents, content_ids, titles = _contents(rng, start, end, adv_ids, sec, funds)
    topics = preferences.item_topics(rng, contents, sec[0], funds[0], funds[8])
    return World(seed, start, end, days, snapshots, fall_days, branches, branch_weight,
                 branch_city, advisors, adv_ids, adv_branch, adv_active, *sec, *funds,
                 contents, content_ids, titles, topics)


def _branches(rng: np.random.Generator, end: date) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    n = len(text.CITIES)
    ids = [f"YYB{i + 1:03d}" for i in range(n)]
    names = [f"{text.BROKER}{c[1].removesuffix('市')}{c[3]}证券营业部" for c in text.CITIES]
    org = rng.integers(0, len(USCC_ALPHABET), (n, 8))
    codes = [make_uscc("9", "1", c[2], "".join(USCC_ALPHABET[j] for j in org[i]))
             for i, c in enumerate(text.CITIES)]
    opened = rng.integers(day_number(date(1996, 1, 1)), day_number(min(end, date(2020, 1, 1))), n)
    weight = rng.gamma(2.0, 1.0, n)
    weight[:7] *= 2.0  # the tier-1 city branches are the big ones
    table = pa.table({
        "branch_id": ids, "name": names,
        "province": [c[0] for c in text.CITIES], "city": [c[1] for c in text.CITIES],
        "credit_code": codes, "opened_on": dates(opened),
    })
    return table, weight / weight.sum(), np.arange(n)


def _advisors(rng: np.random.Generator, branches: pa.Table, weight: np.ndarray, end: date,
              n: int) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    nb = branches.num_rows
    branch = np.r_[np.arange(nb), rng.choice(nb, n - nb, p=weight)]
    role = np.where(rng.random(n) < 0.72, "advisor", "account_manager").astype(object)
    role[:nb] = "branch_manager"
    hired = rng.integers(day_number(date(2008, 1, 1)), day_number(end) - 30, n)
    active = rng.random(n) > 0.07
    active[:nb] = True
    hire_year = np.array([to_date(h).year for h in hired])
    kind = np.where(role == "account_manager", 2, 1)
    sac = [f"S0288{k}{y}{i + 1:04d}" for i, (k, y) in enumerate(zip(kind, hire_year, strict=True))]
    ids = np.array([f"TG{i + 1:05d}" for i in range(n)])
    male = rng.random(n) < 0.55
    table = pa.table({
        "advisor_id": ids, "name": person_names(rng, male),
        "branch_id": np.asarray(branches["branch_id"].to_pylist())[branch],
        "sac_number": sac, "role": role.astype(str), "mobile": mobiles(rng, n),
        "wecom_userid": [f"wx_tg{i + 1:05d}" for i in range(n)],
        "hired_on": dates(hired), "status": np.where(active, "active", "left"),
    })
    return table, ids, branch, active


def _securities(rng: np.random.Generator, market: np.ndarray) -> tuple:
    codes_t = reference.a_share_codes()
    code = np.asarray(codes_t["stock_code"].to_pylist())
    name = np.asarray(codes_t["short_name"].to_pylist())
    listed = codes_t["list_date"]
    p3 = np.array([c[:3] for c in code])
    board = np.full(len(code), -1)
    board[np.isin(p3, ["600", "601", "603", "605", "000", "001", "002", "003"])] = BOARD_MAIN
    board[np.isin(p3, ["300", "301"])] = BOARD_CHINEXT
    board[np.isin(p3, ["688", "689"])] = BOARD_STAR
    board[np.array([c[0] == "8" or c[:2] in ("43", "92") for c in code])] = BOARD_BSE
    keep = board >= 0  # drops the B shares (200/201/900)
    exchange = np.where(np.array([c[0] == "6" for c in code]), "SH",
                        np.where(board == BOARD_BSE, "BJ", "SZ"))
    industry = []
    draws = rng.integers(0, len(text.INDUSTRIES), len(code))
    for i, nm in enumerate(name):
        hint = next((ind for key, ind in text.INDUSTRY_HINTS if key in nm), None)
        industry.append(hint or text.INDUSTRIES[draws[i]])
    etf_code = np.array([e[0] for e in text.ETFS])
    stocks = pa.table({
        "security_code": code[keep], "exchange": exchange[keep], "short_name": name[keep],
        "full_name": pa.nulls(int(keep.sum()), pa.string()),
        "security_type": np.full(int(keep.sum()), "stock"),
        "board": np.array([BOARD_NAMES[b] for b in board[keep]]),
        "industry": np.asarray(industry)[keep], "listed_on": listed.filter(pa.array(keep)),
    })
    etfs = pa.table({
        "security_code": etf_code, "exchange": [e[1] for e in text.ETFS],
        "short_name": [e[2] for e in text.ETFS],
        "full_name": [f"{e[2].removesuffix('ETF')}交易型开放式指数证券投资基金" for e in text.ETFS],
        "security_type": ["etf"] * len(etf_code), "board": pa.nulls(len(etf_code), pa.string()),
        "industry": pa.nulls(len(etf_code), pa.string()),
        "listed_on": dates(rng.integers(day_number(date(2005, 1, 1)), day_number(date(2021, 1, 1)),
                                        len(etf_code))),
    })
    securities = pa.concat_tables([stocks, etfs])

    # tradable: listed, not delisted; ETFs appended as their own "board"
    tradable = keep & ~np.array([n.startswith(("退", "PT")) or "退" in n for n in name])
    tradable &= ~np.asarray(listed.is_null())
    t_code = np.r_[code[tradable], etf_code]
    t_name = np.r_[name[tradable], [e[2] for e in text.ETFS]]
    t_board = np.r_[board[tradable], np.full(len(etf_code), BOARD_ETF)]
    n_sec = len(t_code)
    score = rng.random(n_sec) + np.isin(t_code, text.POPULAR) * 10.0
    members, pops = [], []
    for b in range(5):
        idx = np.flatnonzero(t_board == b)
        idx = idx[np.argsort(-score[idx], kind="stable")]
        p = 1 / (np.arange(len(idx)) + 8.0) ** 1.1
        members.append(idx)
        pops.append(p / p.sum())

    beta = np.where(t_board == BOARD_ETF, 1.0, rng.uniform(0.7, 1.3, n_sec))
    sigma = np.array([0.018, 0.026, 0.028, 0.03, 0.004])[t_board]
    base = np.where(t_board == BOARD_ETF, rng.uniform(0.8, 5.0, n_sec),
                    np.clip(rng.lognormal(np.log(14), 0.75, n_sec), 2.0, 400.0))
    for c, px in (("600519", 1500.0), ("300750", 220.0), ("688981", 80.0), ("000858", 140.0)):
        base[t_code == c] = px
    idio = np.cumsum(rng.normal(0, 1, (n_sec, len(market))) * sigma[:, None], axis=1)
    price = base[:, None] * np.exp(beta[:, None] * market[None, :] + idio)
    tick = np.where(t_board == BOARD_ETF, 1, 10)
    price_milli = np.maximum(np.round(price * 1000 / tick[:, None]) * tick[:, None], tick[:, None])
    return (securities, t_code, t_name, t_board, members, pops, price_milli.astype(np.int64), tick)


def _funds(rng: np.random.Generator, start: date, end: date, days: np.ndarray,
           market: np.ndarray) -> tuple:
    n = 200
    shares = np.array([text.FUND_TYPE_SHARE[t] for t in FUND_TYPES])
    ftype = np.sort(rng.choice(len(FUND_TYPES), n, p=shares / shares.sum()))
    codes = rng.choice(np.arange(4000, 20000), n, replace=False)
    company = rng.integers(0, len(text.FUND_COMPANIES), n)
    names, seen, risk = [], set(), np.zeros(n, dtype=np.int64)
    for i in range(n):
        levels, themes, suffixes = text.FUND_KINDS[FUND_TYPES[ftype[i]]]
        risk[i] = int(levels[rng.integers(0, len(levels))][1])
        while True:
            nm = (text.FUND_COMPANIES[company[i]][0] + themes[rng.integers(0, len(themes))]
                  + suffixes[rng.integers(0, len(suffixes))])
            if nm not in seen:
                break
            company[i] = rng.integers(0, len(text.FUND_COMPANIES))
        seen.add(nm)
        names.append(nm)
    new = rng.random(n) < 0.18
    launch_day = np.where(
        new, rng.integers(day_number(start) + 20, day_number(end) - 20, n),
        rng.integers(day_number(date(2008, 1, 1)), day_number(start) - 30, n))
    launch_idx = np.where(new, np.searchsorted(days, launch_day), 0)
    launch_day = np.where(new, days[np.minimum(launch_idx, len(days) - 1)], launch_day)

    t = ftype
    mgmt = np.array([0.0025, 0.003, 0.012, 0.015, 0.005, 0.012, 0.006])[t]
    purchase = np.array([0.0, 0.008, 0.015, 0.015, 0.012, 0.015, 0.008])[t]
    redeem = np.array([0.0, 0.001, 0.005, 0.005, 0.005, 0.005, 0.005])[t]
    beta = np.array([0.0, 0.03, 0.7, 0.9, 1.0, 0.2, 0.3])[t]
    sigma = np.array([0.0, 0.0008, 0.006, 0.008, 0.002, 0.011, 0.002])[t]
    drift = np.array([0.0, 0.00012, 0.0002, 0.0002, 0.0, 0.0004, 0.00015])[t]
    nd = len(days)
    steps = rng.normal(0, 1, (n, nd)) * sigma[:, None] + drift[:, None]
    mret = np.r_[0.0, np.diff(market)]
    steps += beta[:, None] * mret[None, :]
    logp = np.cumsum(steps, axis=1)
    base = np.where(new, 1.0, rng.uniform(0.8, 3.5, n))
    rel = logp - logp[np.arange(n), launch_idx][:, None]  # new funds start at 1.0 at launch
    nav = np.round(base[:, None] * np.exp(rel) * 10_000).astype(np.int64)
    nav[t == FUND_TYPES.index("money")] = 10_000
    div_days = []
    for i in range(n):
        if FUND_TYPES[t[i]] in ("bond", "hybrid", "fof") and rng.random() < 0.6:
            k = rng.integers(1, 4)
            div_days.append(np.sort(rng.choice(np.arange(launch_idx[i] + 10, nd), k, replace=False)))
        else:
            div_days.append(np.array([], dtype=np.int64))
    male = rng.random(n) < 0.7
    table = pa.table({
        "fund_code": [f"{c:06d}" for c in codes], "name": names,
        "fund_type": [FUND_TYPES[i] for i in t], "risk_level": [f"R{r}" for r in risk],
        "manager_company": [text.FUND_COMPANIES[c][1] for c in company],
        "manager_name": person_names(rng, male), "launched_on": dates(launch_day),
        "mgmt_fee_rate": decimals(np.round(mgmt * 1e6).astype(np.int64), 6, 8),
        "purchase_fee_rate": decimals(np.round(purchase * 1e6).astype(np.int64), 6, 8),
        "redeem_fee_rate": decimals(np.round(redeem * 1e6).astype(np.int64), 6, 8),
    })
    pop = rng.pareto(1.5, n) + 0.05
    return (table, np.asarray(table["fund_code"].to_pylist()), np.asarray(names), t, risk,
            launch_idx, new, np.c_[purchase, redeem], pop / pop.sum(), nav, div_days)


def _contents(rng: np.random.Generator, start: date, end: date, adv_ids: np.ndarray,
              sec: tuple, funds: tuple) -> tuple[pa.Table, np.ndarray, list[str]]:
    n = N_CONTENTS
    kinds = list(text.CONTENT_TITLES)
    kind = rng.choice(len(kinds), n, p=[0.3, 0.35, 0.15, 0.2])
    sec_codes, sec_names, sec_board = sec[1], sec[2], sec[3]
    popular = np.flatnonzero(np.isin(sec_codes, text.POPULAR))
    fund_codes, fund_names, fund_risk = funds[1], funds[2], funds[4]
    titles, risk, author, s_code, f_code = [], [], [], [], []
    for i in range(n):
        k = kinds[kind[i]]
        s = popular[rng.integers(0, len(popular))]
        f = rng.integers(0, len(fund_codes))
        tpl = text.CONTENT_TITLES[k][rng.integers(0, len(text.CONTENT_TITLES[k]))]
        titles.append(tpl.format(sector=text.SECTORS[rng.integers(0, len(text.SECTORS))],
                                 index=text.INDEXES[rng.integers(0, len(text.INDEXES))],
                                 stock=sec_names[s].replace(" ", ""), fund=fund_names[f]))
        with_stock = "{stock}" in tpl
        s_code.append(sec_codes[s] if with_stock else None)
        f_code.append(fund_codes[f] if k == "product_intro" else None)
        if k == "product_intro":
            risk.append(f"R{fund_risk[f]}")
        elif with_stock:
            risk.append("R5" if sec_board[s] in (BOARD_STAR, BOARD_CHINEXT) else "R4")
        else:
            risk.append(("R2", "R3", "R3", "R4")[rng.integers(0, 4)])
        author.append(adv_ids[rng.integers(0, len(adv_ids))] if k == "advisor_view" else None)
    published = rng.integers(day_number(start) * 86400, (day_number(end) + 1) * 86400 - 1, n)
    published = np.sort(published) * 10**6
    ids = np.array([f"CT{i + 1:05d}" for i in range(n)])
    table = pa.table({
        "content_id": ids, "content_type": [kinds[k] for k in kind], "title": titles,
        "risk_level": risk, "author_advisor_id": pa.array(author, pa.string()),
        "published_at": timestamps(published), "security_code": pa.array(s_code, pa.string()),
        "fund_code": pa.array(f_code, pa.string()),
        "url": [f"https://wealth.example.com/content/{c}" for c in ids],
    })
    return table, ids, titles
