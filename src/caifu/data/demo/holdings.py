"""Funds' disclosed top holdings (季报前十大重仓股) for the demo's equity-like funds.

Every equity, hybrid and index fund launched before a report date discloses ten stocks of
the demo's real security list (the tradable A shares, chosen by the same popularity the
customers trade by, so a story about a popular stock reaches fund holders too) with their
percentage of the fund's NAV, largest first. Two quarterly report dates are written — the
last two quarter ends whose reports are out by the demo's end date (25 days after the
quarter) — and the later one swaps three of the ten, so exposure must pick each fund's
latest report. Percentages follow the 双十 rule: none above 10 % of NAV.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from caifu.data.demo.world import BOARD_CHINEXT, BOARD_MAIN, FUND_TYPES, World, day_number
from caifu.data.demo.writers import dates, decimals

EQUITY_LIKE = ("equity", "hybrid", "index")
TOP = 10
PUBLISHED_AFTER = timedelta(days=25)  # quarterly reports: 15 working days after quarter end


def report_dates(end: date, n: int = 2) -> list[date]:
    """The last ``n`` quarter ends whose reports are published by ``end``, oldest first."""
    out: list[date] = []
    y, q = end.year, (end.month - 1) // 3 + 1
    while len(out) < n:
        q_end = date(y, 3 * q, 31 if q in (1, 4) else 30)
        if q_end + PUBLISHED_AFTER <= end:
            out.append(q_end)
        y, q = (y, q - 1) if q > 1 else (y - 1, 4)
    return sorted(out)


def _pool(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Candidate stocks (indices into ``world.sec_codes``) and their draw weights."""
    idx = np.r_[world.board_members[BOARD_MAIN][:300], world.board_members[BOARD_CHINEXT][:100]]
    p = np.r_[world.board_pop[BOARD_MAIN][:300], world.board_pop[BOARD_CHINEXT][:100]]
    return idx, p / p.sum()


def _weights(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Ten descending percentages of NAV, each ≤ 10, rounded to 0.01 % as published."""
    total = {"equity": (45, 70), "hybrid": (25, 50), "index": (30, 45)}[kind]
    w = np.sort(rng.dirichlet(np.full(TOP, 2.0)))[::-1] * rng.uniform(*total)
    w = np.minimum(w, 9.99)
    return np.round(w * 100).astype(np.int64)  # in 0.01 %


def make_top_holdings(world: World, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 4])
    pool, p = _pool(world)
    fund_type = [FUND_TYPES[t] for t in world.fund_type]
    launched = np.asarray(world.funds["launched_on"].cast(pa.int32()).to_numpy())
    older, latest = report_dates(world.end)
    cols: dict[str, list[Any]] = {"fund_code": [], "report_date": [], "security_code": [],
                             "rank": [], "nav_pct": []}
    for f, code in enumerate(world.fund_codes):
        if fund_type[f] not in EQUITY_LIKE:
            continue
        picks = rng.choice(pool, TOP + 3, replace=False, p=p)
        first, second = picks[:TOP], np.r_[picks[:TOP - 3], picks[TOP:]]
        for day, held in ((older, first), (latest, second)):
            if launched[f] >= day_number(day):
                continue
            w = _weights(rng, fund_type[f])
            for r, (s, pct) in enumerate(zip(held, w, strict=True)):
                cols["fund_code"].append(code)
                cols["report_date"].append(day_number(day))
                cols["security_code"].append(world.sec_codes[s])
                cols["rank"].append(r + 1)
                cols["nav_pct"].append(pct)
    return pa.table({
        "fund_code": pa.array(cols["fund_code"], pa.string()),
        "report_date": dates(np.asarray(cols["report_date"], np.int64)),
        "security_code": pa.array(cols["security_code"], pa.string()),
        "rank": pa.array(cols["rank"], pa.int64()),
        "nav_pct": decimals(np.asarray(cols["nav_pct"], np.int64), 2, 7),
    })
