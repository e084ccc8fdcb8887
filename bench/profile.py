"""Profile pipeline: caifu (Ibis) beside the same features hand-written in DuckDB SQL, same run.

    python bench/profile.py                  # 1M customers / 50M trades / 5M fund txns / 20M events
    python bench/profile.py --quick          # 100k / 5M / 500k / 2M, a fast check
    python bench/profile.py --rounds 5 --spark same --duckdb-profile --keep

``caifu.pipelines.profile.profile_features`` runs on the bench broker through
``DuckDBSession`` exactly as a build runs it: master data (customers, accounts, securities,
fund products, suitability assessments, WeCom follows) copied in from Arrow with
``from_arrow``, facts (trades, positions, cash flows, fund transactions, APP events) as
Parquet views with ``read_parquet``, and ``to_arrow`` materialising the 76-column result.
The reference is the same definitions hand-written as one DuckDB SQL script of CTEs
(``reference_sql``) that reads the same Parquet files, on a DuckDB connection with the same
``memory_limit`` and threads. Each engine runs in its own child process, ``--rounds`` times,
in alternating order; the parent samples the child's process-tree RSS every 50 ms. Every
column of both outputs is compared (money, counts and dates exactly, floats within 1e-9
relative). Spark (``SparkSession("local[2]")``, same Ibis expression) runs for reference,
by default at the quick size with caifu-on-DuckDB beside it at that size (``--spark``; at
the full size, ``--spark same``, it takes about 9 minutes and 17 GB of RSS on 2 cores).
The machine may be shared: each child waits (``--quiet-wait``) until it has been idle for
6 s, and a run during which other processes used more than ``--max-background`` cores is
repeated; the background CPU of every run is reported.

Data is generated with numpy/pyarrow from a fixed seed, in the contracts' Arrow types, and
cached under ``.bench/profile/`` keyed by size. It plants the edges the definitions care
about: customers opened after the as-of date or on it, customers with no trades or who
stopped trading, trades and fund transactions after the as-of date, positions snapshots at
month-ends held in two accounts, tied worst positions, fund redemptions (some of everything
held), NAV corrections, logins on weekends and the National Day holiday, events, cash flows
and WeCom removals at the UTC+8 midnight of each window edge, expired and same-day
suitability assessments, Level-2 ending the day before the as-of date.

Benchmarks run on demand, never in the test suite. Results: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _measure import busy_cpu, tree_rss

# This file shares its name with the standard library's ``profile`` (which cProfile, and so
# PySpark, imports): keep bench/ off the import path so that import finds the stdlib module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
DATA = CACHE / "profile"
GEN_VERSION = 1
SEED = 20251126
AS_OF = dt.date(2025, 11, 2)  # a Sunday, two days after the October month-end snapshot
DATA_END = dt.date(2025, 11, 14)  # facts continue after the as-of date, as a rebuild sees them
TRADES_FROM = dt.date(2024, 1, 2)
FUNDS_FROM = dt.date(2023, 1, 3)
EVENTS_FROM = dt.date(2025, 1, 1)
CASH_FROM = dt.date(2024, 1, 1)
OFFSET = 8  # Asia/Shanghai
GOAL = 1.3
CHUNK = 1 << 20
MASTER = ("customers", "accounts", "securities", "fund_products", "suitability_assessments",
          "wecom_follows")
FACTS = ("trades", "positions", "cash_flows", "fund_transactions", "app_events")
EPOCH = dt.date(1970, 1, 1)
SECOND_ACCOUNT = 5_000_000_000  # fund_account number offset of a customer's second account


@dataclass(frozen=True)
class Sizes:
    customers: int
    trades: int
    fund_txns: int
    events: int

    def key(self, seed: int) -> str:
        return (f"v{GEN_VERSION}-c{self.customers}-t{self.trades}-f{self.fund_txns}"
                f"-e{self.events}-s{seed}")

    def label(self) -> str:
        return (f"{self.customers:,} customers / {self.trades:,} trades / "
                f"{self.fund_txns:,} fund txns / {self.events:,} events")


FULL = Sizes(1_000_000, 50_000_000, 5_000_000, 20_000_000)
QUICK = Sizes(100_000, 5_000_000, 500_000, 2_000_000)


def day_of(d: dt.date) -> int:
    return (d - EPOCH).days


def utc_micros_of_local_midnight(d: dt.date) -> int:
    """The UTC instant (µs, naive) at which local day ``d`` begins in UTC+8."""
    return (day_of(d) * 86400 - OFFSET * 3600) * 10**6


# --- vectorised value builders ----------------------------------------------------------------


def _fixed_strings(m: np.ndarray) -> pa.Array:
    """Rows of an (n, w) uint8 ASCII matrix as a string array, without Python objects."""
    n, w = m.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [
        None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(m).tobytes())])


def codes(prefix: str, nums: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``nums``: C000000001, F0000000001 ..."""
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    m = np.empty((len(nums), len(p) + width), dtype=np.uint8)
    m[:, : len(p)] = p
    v = np.asarray(nums, dtype=np.int64).copy()
    for k in range(len(p) + width - 1, len(p) - 1, -1):
        m[:, k] = 48 + v % 10
        v //= 10
    return _fixed_strings(m)


def decimals(units: np.ndarray, precision: int = 18, scale: int = 2) -> pa.Array:
    """Exact decimal128 from integers counted in 10**-scale (fen for money)."""
    v = np.ascontiguousarray(units, dtype=np.int64)
    buf = np.empty((len(v), 2), dtype=np.int64)
    buf[:, 0] = v
    buf[:, 1] = np.where(v < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(v),
                                 [None, pa.py_buffer(buf.tobytes())])


def dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32),
                    mask=None if valid is None else ~valid).cast(pa.date32())


def stamps(micros: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(micros, dtype=np.int64),
                    mask=None if valid is None else ~valid).cast(pa.timestamp("us"))


def pick(values: list[str], idx: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    out = pa.array(values, pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))
    return out if valid is None else pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def unit(a: np.ndarray | int, b: np.ndarray | int, salt: int) -> np.ndarray:
    """A uniform [0, 1) that depends only on (a, b, salt): stable across chunks and snapshots."""
    with np.errstate(over="ignore"):
        a64 = np.asarray(a, dtype=np.int64).astype(np.uint64)
        b64 = np.asarray(b, dtype=np.int64).astype(np.uint64)
        h = _mix(_mix(a64 ^ np.uint64((salt * 0x632BE59BD9B4E019) % 2**64)) ^ b64)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def personal_security(c: np.ndarray, k: np.ndarray, n_sec: int) -> np.ndarray:
    """The k-th security customer c trades or holds; popular codes come up more often."""
    return np.minimum((n_sec * unit(c, k, 1) ** 3).astype(np.int64), n_sec - 1)


def price_milli(sec: np.ndarray, day: np.ndarray) -> np.ndarray:
    """A security's price on a day, in 0.001 yuan: a slow wave around its own level."""
    base = 3_000 + unit(sec, 0, 2) ** 2 * 197_000
    wave = 1 + 0.3 * np.sin(day / 37.0 + sec * 0.7)
    return np.maximum(1_000, (base * wave).astype(np.int64))


def _table(name: str, n: int, cols: dict[str, pa.Array]) -> pa.Table:
    """All contract columns in order and contract types; columns not given are null."""
    from caifu.data.contracts import registry
    from caifu.data.contracts.arrow import contract_schema

    schema = contract_schema(registry()[name])
    unknown = set(cols) - set(schema.names)
    assert not unknown, (name, unknown)
    arrays = [cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type)
              for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _calendar_days(first: dt.date, last: dt.date) -> np.ndarray:
    return np.arange(day_of(first), day_of(last) + 1, dtype=np.int64)


def _trading_days(first: dt.date, last: dt.date) -> np.ndarray:
    from caifu.data.reference import trading_days

    return np.array([day_of(d) for d in trading_days(first, last)], dtype=np.int64)


def _month_end_snapshots() -> list[dt.date]:
    """The last trading day of May … October 2025 (month-end positions exports)."""
    from caifu.data.reference import trading_days

    out = []
    for month in range(5, 11):
        days = trading_days(dt.date(2025, month, 1), dt.date(2025, month + 1, 1)
                            - dt.timedelta(days=1))
        out.append(days[-1])
    return out


# --- the generated broker ---------------------------------------------------------------------

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红玲芬燕彬鹏辉建国志文斌宇浩凯晨欣怡")
CHANNELS = ["branch", "app", "wecom", "bank", "internet", "referral", "campaign"]
N_BRANCHES, N_ADVISORS = 120, 3000
FUND_TYPES = ["money", "bond", "hybrid", "equity", "index", "qdii", "fof"]
FUND_RISK = {"money": 0, "bond": 1, "hybrid": 2, "equity": 3, "index": 3, "qdii": 4, "fof": 2}
RISK = ["R1", "R2", "R3", "R4", "R5"]
EVENT_TYPES = ["login", "view_quote", "view_fund", "view_content", "search", "add_watchlist",
               "view_position", "open_permission_page", "level2_page", "logout"]
EVENT_P = [0.35, 0.25, 0.08, 0.08, 0.07, 0.04, 0.08, 0.01, 0.01, 0.03]


class Population:
    """Who the customers are, shared by every generated table (deterministic from the seed)."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 1])
        self.n = n
        self.c = np.arange(n, dtype=np.int64)
        opened = rng.integers(day_of(dt.date(2005, 1, 1)), day_of(AS_OF) + 1, n)
        late = rng.random(n) < 0.005  # opened after the as-of date: not in the profile
        opened[late] = rng.integers(day_of(AS_OF) + 1, day_of(DATA_END) + 1, int(late.sum()))
        opened[rng.random(n) < 0.001] = day_of(AS_OF)  # opened on the as-of date: tenure 0
        self.opened = opened
        self.second = self.c % 10 == 3  # customers with a second fund account
        perm = rng.permutation(n)
        self.traders = perm[: int(n * 0.8)]  # by trading activity; the other 20 % never trade
        # a quarter of traders stop at some point (trading_stopped_on, RFM recency)
        stop = np.full(n, day_of(DATA_END) + 1, dtype=np.int64)
        stops = rng.random(n) < 0.25
        stop[stops] = rng.integers(day_of(TRADES_FROM), day_of(DATA_END) + 1, int(stops.sum()))
        self.stop = stop
        self.app_users = rng.permutation(n)[: int(n * 0.7)]
        self.fund_users = rng.permutation(n)[: int(n * 0.3)]
        self.cash_users = rng.permutation(n)[: int(n * 0.85)]

    @staticmethod
    def customer_ids(c: np.ndarray) -> pa.Array:
        return codes("C", c + 1, 9)

    def fund_accounts(self, c: np.ndarray, use_second: np.ndarray | None = None) -> pa.Array:
        num = c + 1
        if use_second is not None:
            num = np.where(use_second & self.second[c], num + SECOND_ACCOUNT, num)
        return codes("F", num, 10)


def gen_customers(pop: Population, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 2])
    n = pop.n
    names = pc.binary_join_element_wise(
        pick(SURNAMES, rng.integers(0, len(SURNAMES), n)),
        pick(GIVEN, rng.integers(0, len(GIVEN), n)),
        pick([*GIVEN, *[""] * 30], rng.integers(0, len(GIVEN) + 30, n)), "")
    branch = rng.integers(1, N_BRANCHES + 1, n)
    advisor = branch + N_BRANCHES * rng.integers(0, N_ADVISORS // N_BRANCHES, n)
    status = rng.choice(4, n, p=[0.85, 0.10, 0.01, 0.04])
    closed = np.minimum(pop.opened + rng.integers(30, 3000, n), day_of(AS_OF))
    return _table("customers", n, {
        "customer_id": pop.customer_ids(pop.c),
        "name": names,
        "customer_type": pick(["individual", "institution"], (rng.random(n) < 0.02).astype(int)),
        "id_type": pick(["resident_id"], np.zeros(n, dtype=np.int64)),
        "id_number": codes("", rng.integers(10**17, 10**18 - 1, n), 18),
        "gender": pick(["F", "M"], rng.integers(0, 2, n)),
        "birth_date": dates(rng.integers(day_of(dt.date(1950, 1, 1)),
                                         day_of(dt.date(2005, 12, 31)), n)),
        "mobile": codes("1", rng.integers(3 * 10**9, 10**10 - 1, n), 10),
        "branch_id": codes("B", branch, 4),
        "advisor_id": pc.if_else(pa.array(rng.random(n) < 0.9), codes("A", advisor, 5),
                                 pa.scalar(None, pa.string())),
        "opened_on": dates(pop.opened),
        "channel": pick(CHANNELS, rng.integers(0, len(CHANNELS), n)),
        "status": pick(["normal", "dormant", "frozen", "closed"], status),
        "closed_on": dates(closed, status == 3),
        "professional": pa.array(rng.random(n) < 0.02),
        "marketing_consent": pa.array(rng.random(n) < 0.6),
    })


def gen_accounts(pop: Population, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 3])
    sec = pop.c[pop.second]
    c = np.concatenate([pop.c, sec])
    is2 = np.concatenate([np.zeros(pop.n, bool), np.ones(len(sec), bool)])
    n = len(c)
    end = day_of(DATA_END)
    opened = np.minimum(pop.opened[c] + np.where(is2, rng.integers(0, 1500, n), 0), end)

    def granted(share: float) -> pa.Array:  # uniform between opening and the data's end
        d = opened + (rng.random(n) * (end - opened + 1)).astype(np.int64)
        return dates(d, rng.random(n) < share)

    l2 = rng.random(n) < 0.08
    since = opened + (rng.random(n) * (end - opened + 1)).astype(np.int64)
    kind = rng.choice(4, n, p=[0.60, 0.25, 0.10, 0.05])  # a year, open-ended, ended, ends today
    until = np.select([kind == 0, kind == 2, kind == 3],
                      [since + 365, np.full(n, day_of(AS_OF) - 1), np.full(n, day_of(AS_OF))], 0)
    status = np.where(is2, rng.choice(4, n, p=[0.80, 0.02, 0.10, 0.08]),
                      rng.choice(4, n, p=[0.95, 0.01, 0.03, 0.01]))
    return _table("accounts", n, {
        "fund_account": codes("F", c + 1 + np.where(is2, SECOND_ACCOUNT, 0), 10),
        "customer_id": pop.customer_ids(c),
        "sh_account": codes("A", c + 1, 9),
        "sz_account": codes("0", c + 1, 9),
        "opened_on": dates(opened),
        "status": pick(["normal", "frozen", "closed", "transferred_out"], status),
        "chinext_opened_on": granted(0.3),
        "star_opened_on": granted(0.1),
        "bse_opened_on": granted(0.03),
        "margin_opened_on": granted(0.05),
        "level2_since": dates(since, l2),
        "level2_until": dates(until, l2 & (kind != 1)),
    })


def gen_securities() -> pa.Table:
    """The vendored A-share master (5,640 codes)."""
    from caifu.data.reference import a_share_codes

    t = a_share_codes()
    code = t["stock_code"]
    first = pc.utf8_slice_codeunits(code, 0, 1)
    first3 = pc.utf8_slice_codeunits(code, 0, 3)
    bj = pc.or_(pc.is_in(first, pa.array(["4", "8"])), pc.equal(first3, "920"))
    sh = pc.is_in(first, pa.array(["6", "9"]))
    board = pc.if_else(bj, "bse", pc.if_else(pc.equal(first3, "688"), "star", pc.if_else(
        pc.is_in(first3, pa.array(["300", "301"])), "chinext", "main")))
    return _table("securities", t.num_rows, {
        "security_code": code, "exchange": pc.if_else(bj, "BJ", pc.if_else(sh, "SH", "SZ")),
        "short_name": t["short_name"], "security_type": pa.array(["stock"] * t.num_rows),
        "board": board, "listed_on": t["list_date"]})


def n_funds(sizes: Sizes) -> int:
    return max(200, min(3000, sizes.customers // 300))


def gen_fund_products(n_fund: int, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 4])
    i = np.arange(n_fund)
    ftype = rng.choice(len(FUND_TYPES), n_fund, p=[0.15, 0.25, 0.25, 0.15, 0.12, 0.04, 0.04])
    risk = np.array([FUND_RISK[FUND_TYPES[t]] for t in ftype])
    risk = np.clip(risk + (rng.random(n_fund) < 0.15) * rng.choice([-1, 1], n_fund), 0, 4)
    return _table("fund_products", n_fund, {
        "fund_code": codes("", 100_000 + 7 * i, 6),
        "name": pc.binary_join_element_wise(pick(FUND_TYPES, ftype), codes("基金", i, 4), ""),
        "fund_type": pick(FUND_TYPES, ftype),
        "risk_level": pick(RISK, risk),
        "manager_company": pick(["华夏基金", "易方达基金", "南方基金", "广发基金", "嘉实基金"],
                                i % 5),
        "launched_on": dates(rng.integers(day_of(dt.date(2002, 1, 1)),
                                          day_of(dt.date(2022, 12, 31)), n_fund)),
        "mgmt_fee_rate": decimals(np.where(ftype == 0, 3000, 12000), 8, 6),
    })


def _within_group(counts: np.ndarray) -> np.ndarray:
    """0, 1, … within each run of ``np.repeat(x, counts)``."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def gen_suitability(pop: Population, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 5])
    k = rng.choice(4, pop.n, p=[0.08, 0.57, 0.25, 0.10])
    c = np.repeat(pop.c, k)
    j = _within_group(k)
    n = len(c)
    gap = np.where(j == 0, rng.integers(0, 60, n), rng.integers(180, 1000, n))
    gap[(j > 0) & (rng.random(n) < 0.02)] = 0  # same-day re-assessment: the id breaks the tie
    first = np.repeat(np.cumsum(k) - k, k)
    cum = np.cumsum(gap)
    assessed = pop.opened[c] + cum - (cum[first] - gap[first])
    keep = assessed <= day_of(DATA_END)  # later ones after the as-of date stay in
    c, assessed, n = c[keep], assessed[keep], int(keep.sum())
    ids = rng.permutation(n) + 1  # ids not in date order, so the tie-break matters
    level = rng.choice(5, n, p=[0.10, 0.25, 0.35, 0.20, 0.10])
    return _table("suitability_assessments", n, {
        "assessment_id": codes("S", ids, 10),
        "customer_id": pop.customer_ids(c),
        "questionnaire_version": pick(["2021v2", "2023v1"],
                                      (assessed >= day_of(dt.date(2023, 1, 1))).astype(int)),
        "assessed_on": dates(assessed),
        "score": pa.array(rng.integers(0, 101, n)),
        "risk_level": pick(["C1", "C2", "C3", "C4", "C5"], level),
        "no_loss_tolerance": pa.array((level == 0) & (rng.random(n) < 0.1)),
        "no_civil_capacity": pa.array(rng.random(n) < 0.002),
        "objective": pick(["preserve", "income", "steady", "growth", "aggressive"], level),
        "horizon": pick(["short", "medium", "long"], rng.integers(0, 3, n)),
        "valid_until": dates(assessed + 730),  # two years: many expired by the as-of date
    })


def gen_wecom_follows(pop: Population, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, 6])
    n0 = pop.n
    followed = pop.c[rng.random(n0) < 0.45]
    twice = followed[rng.random(len(followed)) < 0.08]  # also followed by a second advisor
    unknown = int(n0 * 0.05)  # external contacts not (yet) linked to a customer
    c = np.concatenate([followed, twice, np.zeros(unknown, np.int64)])
    linked = np.concatenate([np.ones(len(followed) + len(twice), bool), np.zeros(unknown, bool)])
    n = len(c)
    lo, hi = utc_micros_of_local_midnight(dt.date(2021, 1, 1)), \
        utc_micros_of_local_midnight(DATA_END + dt.timedelta(days=1))
    added = rng.integers(lo, hi, n)
    removed = added + rng.integers(86400 * 10**6, 800 * 86400 * 10**6, n)
    is_removed = (rng.random(n) < 0.18) & (removed < hi)
    # at the UTC+8 midnight ending the as-of date: 23:30 local is removed, 00:30 is not yet
    edge = utc_micros_of_local_midnight(AS_OF + dt.timedelta(days=1))
    near = rng.random(n) < 0.01
    removed = np.where(near, edge + rng.choice([-1, 1], n) * 30 * 60 * 10**6, removed)
    is_removed |= near
    added = np.where(near, np.minimum(added, edge - 86400 * 10**6), added)
    late_add = (rng.random(n) < 0.005) & ~is_removed
    added = np.where(late_add, edge + rng.choice([-1, 1], n) * 30 * 60 * 10**6, added)
    status = np.where(is_removed, 1 + (rng.random(n) < 0.3), 0)
    advisor = rng.integers(1, N_ADVISORS + 1, n)
    return _table("wecom_follows", n, {
        "advisor_id": codes("A", advisor, 5),
        "external_userid": codes("wm", np.arange(n) * 7919 + 13, 14),
        "customer_id": pc.if_else(pa.array(linked), pop.customer_ids(c),
                                  pa.scalar(None, pa.string())),
        "added_at": stamps(added),
        "state": pick(["qr_branch", "campaign", "referral"], rng.integers(0, 3, n)),
        "status": pick(["active", "deleted_by_customer", "deleted_by_advisor"], status),
        "removed_at": stamps(removed, is_removed),
    })


def _draw_active(rng: np.random.Generator, pop: Population, day: np.ndarray,
                 power: float) -> np.ndarray:
    """Traders by a heavy-tailed activity rank, redrawn until open and not yet stopped."""
    n = len(day)
    pool = pop.traders
    c = np.empty(n, dtype=np.int64)
    todo = np.arange(n)
    for _ in range(30):
        rank = np.minimum((len(pool) * rng.random(len(todo)) ** power).astype(np.int64),
                          len(pool) - 1)
        c[todo] = pool[rank]
        ok = (pop.opened[c[todo]] <= day[todo]) & (day[todo] < pop.stop[c[todo]])
        todo = todo[~ok]
        if not len(todo):
            break
    return c


def trade_chunk(pop: Population, seed: int, lo: int, hi: int, total: int,
                sec_codes: pa.Array, days: np.ndarray) -> pa.Table:
    rng = np.random.default_rng([seed, 10, lo])
    n = hi - lo
    i = np.arange(lo, hi, dtype=np.int64)
    day = days[(i * len(days)) // total]  # the file is in time order, like an export
    c = _draw_active(rng, pop, day, 2.0)
    k = (24 * rng.random(n) ** 2.5).astype(np.int64)
    sec = personal_security(c, k, len(sec_codes))
    local = np.where(rng.random(n) < 0.5, rng.integers(34200, 41400, n),
                     rng.integers(46800, 54000, n))
    micros = (day * 86400 + local - OFFSET * 3600) * 10**6 + rng.integers(0, 10**6, n)
    sell = rng.random(n) < 0.48
    price = np.maximum(1_000, (price_milli(sec, day) * (1 + 0.01 * rng.standard_normal(n)))
                       .astype(np.int64))
    qty = 100 * rng.integers(1, 60, n)
    amount = (price * qty + 5) // 10  # fen
    fee = np.maximum(500, (amount * 25 + 50_000) // 100_000) + np.where(sell, (amount + 500) // 1000,
                                                                      0)
    return _table("trades", n, {
        "trade_id": codes("T", i + 1, 12),
        "customer_id": pop.customer_ids(c),
        "fund_account": pop.fund_accounts(c, rng.random(n) < 0.3),
        "trade_date": dates(day),
        "trade_time": stamps(micros),
        "security_code": sec_codes.take(pa.array(sec)),
        "side": pick(["B", "S"], sell.astype(np.int64)),
        "quantity": pa.array(qty.astype(np.int64)),
        "price": decimals(price, 12, 3),
        "amount": decimals(amount),
        "fee": decimals(fee),
        "channel": pick(["app", "pc", "phone", "counter", "api"],
                        rng.choice(5, n, p=[0.7, 0.15, 0.05, 0.05, 0.05])),
    })


def gen_positions(pop: Population, sec_codes: pa.Array, snaps: list[dt.date]
                  ) -> tuple[pa.Table, dict[str, int]]:
    """Month-end snapshots; a tenth of holders also hold their first security in a second
    account (so a customer's position is a sum), and some have two positions tied for worst."""
    n_sec = len(sec_codes)
    parts, planted = [], {"two_account_rows": 0, "tied_worst_customers": 0}
    for s in snaps:
        d = day_of(s)
        c = pop.c
        u = unit(c, 0, 20)
        holder = (u < 0.5) | ((u < 0.62) & (unit(c, d, 21) < 0.5))
        holder &= pop.opened <= d
        h_c = 1 + (6 * unit(c, 0, 22) ** 2).astype(np.int64) + (unit(c, d, 23) < 0.25)
        hc = c[holder]
        counts = h_c[holder]
        cc = np.repeat(hc, counts)
        k = _within_group(counts)
        sec = personal_security(cc, k, n_sec)
        _, first = np.unique(cc * n_sec + sec, return_index=True)
        cc, sec, k = cc[first], sec[first], k[first]
        qty = 100 * (1 + (unit(cc, sec, 25) * 100).astype(np.int64))
        cost_price = price_milli(sec, np.full(len(sec), day_of(dt.date(2025, 1, 2)))) \
            * (0.6 + 0.8 * unit(cc, sec, 26))
        cost = (qty * cost_price.astype(np.int64) + 5) // 10
        mv = (qty * price_milli(sec, np.full(len(sec), d)) + 5) // 10
        # two positions of the same customer with the same loss: the lower code is the worst
        order = np.lexsort((sec, cc))
        first_row = np.r_[True, cc[order][1:] != cc[order][:-1]]
        group = np.cumsum(first_row) - 1
        rank, count = np.empty(len(cc), np.int64), np.empty(len(cc), np.int64)
        rank[order] = np.arange(len(cc)) - np.flatnonzero(first_row)[group]
        count[order] = np.bincount(group)[group]
        tie = (cc % 53 == 0) & (rank < 2) & (count >= 2)
        mv = np.where(tie, cost - 123_456, mv)
        planted["tied_worst_customers"] += int(len(np.unique(cc[tie])))
        # a tenth of holders also hold their first security in their second account
        two = (k == 0) & pop.second[cc] & (unit(cc, d, 24) < 0.5) & (cc % 53 != 0)
        acct2 = np.concatenate([np.zeros(len(cc), bool), np.ones(int(two.sum()), bool)])
        q2 = 100 * (1 + (unit(cc[two], sec[two], 27) * 50).astype(np.int64))
        cost = np.concatenate([cost, (q2 * cost_price[two].astype(np.int64) + 5) // 10])
        mv = np.concatenate([mv, (q2 * price_milli(sec[two], np.full(int(two.sum()), d)) + 5)
                             // 10])
        qty = np.concatenate([qty, q2])
        cc, sec = np.concatenate([cc, cc[two]]), np.concatenate([sec, sec[two]])
        planted["two_account_rows"] += int(acct2.sum())
        order = np.argsort(cc, kind="stable")
        cc, sec, qty, cost, mv, acct2 = (x[order] for x in (cc, sec, qty, cost, mv, acct2))
        n = len(cc)
        parts.append(_table("positions", n, {
            "snapshot_date": dates(np.full(n, d)),
            "fund_account": pop.fund_accounts(cc, acct2),
            "security_code": sec_codes.take(pa.array(sec)),
            "customer_id": pop.customer_ids(cc),
            "quantity": pa.array(qty),
            "cost": decimals(cost),
            "market_value": decimals(mv),
        }))
    return pa.concat_tables(parts), planted


def gen_fund_transactions(pop: Population, seed: int, total: int, fund_codes: pa.Array,
                          fund_types: np.ndarray) -> tuple[pa.Table, dict[str, int]]:
    rng = np.random.default_rng([seed, 30])
    n_fund = len(fund_codes)
    days = _trading_days(FUNDS_FROM, DATA_END)
    i = np.arange(total, dtype=np.int64)
    day = days[(i * len(days)) // total]
    users = pop.fund_users
    c = users[np.minimum((len(users) * rng.random(total) ** 1.6).astype(np.int64),
                         len(users) - 1)]
    j = (4 * rng.random(total) ** 2).astype(np.int64)
    fund = np.minimum((n_fund * unit(c, j, 32) ** 2).astype(np.int64), n_fund - 1)
    kind = rng.choice(4, total, p=[0.50, 0.05, 0.30, 0.15])  # purchase, subscribe, redeem, div.
    money = fund_types[fund] == 0
    nav = np.where(money, 10_000, (8_000 + unit(fund, 0, 33) * 32_000
                                   * (1 + 0.15 * np.sin(day / 50.0 + fund))).astype(np.int64))
    fix = rng.random(total) < 0.001  # a corrected NAV on the same day: the larger one counts
    nav = nav + fix
    typical = (10 ** (5.5 + unit(c, fund, 34))).astype(np.int64)  # shares in 0.01
    shares = np.select(
        [kind <= 1, kind == 2],
        [typical * (0.5 + rng.random(total)), typical * (0.2 + 0.6 * rng.random(total))],
        typical * 0.02 * rng.random(total) + 1).astype(np.int64)
    # every share held redeemed at the end, for some customer/fund pairs
    pair = c * n_fund + fund
    order = np.lexsort((i, pair))
    signed = np.where(kind == 2, -shares, shares)[order]
    sp = pair[order]
    last = np.r_[sp[1:] != sp[:-1], True]
    first = np.r_[True, sp[1:] != sp[:-1]]
    cum = np.cumsum(signed)
    start = np.maximum.accumulate(np.where(first, np.arange(total), 0))
    before = cum - signed - np.where(start > 0, cum[start - 1], 0)
    full = last & ~first & (before > 0) & (unit(sp, 0, 35) < 0.04)
    rows = order[full]
    kind[rows] = 2
    shares[rows] = before[full]
    amount = (shares * nav + 5_000) // 10_000  # fen = 0.01 share × 0.0001 yuan / 100
    fee = np.select([kind <= 1, kind == 2], [amount * 12 // 1000, amount * 5 // 1000], 0)
    table = _table("fund_transactions", total, {
        "txn_id": codes("X", i + 1, 12),
        "customer_id": pop.customer_ids(c),
        "fund_account": pop.fund_accounts(c),
        "fund_code": fund_codes.take(pa.array(fund)),
        "txn_date": dates(day),
        "txn_type": pick(["purchase", "subscribe", "redeem", "dividend"], kind),
        "amount": decimals(amount),
        "shares": decimals(shares),
        "nav": decimals(nav, 10, 4),
        "fee": decimals(fee),
    })
    return table, {"full_redemptions": int(full.sum()), "nav_corrections": int(fix.sum()),
                   "redemptions": int((kind == 2).sum())}


def _edges() -> list[int]:
    """UTC instants (µs) where a local day of a window starts or the as-of date ends."""
    ends = [AS_OF + dt.timedelta(days=1)] + [AS_OF - dt.timedelta(days=w - 1)
                                             for w in (30, 90, 365)]
    return [utc_micros_of_local_midnight(d) for d in ends]


def event_chunk(pop: Population, seed: int, lo: int, hi: int, total: int, days: np.ndarray,
                sec_codes: pa.Array, fund_codes: pa.Array) -> pa.Table:
    rng = np.random.default_rng([seed, 40, lo])
    n = hi - lo
    i = np.arange(lo, hi, dtype=np.int64)
    day = days[(i * len(days)) // total]  # every calendar day: weekends and holidays too
    users = pop.app_users
    c = users[np.minimum((len(users) * rng.random(n) ** 1.8).astype(np.int64), len(users) - 1)]
    r = rng.random(n)
    local = np.select(  # seconds after local midnight: daytime, around midnight, any time
        [r < 0.85, r < 0.95],
        [rng.integers(7 * 3600, 23 * 3600 + 1800, n),
         np.where(rng.random(n) < 0.5, rng.integers(23 * 3600 + 1800, 86400, n),
                  rng.integers(0, 1800, n))],
        rng.integers(0, 86400, n))
    micros = (day * 86400 + local - OFFSET * 3600) * 10**6 + rng.integers(0, 10**6, n)
    etype = rng.choice(len(EVENT_TYPES), n, p=EVENT_P)
    # a login 1 µs either side of each window edge
    edge = rng.random(n) < 0.0002
    edges = np.array(_edges(), dtype=np.int64)
    micros = np.where(edge, edges[rng.integers(0, len(edges), n)] + rng.choice([-1, 0], n),
                      micros)
    etype = np.where(edge, 0, etype)
    quote = (etype == 1) | (etype == 5)
    sec = personal_security(c, (8 * rng.random(n) ** 2).astype(np.int64), len(sec_codes))
    fund = rng.integers(0, len(fund_codes), n)
    return _table("app_events", n, {
        "event_id": codes("E", i + 1, 12),
        "customer_id": pop.customer_ids(c),
        "event_time": stamps(micros),
        "event_type": pick(EVENT_TYPES, etype),
        "page": pick(["home", "quote", "fund", "news", "search", "watchlist", "position",
                      "permission", "level2", "home"], etype),
        "security_code": pc.if_else(pa.array(quote), sec_codes.take(pa.array(sec)),
                                    pa.scalar(None, pa.string())),
        "fund_code": pc.if_else(pa.array(etype == 2), fund_codes.take(pa.array(fund)),
                                pa.scalar(None, pa.string())),
        "device": pick(["ios", "android", "pc", "h5"], rng.choice(4, n, p=[0.4, 0.45, 0.1, 0.05])),
    })


def gen_cash_flows(pop: Population, seed: int, total: int) -> pa.Table:
    rng = np.random.default_rng([seed, 50])
    users = pop.cash_users
    c = users[np.minimum((len(users) * rng.random(total) ** 1.5).astype(np.int64),
                         len(users) - 1)]
    lo = utc_micros_of_local_midnight(CASH_FROM)
    hi = utc_micros_of_local_midnight(DATA_END + dt.timedelta(days=1))
    micros = rng.integers(lo, hi, total)
    # around local midnight: 23:30–00:30 in UTC+8 is 15:30–16:30 UTC
    near = rng.random(total) < 0.08
    midnight = utc_micros_of_local_midnight(EPOCH) + (micros - utc_micros_of_local_midnight(EPOCH)) \
        // (86400 * 10**6) * 86400 * 10**6
    micros = np.where(near, midnight + rng.integers(-1800, 1800, total) * 10**6, micros)
    edge = rng.random(total) < 0.0005
    edges = np.array(_edges(), dtype=np.int64)
    micros = np.where(edge, edges[rng.integers(0, len(edges), total)]
                      + rng.choice([-1, 0], total), micros)
    micros = np.clip(micros, lo, hi - 1)
    order = np.argsort(micros, kind="stable")
    micros, c = micros[order], c[order]
    inflow = rng.random(total) < 0.58
    amount = np.maximum(100, (10 ** (4.5 + 2 * rng.random(total) ** 1.5)).astype(np.int64))
    return _table("cash_flows", total, {
        "flow_id": codes("K", np.arange(total) + 1, 12),
        "customer_id": pop.customer_ids(c),
        "fund_account": pop.fund_accounts(c, rng.random(total) < 0.3),
        "flow_time": stamps(micros),
        "direction": pick(["out", "in"], inflow.astype(np.int64)),
        "amount": decimals(amount),
        "method": pick(["bank_transfer", "transfer_out", "dividend", "other"],
                       np.where(inflow, rng.choice([0, 2, 3], total, p=[0.9, 0.08, 0.02]),
                                rng.choice([0, 1, 3], total, p=[0.9, 0.08, 0.02]))),
    })


class Files:
    """The cached data set of one size: one Parquet file per table under .bench/profile/."""

    def __init__(self, sizes: Sizes, seed: int) -> None:
        self.sizes, self.seed = sizes, seed
        self.dir = DATA / sizes.key(seed)

    def path(self, table: str) -> Path:
        return self.dir / f"{table}.parquet"

    def manifest(self) -> dict:
        return json.loads((self.dir / "manifest.json").read_text())

    def ensure(self, console) -> None:  # type: ignore[no-untyped-def]
        import fcntl

        # Other sessions may run the bench too: one generator per data set at a time.
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (self.dir / ".done").exists():
                console.print(f"data cached in {self.dir.relative_to(ROOT)}")
                return
            self._generate(console)

    def _generate(self, console) -> None:  # type: ignore[no-untyped-def]
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        t0 = time.perf_counter()
        s, seed = self.sizes, self.seed
        for p in self.dir.glob("*.parquet"):
            p.unlink()
        pop = Population(s.customers, seed)
        rows: dict[str, int] = {}
        planted: dict[str, int] = {}

        def write(name: str, table: pa.Table) -> None:
            pq.write_table(table, self.path(name), row_group_size=CHUNK)
            rows[name] = table.num_rows

        steps = 6 + (s.trades + CHUNK - 1) // CHUNK + (s.events + CHUNK - 1) // CHUNK
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("generating", total=steps)

            def step(what: str) -> None:
                progress.update(task, advance=1, description=f"generating {what}")

            write("customers", gen_customers(pop, seed))
            step("accounts")
            write("accounts", gen_accounts(pop, seed))
            securities = gen_securities()
            write("securities", securities)
            sec_codes = securities["security_code"].combine_chunks()
            step("fund products, assessments, follows")
            funds = gen_fund_products(n_funds(s), seed)
            write("fund_products", funds)
            fund_codes = funds["fund_code"].combine_chunks()
            ftypes = np.array([FUND_TYPES.index(t) for t in funds["fund_type"].to_pylist()])
            write("suitability_assessments", gen_suitability(pop, seed))
            write("wecom_follows", gen_wecom_follows(pop, seed))
            step("positions")
            table, p = gen_positions(pop, sec_codes, _month_end_snapshots())
            write("positions", table)
            planted |= p
            step("fund transactions")
            table, p = gen_fund_transactions(pop, seed, s.fund_txns, fund_codes, ftypes)
            write("fund_transactions", table)
            planted |= p
            step("cash flows")
            write("cash_flows", gen_cash_flows(pop, seed, 4 * s.customers))
            del table
            tdays = _trading_days(TRADES_FROM, DATA_END)
            cdays = _calendar_days(EVENTS_FROM, DATA_END)
            for name, total, make in (
                ("trades", s.trades, lambda lo, hi: trade_chunk(
                    pop, seed, lo, hi, s.trades, sec_codes, tdays)),
                ("app_events", s.events, lambda lo, hi: event_chunk(
                    pop, seed, lo, hi, s.events, cdays, sec_codes, fund_codes)),
            ):
                writer = None
                try:
                    for lo in range(0, total, CHUNK):
                        chunk = make(lo, min(lo + CHUNK, total))
                        if writer is None:
                            writer = pq.ParquetWriter(self.path(name), chunk.schema)
                        writer.write_table(chunk, row_group_size=CHUNK)
                        step(f"{name} {min(lo + CHUNK, total):,}/{total:,}")
                finally:
                    if writer is not None:
                        writer.close()
                rows[name] = total
        manifest = {"sizes": asdict(s), "seed": seed, "generator_version": GEN_VERSION,
                    "as_of": AS_OF.isoformat(), "data_end": DATA_END.isoformat(),
                    "rows": rows, "planted": planted,
                    "bytes": {n: self.path(n).stat().st_size for n in rows},
                    "seconds": round(time.perf_counter() - t0, 1)}
        (self.dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
        (self.dir / ".done").write_text(dt.datetime.now(dt.UTC).isoformat())
        console.print(f"generated {sum(rows.values()):,} rows in {manifest['seconds']:.0f} s "
                      f"({sum(manifest['bytes'].values()) / 1e9:.2f} GB Parquet) → "
                      f"{self.dir.relative_to(ROOT)}")


# --- the reference: the profile hand-written in DuckDB SQL -------------------------------------


def reference_sql(files: dict[str, str], as_of: dt.date, offset: int) -> str:
    """``profile_features`` hand-written as one DuckDB script: one pass per fact table where
    the definitions allow it (trades, positions and fund transactions are aggregated per
    customer and security/fund once, and every window is a FILTER of that pass)."""

    def d(x: dt.date) -> str:
        return f"DATE '{x.isoformat()}'"

    def src(name: str) -> str:
        return f"read_parquet('{files[name]}')"

    a = d(as_of)
    s30, s90, s365 = (d(as_of - dt.timedelta(days=w - 1)) for w in (30, 90, 365))
    d30, d90 = d(as_of - dt.timedelta(days=30)), d(as_of - dt.timedelta(days=90))

    def local(ts: str) -> str:
        return f"CAST({ts} + INTERVAL {offset} HOUR AS DATE)"

    def utc(day: dt.date) -> str:  # the naive-UTC instant at which local ``day`` begins
        t = dt.datetime.combine(day, dt.time()) - dt.timedelta(hours=offset)
        return f"TIMESTAMP '{t.isoformat(sep=' ')}'"

    # windows on timestamps as UTC bounds: the same local-date windows, and Parquet row groups
    # of a time-ordered file outside them are skipped
    end = utc(as_of + dt.timedelta(days=1))
    start30, start90, start365 = (utc(as_of - dt.timedelta(days=w - 1)) for w in (30, 90, 365))

    boards = ",\n".join(f"        bool_or(p.last_trade_date >= {s365} AND s.board = '{b}') "
                        f"AS traded_{b}_365d" for b in ("main", "chinext", "star", "bse"))
    fund_types = ",\n".join(f"        sum(f.v0) FILTER (WHERE fp.fund_type = '{t}') AS fund_value_{t}"
                            for t in FUND_TYPES)
    fund_risks = ",\n".join(f"        sum(f.v0) FILTER (WHERE fp.risk_level = '{r}') "
                            f"AS fund_value_{r.lower()}" for r in RISK)
    money = "DECIMAL(18, 2)"

    def m(expr: str) -> str:
        return f"CAST(coalesce({expr}, 0) AS {money})"

    final_funds = ",\n".join(f"    {m(f'fund_value_{x}')} AS fund_value_{x}"
                             for x in [*FUND_TYPES, *(r.lower() for r in RISK)])
    return f"""
WITH trade_pairs AS (
    -- per customer and security: what average-price P&L and "which securities/boards" need
    SELECT customer_id, security_code, max(trade_date) AS last_trade_date,
        sum(quantity) FILTER (WHERE side = 'B') AS buy_qty,
        sum(amount) FILTER (WHERE side = 'B') AS buy_amt,
        sum(quantity) FILTER (WHERE side = 'S') AS sell_qty,
        sum(amount) FILTER (WHERE side = 'S') AS sell_amt
    FROM {src("trades")}
    WHERE trade_date <= {a}
    GROUP BY customer_id, security_code
), pair_feats AS (
    SELECT p.customer_id,
        count(*) FILTER (WHERE p.last_trade_date >= {s365}) AS distinct_securities_365d,
{boards},
        -- average-price P&L per security in whole fen, half away from zero, summed exactly
        sum(CAST(floor(abs(p.pnl) * 100 + 0.5) * sign(p.pnl) AS BIGINT)) AS realised_fen
    FROM (SELECT *, CASE WHEN buy_qty > 0 AND sell_qty > 0
                    THEN CAST(least(buy_qty, sell_qty) AS DOUBLE)
                         * (CAST(sell_amt AS DOUBLE) / CAST(sell_qty AS DOUBLE)
                            - CAST(buy_amt AS DOUBLE) / CAST(buy_qty AS DOUBLE))
                    ELSE 0.0 END AS pnl
          FROM trade_pairs) p
    LEFT JOIN {src("securities")} s ON s.security_code = p.security_code
    GROUP BY p.customer_id
), trade_feats AS (
    -- per customer: first/last trade and the windows (a second, narrow pass: folding these
    -- into the per-security aggregate made its 13M groups spill)
    SELECT t.customer_id,
        min(trade_date) AS first_trade_date, max(trade_date) AS last_trade_date,
        count(*) FILTER (WHERE trade_date >= {s30}) AS trades_30d,
        count(*) FILTER (WHERE trade_date >= {s90}) AS trades_90d,
        count(*) FILTER (WHERE trade_date >= {s365}) AS trades_365d,
        sum(amount) FILTER (WHERE trade_date >= {s30}) AS trade_amount_30d,
        sum(amount) FILTER (WHERE trade_date >= {s90}) AS trade_amount_90d,
        sum(amount) FILTER (WHERE trade_date >= {s365}) AS trade_amount_365d,
        sum(fee) FILTER (WHERE trade_date >= {s365}) AS fees_365d
    FROM {src("trades")} t
    WHERE trade_date <= {a}
    GROUP BY t.customer_id
), snapshots AS (
    SELECT max(snapshot_date) FILTER (WHERE snapshot_date <= {a}) AS d0,
        max(snapshot_date) FILTER (WHERE snapshot_date <= {d30}) AS d30,
        max(snapshot_date) FILTER (WHERE snapshot_date <= {d90}) AS d90
    FROM {src("positions")}
), position_pairs AS (
    SELECT p.customer_id, p.security_code,
        count(*) FILTER (WHERE p.snapshot_date = s.d0) AS n0,
        sum(p.market_value) FILTER (WHERE p.snapshot_date = s.d0) AS mv0,
        sum(p.market_value - p.cost) FILTER (WHERE p.snapshot_date = s.d0) AS pnl0,
        sum(p.market_value) FILTER (WHERE p.snapshot_date = s.d30) AS mv30,
        sum(p.market_value) FILTER (WHERE p.snapshot_date = s.d90) AS mv90
    FROM {src("positions")} p, snapshots s
    WHERE p.snapshot_date IN (s.d0, s.d30, s.d90)
        AND p.snapshot_date BETWEEN (SELECT d90 FROM snapshots) AND (SELECT d0 FROM snapshots)
    GROUP BY p.customer_id, p.security_code
), position_feats AS (
    SELECT customer_id,
        count(*) FILTER (WHERE n0 > 0) AS positions_count,
        sum(mv0) AS holdings_value, sum(pnl0) AS unrealised_pnl,
        min({{'pnl': pnl0, 'code': security_code}}) FILTER (WHERE n0 > 0) AS worst,
        sum(mv30) AS stock_30d_ago, sum(mv90) AS stock_90d_ago
    FROM position_pairs
    GROUP BY customer_id
), fund_navs AS (
    -- each fund's NAV on its latest transaction day (the larger if corrected that day)
    SELECT fund_code, arg_max(nav, txn_date) AS nav0,
        arg_max(nav, txn_date) FILTER (WHERE txn_date <= {d30}) AS nav30,
        arg_max(nav, txn_date) FILTER (WHERE txn_date <= {d90}) AS nav90
    FROM (SELECT fund_code, txn_date, max(nav) AS nav FROM {src("fund_transactions")}
          WHERE txn_date <= {a} GROUP BY fund_code, txn_date)
    GROUP BY fund_code
), fund_pairs AS (
    SELECT customer_id, fund_code,
        sum(signed) AS held0,
        sum(signed) FILTER (WHERE txn_date <= {d30}) AS held30,
        sum(signed) FILTER (WHERE txn_date <= {d90}) AS held90,
        sum(amount) FILTER (WHERE txn_date >= {s365} AND txn_type IN ('subscribe', 'purchase'))
            AS purchase365,
        sum(amount) FILTER (WHERE txn_date >= {s365} AND txn_type = 'redeem') AS redeem365
    FROM (SELECT customer_id, fund_code, txn_date, txn_type, amount,
                 CASE WHEN txn_type = 'redeem' THEN -shares ELSE shares END AS signed
          FROM {src("fund_transactions")} WHERE txn_date <= {a})
    GROUP BY customer_id, fund_code
), fund_values AS (
    SELECT p.customer_id, p.fund_code, p.purchase365, p.redeem365,
        CASE WHEN p.held0 > 0 THEN round(p.held0 * n.nav0, 2) END AS v0,
        CASE WHEN p.held30 > 0 THEN round(p.held30 * n.nav30, 2) END AS v30,
        CASE WHEN p.held90 > 0 THEN round(p.held90 * n.nav90, 2) END AS v90
    FROM fund_pairs p JOIN fund_navs n ON n.fund_code = p.fund_code
), fund_feats AS (
    SELECT f.customer_id,
        sum(f.v0) FILTER (WHERE fp.fund_code IS NOT NULL) AS fund_value,
{fund_types},
{fund_risks},
        sum(f.v30) AS fund_30d_ago, sum(f.v90) AS fund_90d_ago,
        sum(f.purchase365) AS fund_purchase_365d, sum(f.redeem365) AS fund_redeem_365d
    FROM fund_values f LEFT JOIN {src("fund_products")} fp ON fp.fund_code = f.fund_code
    GROUP BY f.customer_id
), cash_feats AS (
    SELECT customer_id,
        sum(signed) FILTER (WHERE flow_time >= {start30}) AS net_inflow_30d,
        sum(signed) FILTER (WHERE flow_time >= {start90}) AS net_inflow_90d,
        sum(signed) FILTER (WHERE flow_time >= {start365}) AS net_inflow_365d,
        sum(amount) FILTER (WHERE flow_time >= {start30} AND direction = 'in') AS deposits_30d,
        sum(amount) FILTER (WHERE flow_time >= {start30} AND direction = 'out')
            AS withdrawals_30d,
        {local("max(flow_time) FILTER (WHERE direction = 'in')")} AS last_deposit_date
    FROM (SELECT customer_id, direction, amount, flow_time,
                 CASE WHEN direction = 'in' THEN amount ELSE -amount END AS signed
          FROM {src("cash_flows")} WHERE flow_time < {end})
    GROUP BY customer_id
), login_last AS (
    SELECT customer_id, max(event_time) AS last_login_at
    FROM {src("app_events")}
    WHERE event_type = 'login' AND event_time < {end}
    GROUP BY customer_id
), login_days AS (
    SELECT DISTINCT customer_id, {local("event_time")} AS day
    FROM {src("app_events")}
    WHERE event_type = 'login' AND event_time >= {start30} AND event_time < {end}
), trade_days AS (
    SELECT DISTINCT customer_id, trade_date AS day
    FROM {src("trades")} WHERE trade_date BETWEEN {s30} AND {a}
), login_feats AS (
    SELECT l.customer_id, l.last_login_at,
        coalesce(n.login_days_30d, 0) AS login_days_30d,
        coalesce(n.login_days_without_trade_30d, 0) AS login_days_without_trade_30d
    FROM login_last l LEFT JOIN (
        SELECT d.customer_id, count(*) AS login_days_30d,
            count(*) FILTER (WHERE t.customer_id IS NULL) AS login_days_without_trade_30d
        FROM login_days d
        LEFT JOIN trade_days t ON t.customer_id = d.customer_id AND t.day = d.day
        GROUP BY d.customer_id) n ON n.customer_id = l.customer_id
), account_feats AS (
    SELECT customer_id,
        bool_or(chinext_opened_on <= {a}) AS chinext_opened,
        bool_or(star_opened_on <= {a}) AS star_opened,
        bool_or(bse_opened_on <= {a}) AS bse_opened,
        bool_or(margin_opened_on <= {a}) AS margin_opened,
        bool_or(level2_since <= {a} AND (level2_until IS NULL OR level2_until >= {a}))
            AS level2_active,
        bool_or(status IN ('transferred_out', 'closed')) AS account_transferred_out
    FROM {src("accounts")}
    GROUP BY customer_id
), suitability AS (
    SELECT customer_id, risk_level AS c_level,
        coalesce(no_loss_tolerance, false) OR coalesce(no_civil_capacity, false)
            AS lowest_category,
        valid_until AS assessment_valid_until
    FROM {src("suitability_assessments")}
    WHERE assessed_on <= {a}
    QUALIFY row_number() OVER (PARTITION BY customer_id
                               ORDER BY assessed_on DESC, assessment_id DESC) = 1
), wecom AS (
    SELECT customer_id,
        bool_or(removed_at IS NULL OR {local("removed_at")} > {a}) AS follows_on_wecom
    FROM {src("wecom_follows")}
    WHERE customer_id IS NOT NULL AND {local("added_at")} <= {a}
    GROUP BY customer_id
), wide AS (
    SELECT c.customer_id, c.branch_id, c.advisor_id, c.channel, c.customer_type, c.status,
        c.opened_on, t.* EXCLUDE (customer_id), tp.* EXCLUDE (customer_id),
        p.* EXCLUDE (customer_id),
        f.* EXCLUDE (customer_id), k.* EXCLUDE (customer_id), l.* EXCLUDE (customer_id),
        ac.* EXCLUDE (customer_id), su.* EXCLUDE (customer_id), w.* EXCLUDE (customer_id)
    FROM {src("customers")} c
    LEFT JOIN trade_feats t ON t.customer_id = c.customer_id
    LEFT JOIN pair_feats tp ON tp.customer_id = c.customer_id
    LEFT JOIN position_feats p ON p.customer_id = c.customer_id
    LEFT JOIN fund_feats f ON f.customer_id = c.customer_id
    LEFT JOIN cash_feats k ON k.customer_id = c.customer_id
    LEFT JOIN login_feats l ON l.customer_id = c.customer_id
    LEFT JOIN account_feats ac ON ac.customer_id = c.customer_id
    LEFT JOIN suitability su ON su.customer_id = c.customer_id
    LEFT JOIN wecom w ON w.customer_id = c.customer_id
    WHERE c.opened_on <= {a}
), scored AS (
    SELECT *,
        CAST({a} - last_trade_date AS BIGINT) AS since_trade,
        CAST(coalesce(trades_365d, 0) AS BIGINT) AS n365,
        {m("trade_amount_365d")} AS amt365,
        {m("holdings_value")} AS hv, {m("fund_value")} AS fv,
        CAST({m("stock_30d_ago")} + {m("fund_30d_ago")} AS {money}) AS aum30,
        CAST({m("stock_90d_ago")} + {m("fund_90d_ago")} AS {money}) AS aum90,
        {m("fund_purchase_365d")} AS purchase, {m("fund_redeem_365d")} AS redeem
    FROM wide
)
SELECT
    customer_id, {a} AS as_of, branch_id, advisor_id, channel, customer_type, status,
    CAST({a} - opened_on AS BIGINT) AS tenure_days,
    CAST(coalesce(trades_30d, 0) AS BIGINT) AS trades_30d,
    CAST(coalesce(trades_90d, 0) AS BIGINT) AS trades_90d,
    n365 AS trades_365d,
    {m("trade_amount_30d")} AS trade_amount_30d,
    {m("trade_amount_90d")} AS trade_amount_90d,
    amt365 AS trade_amount_365d,
    {m("fees_365d")} AS fees_365d,
    CAST(coalesce(distinct_securities_365d, 0) AS BIGINT) AS distinct_securities_365d,
    coalesce(traded_main_365d, false) AS traded_main_365d,
    coalesce(traded_chinext_365d, false) AS traded_chinext_365d,
    coalesce(traded_star_365d, false) AS traded_star_365d,
    coalesce(traded_bse_365d, false) AS traded_bse_365d,
    first_trade_date, last_trade_date,
    since_trade AS days_since_last_trade,
    CASE WHEN since_trade >= 30 THEN last_trade_date END AS trading_stopped_on,
    CAST(CASE WHEN since_trade IS NULL THEN 1 WHEN since_trade <= 7 THEN 5
         WHEN since_trade <= 30 THEN 4 WHEN since_trade <= 90 THEN 3
         WHEN since_trade <= 180 THEN 2 ELSE 1 END AS BIGINT) AS rfm_recency,
    CAST(CASE WHEN n365 >= 100 THEN 5 WHEN n365 >= 40 THEN 4 WHEN n365 >= 12 THEN 3
         WHEN n365 >= 1 THEN 2 ELSE 1 END AS BIGINT) AS rfm_frequency,
    CAST(CASE WHEN amt365 >= 5000000 THEN 5 WHEN amt365 >= 1000000 THEN 4
         WHEN amt365 >= 200000 THEN 3 WHEN amt365 >= 1 THEN 2 ELSE 1 END AS BIGINT)
        AS rfm_monetary,
    CAST(coalesce(positions_count, 0) AS BIGINT) AS positions_count,
    hv AS holdings_value,
    {m("unrealised_pnl")} AS unrealised_pnl,
    CAST(CAST(coalesce(realised_fen, 0) AS DOUBLE) / 100 AS {money}) AS realised_pnl,
    CASE WHEN worst.pnl < 0 THEN worst.code END AS worst_security_code,
    CASE WHEN worst.pnl < 0 THEN CAST(worst.pnl AS {money}) END AS worst_security_pnl,
    fv AS fund_value,
{final_funds},
    purchase AS fund_purchase_365d,
    redeem AS fund_redeem_365d,
    CASE WHEN purchase > 0 THEN CAST(redeem AS DOUBLE) / CAST(purchase AS DOUBLE) END
        AS fund_redemption_ratio_365d,
    CAST(hv + fv AS {money}) AS aum,
    aum30 AS aum_30d_ago,
    aum90 AS aum_90d_ago,
    CASE WHEN aum30 > 0 THEN CAST(CAST(hv + fv AS {money}) - aum30 AS DOUBLE)
         / CAST(aum30 AS DOUBLE) END AS aum_trend_30d,
    CASE WHEN aum90 > 0 THEN CAST(CAST(hv + fv AS {money}) - aum90 AS DOUBLE)
         / CAST(aum90 AS DOUBLE) END AS aum_trend_90d,
    {m("net_inflow_30d")} AS net_inflow_30d,
    {m("net_inflow_90d")} AS net_inflow_90d,
    {m("net_inflow_365d")} AS net_inflow_365d,
    {m("deposits_30d")} AS deposits_30d,
    {m("withdrawals_30d")} AS withdrawals_30d,
    last_deposit_date,
    CAST({a} - last_deposit_date AS BIGINT) AS days_since_last_deposit,
    last_login_at,
    CAST({a} - {local("last_login_at")} AS BIGINT) AS days_since_last_login,
    CAST(coalesce(login_days_30d, 0) AS BIGINT) AS login_days_30d,
    CAST(coalesce(login_days_without_trade_30d, 0) AS BIGINT) AS login_days_without_trade_30d,
    coalesce(chinext_opened, false) AS chinext_opened,
    coalesce(star_opened, false) AS star_opened,
    coalesce(bse_opened, false) AS bse_opened,
    coalesce(margin_opened, false) AS margin_opened,
    coalesce(level2_active, false) AS level2_active,
    coalesce(account_transferred_out, false) AS account_transferred_out,
    coalesce(follows_on_wecom, false) AS follows_on_wecom,
    c_level,
    coalesce(lowest_category, false) AS lowest_category,
    assessment_valid_until,
    assessment_valid_until IS NULL OR assessment_valid_until < {a} AS assessment_expired
FROM scored
"""


# --- the children -------------------------------------------------------------------------------


def tree_cpu(descendants_only: bool = False) -> float:
    """CPU seconds of this process and all its descendants (the Spark JVM included)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    total = 0.0 if descendants_only else t.user + t.system
    total += t.children_user + t.children_system
    for p in me.children(recursive=True):
        try:
            c = p.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            pass
    return total


class Phases:
    def __init__(self) -> None:
        self.rec: dict[str, dict] = {}

    def run(self, name: str, fn, *args):  # type: ignore[no-untyped-def]
        t0, p0, c0 = time.time(), time.perf_counter(), tree_cpu()
        out = fn(*args)
        self.rec[name] = {"wall": time.perf_counter() - p0, "cpu": tree_cpu() - c0,
                          "start": t0, "end": time.time()}
        sys.stderr.write(f"    {name}: {self.rec[name]['wall']:.2f} s, "
                         f"{self.rec[name]['cpu']:.1f} CPU-s\n")
        sys.stderr.flush()
        return out


def _inputs(session, files: Files):  # type: ignore[no-untyped-def]
    from caifu.pipelines.profile import ProfileInputs

    tables = {name: session.from_arrow(f"bench_{name}", pq.read_table(files.path(name)))
              for name in MASTER}
    for name in FACTS:
        tables[name] = session.read_parquet(f"bench_{name}", [str(files.path(name))])
    return ProfileInputs(**tables)


def child(args: argparse.Namespace) -> None:
    files = Files(Sizes(*args.sizes), args.seed)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ph = Phases()
    out: dict = {"engine": args.child}
    if args.child == "sql":
        import duckdb

        config: dict = {"memory_limit": args.memory_limit,
                        "temp_directory": str(work / "duckdb"),
                        "autoinstall_known_extensions": False,
                        "autoload_known_extensions": False, "allow_community_extensions": False}
        if args.threads:
            config["threads"] = args.threads
        sql = reference_sql({n: str(files.path(n)) for n in (*MASTER, *FACTS)}, AS_OF, OFFSET)
        (work / "reference.sql").write_text(sql)
        con = ph.run("load", lambda: duckdb.connect(":memory:", config=config))
        out["settings"] = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
        if args.duckdb_profile:
            con.execute("PRAGMA enable_profiling='json'")
            con.execute(f"PRAGMA profiling_output='{work / 'profile.json'}'")
        result = ph.run("query", lambda: con.sql(sql).to_arrow_table())
        con.close()
    else:
        import ibis

        from caifu.adapters.engines.session import DuckDBSession, SparkSession
        from caifu.pipelines.profile import profile_features

        if args.child == "caifu":
            session = ph.run("start", lambda: DuckDBSession(work, args.memory_limit,
                                                            args.threads))
        else:
            conf = {"spark.driver.memory": args.spark_memory,
                    "spark.local.dir": str(work / "spark"),
                    "spark.ui.showConsoleProgress": "false"}
            session = ph.run("start", lambda: SparkSession("local[2]", conf))
        inputs = ph.run("load", _inputs, session, files)
        expr = profile_features(inputs, AS_OF, OFFSET)
        if args.child == "caifu":
            raw = session.con.con
            (work / "caifu.sql").write_text(ibis.to_sql(expr, dialect="duckdb"))
            if args.duckdb_profile:
                raw.execute("PRAGMA enable_profiling='json'")
                raw.execute(f"PRAGMA profiling_output='{work / 'profile.json'}'")
            out["settings"] = raw.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads')"
            ).fetchall()[0]
        result = ph.run("query", session.to_arrow, expr)
        session.close()
    out["phases"] = ph.rec
    out["rows"] = result.num_rows
    # what the JVM (not a child the parent waits for) used, for the parent's "background"
    out["descendants_cpu"] = tree_cpu(descendants_only=True)
    pq.write_table(result, work / "result.parquet")
    Path(args.out).write_text(json.dumps(out, default=str))
    if args.child == "spark":
        from pyspark.sql import SparkSession as _Spark

        active = _Spark.getActiveSession()
        if active is not None:
            active.stop()


# --- comparing outputs --------------------------------------------------------------------------


def compare(a: pa.Table, b: pa.Table, rel: float = 1e-9) -> dict:
    """Every column of ``b`` against ``a`` by customer_id: exact, floats within ``rel``."""
    out: dict = {"rows": [a.num_rows, b.num_rows], "columns": a.column_names == b.column_names,
                 "types": {}, "mismatches": {}, "examples": {}}
    if a.num_rows != b.num_rows or "customer_id" not in b.column_names:
        out["match"] = False
        return out
    a = a.take(pc.sort_indices(a, [("customer_id", "ascending")]))
    b = b.take(pc.sort_indices(b, [("customer_id", "ascending")]))
    for name in a.column_names:
        x = a[name].combine_chunks()
        if name not in b.column_names:
            out["mismatches"][name] = a.num_rows
            continue
        y = b[name].combine_chunks()
        if x.type != y.type:
            out["types"][name] = [str(x.type), str(y.type)]
            try:
                y = y.cast(x.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                out["mismatches"][name] = a.num_rows
                continue
        nx, ny = x.is_null().to_numpy(zero_copy_only=False), y.is_null().to_numpy(
            zero_copy_only=False)
        if pa.types.is_floating(x.type):
            fx = x.fill_null(0).to_numpy(zero_copy_only=False)
            fy = y.fill_null(0).to_numpy(zero_copy_only=False)
            close = np.abs(fx - fy) <= rel * np.maximum(np.abs(fx), np.abs(fy))
            close |= np.isnan(fx) & np.isnan(fy)
            bad = (nx != ny) | (~nx & ~ny & ~close)
        else:
            eq = pc.equal(x, y).fill_null(False).to_numpy(zero_copy_only=False)
            bad = (nx != ny) | (~nx & ~ny & ~eq)
        if bad.any():
            idx = np.flatnonzero(bad)
            out["mismatches"][name] = int(len(idx))
            out["examples"][name] = [
                [a["customer_id"][int(i)].as_py(), str(x[int(i)].as_py()), str(y[int(i)].as_py())]
                for i in idx[:3]]
    out["match"] = out["columns"] and not out["mismatches"] and not out["types"]
    return out


# --- the parent: run children, sample RSS, report ------------------------------------------------


def wait_quiet(limit: float, console) -> float:  # type: ignore[no-untyped-def]
    """Other sessions share this machine: wait (up to ``limit`` s) until it has been nearly
    idle for three 2-second samples in a row. Returns the cores in use when measuring starts."""
    import psutil

    t0 = time.perf_counter()
    said, quiet = False, 0
    while True:
        busy = psutil.cpu_percent(interval=2) / 100 * (os.cpu_count() or 1)
        quiet = quiet + 1 if busy < 0.2 else 0
        if quiet >= 3:
            return busy
        waited = time.perf_counter() - t0
        if waited > limit:
            console.print(f"  [yellow]machine still busy ({busy:.1f} cores); measuring anyway")
            return busy
        if not said and quiet == 0:
            console.print(f"  machine busy ({busy:.1f} cores in use); waiting up to {limit:.0f} s")
            said = True


def run_quiet(engine: str, sizes: Sizes, args: argparse.Namespace, run: Path, label: str,
              console, budget: list[int], profile: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """``run_child``, repeated (while ``budget`` lasts) when other processes used more than
    ``--max-background`` cores on average during it; the discarded runs are kept."""
    discarded = []
    while True:
        res = run_child(engine, sizes, args, run, label, console, profile)
        bg = res["background_cpu"] / res["child_wall"]
        if bg <= args.max_background or budget[0] <= 0:
            res["discarded"] = discarded
            return res
        budget[0] -= 1
        console.print(f"  [yellow]{bg:.2f} cores of background load during {label}: "
                      f"measuring it again ({budget[0]} repeats left)")
        discarded.append({k: res[k] for k in ("phases", "background_cpu", "child_wall",
                                              "total_wall", "total_cpu", "peak_rss")})


def run_child(engine: str, sizes: Sizes, args: argparse.Namespace, run: Path, label: str,
              console, profile: bool = False) -> dict:  # type: ignore[no-untyped-def]
    import psutil

    idle = wait_quiet(args.quiet_wait, console)
    work = run / label
    out = run / f"{label}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", engine, "--workdir",
           str(work), "--out", str(out), "--sizes", *map(str, asdict(sizes).values()),
           "--seed", str(args.seed), "--memory-limit", args.memory_limit,
           "--spark-memory", args.spark_memory]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if profile:
        cmd += ["--duckdb-profile"]
    console.print(f"  [bold]{label}[/] ({engine}, {sizes.customers:,} customers)")
    busy0, mine0, w0 = busy_cpu(), os.times(), time.perf_counter()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        rss = tree_rss(root)
        samples.append((time.time(), rss))
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"{label} child failed ({proc.returncode})")
    wall = time.perf_counter() - w0
    mine1 = os.times()
    res = json.loads(out.read_text())
    q = res["phases"]["query"]
    # Other sessions share the machine: what the rest of it used during the child's run
    # ours: this process, the child it waited for, and the child's own descendants (JVM)
    ours = (mine1.user + mine1.system + mine1.children_user + mine1.children_system
            - mine0.user - mine0.system - mine0.children_user - mine0.children_system
            + res["descendants_cpu"])
    res["background_cpu"] = max(0.0, busy_cpu() - busy0 - ours)
    res["child_wall"] = wall
    res["idle_before"] = idle
    res["peak_rss"] = max((r for _, r in samples), default=0)
    res["query_peak_rss"] = max((r for t, r in samples if q["start"] - 0.05 <= t <= q["end"] + 0.05),
                                default=0)
    res["total_wall"] = sum(res["phases"][p]["wall"] for p in ("load", "query"))
    res["total_cpu"] = sum(res["phases"][p]["cpu"] for p in ("load", "query"))
    res["label"], res["sizes"] = label, asdict(sizes)
    res["result"] = str(work / "result.parquet")
    console.print(f"    total {res['total_wall']:.2f} s / {res['total_cpu']:.1f} CPU-s "
                  f"(query {q['wall']:.2f} s / {q['cpu']:.1f} CPU-s), peak RSS "
                  f"{_gb(res['peak_rss'])}, background {res['background_cpu'] / wall:.2f} cores")
    return res


def _gb(b: float) -> str:
    return f"{b / 1024**3:.2f} GB"


def summarise_profile(path: Path, top: int = 16) -> dict:
    """Where a query's time went, from DuckDB's JSON profile (DuckDB 2.x layout).

    Operator timings are summed over threads and, for a CTE streamed to several consumers,
    include the consumers' work: read them as shares, not as CPU seconds."""
    if not path.exists():
        return {}
    prof = json.loads(path.read_text())
    ops: list[dict] = []

    def walk(node: dict, depth: int) -> None:
        info = node.get("extra_info") or {}
        brief = {k: info[k] for k in ("CTE Name", "Groups", "Aggregates", "Join Type",
                                      "Conditions", "Projections", "Filters", "Table")
                 if k in info}
        ops.append({"operator": node.get("name", "?"), "seconds": float(node.get("timing", 0)),
                    "rows": int(node.get("intermediate_rows", 0) or 0), "depth": depth,
                    "info": json.dumps(brief, ensure_ascii=False)[:150]})
        for ch in node.get("children", []):
            walk(ch, depth + 1)

    for node in prof.get("operator", []):
        walk(node, 0)
    total = sum(o["seconds"] for o in ops) or 1.0
    by_type: dict[str, float] = {}
    for o in ops:
        o["share"] = o["seconds"] / total
        by_type[o["operator"]] = by_type.get(o["operator"], 0.0) + o["seconds"]
    q = prof.get("query", {})
    return {"latency": q.get("total_time"), "operator_time": total,
            "rows_scanned": q.get("total_rows_scanned"),
            "intermediate_rows": q.get("total_intermediate_rows"),
            "peak_buffer_memory": prof.get("system", {}).get("peak_buffer_memory"),
            "operators": len(ops),
            "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "top": sorted(ops, key=lambda o: -o["seconds"])[:top]}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict, args: argparse.Namespace, console) -> list[str]:  # type: ignore[no-untyped-def]
    from rich.table import Table

    main = results["main"]
    caifu, sql = main["caifu"], main["sql"]
    t = Table(title=f"profile_features, {Sizes(**main['sizes']).label()}; as of {AS_OF}; "
              f"DuckDB memory_limit {args.memory_limit}, threads {args.threads or 'default'}; "
              f"{len(caifu)} rounds, median (min)", title_justify="left")
    for col in ("engine", "total s", "total CPU-s", "load s", "query s", "query CPU-s",
                "peak RSS", "background cores", "rows"):
        t.add_column(col, justify="left" if col == "engine" else "right")

    def row(name: str, runs: list[dict]) -> None:
        q = [r["phases"]["query"] for r in runs]
        ld = [r["phases"]["load"] for r in runs]
        t.add_row(name,
                  f"{_median(runs, 'total_wall'):.2f} ({min(r['total_wall'] for r in runs):.2f})",
                  f"{_median(runs, 'total_cpu'):.1f} ({min(r['total_cpu'] for r in runs):.1f})",
                  f"{statistics.median(x['wall'] for x in ld):.2f}",
                  f"{statistics.median(x['wall'] for x in q):.2f}",
                  f"{statistics.median(x['cpu'] for x in q):.1f}",
                  _gb(max(r["peak_rss"] for r in runs)),
                  f"{max(r['background_cpu'] / r['child_wall'] for r in runs):.2f}",
                  f"{runs[0]['rows']:,}")

    row("caifu (Ibis → DuckDB)", caifu)
    row("hand-written DuckDB SQL", sql)
    console.print(t)
    ratio_wall = _median(caifu, "total_wall") / _median(sql, "total_wall")
    ratio_cpu = _median(caifu, "total_cpu") / _median(sql, "total_cpu")
    q_ratio = (statistics.median(r["phases"]["query"]["wall"] for r in caifu)
               / statistics.median(r["phases"]["query"]["wall"] for r in sql))
    for name, runs in (("caifu", caifu), ("hand-written SQL", sql)):
        console.print(f"  {name} rounds (total wall s / CPU-s): " + ", ".join(
            f"{r['total_wall']:.1f} / {r['total_cpu']:.1f}" for r in runs))
    console.print(f"  caifu / hand-written SQL: wall {ratio_wall:.2f}×, CPU {ratio_cpu:.2f}× "
                  f"(query phase alone, wall {q_ratio:.2f}×); goal ≤ {GOAL}×")
    verdicts = []
    for what, ratio in (("wall", ratio_wall), ("CPU", ratio_cpu)):
        ok = ratio <= GOAL
        console.print(f"  {'[green]PASS' if ok else '[red]FAIL'}[/] caifu {what} {ratio:.2f}× "
                      f"the hand-written SQL (goal ≤ {GOAL}×)")
        verdicts.append(f"{'PASS' if ok else 'FAIL'} caifu {what} {ratio:.2f}x hand-written SQL")
    for cmp in results["comparisons"]:
        ok = cmp["match"]
        detail = "" if ok else f" — mismatches {cmp['mismatches']} types {cmp['types']} " \
                              f"examples {cmp['examples']}"
        console.print(f"  {'[green]same results' if ok else '[red]DIFFERENT'}[/]: "
                      f"{cmp['what']} ({cmp['rows'][0]:,} rows × {cmp['n_columns']} columns)"
                      + detail)
        verdicts.append(f"{'MATCH' if ok else 'DIFFER'} {cmp['what']}")
    if results.get("spark"):
        sp = results["spark"]
        s = Table(title=f"Spark local[2] for reference, {Sizes(**sp['sizes']).label()}",
                  title_justify="left")
        for col in ("engine", "total s", "total CPU-s", "start s", "load s", "query s",
                    "peak RSS (tree, JVM incl.)"):
            s.add_column(col, justify="left" if col == "engine" else "right")
        for name, r in (("caifu on Spark", sp["spark"]), ("caifu on DuckDB", sp["caifu"]),
                        ("hand-written DuckDB SQL", sp["sql"])):
            ph = r["phases"]
            s.add_row(name, f"{r['total_wall']:.2f}", f"{r['total_cpu']:.1f}",
                      f"{ph['start']['wall']:.2f}" if "start" in ph else "-",
                      f"{ph['load']['wall']:.2f}", f"{ph['query']['wall']:.2f}",
                      _gb(r["peak_rss"]))
        console.print(s)
    for name, prof in results.get("profiles", {}).items():
        if not prof:
            continue
        kinds = ", ".join(f"{k} {v / prof['operator_time']:.0%}"
                          for k, v in list(prof["by_type"].items())[:6])
        p = Table(title=f"DuckDB profile: {name} — latency {prof['latency']:.2f} s, "
                  f"{prof['operators']} operators, {prof['intermediate_rows']:,} intermediate "
                  f"rows; operator time by type: {kinds}", title_justify="left")
        for col in ("operator", "share", "rows", "what"):
            p.add_column(col, justify="left" if col in ("operator", "what") else "right")
        for o in prof["top"]:
            p.add_row(o["operator"], f"{o['share']:.0%}", f"{o['rows']:,}", o["info"])
        console.print(p)
    return verdicts


def source_revision() -> str:
    """The commit the measured caifu comes from, and whether the profile module differs."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""

    head = git("log", "-1", "--format=%h %cI %s")[:100]
    dirty = git("status", "--porcelain", "src/caifu/pipelines", "src/caifu/adapters/engines")
    return head + (" (with uncommitted changes to the pipeline/engine source)" if dirty else "")


EDGES = {
    "customers profiled": "count(*)",
    "tenure 0 (opened on the as-of date)": "count(*) FILTER (WHERE tenure_days = 0)",
    "never traded": "count(*) FILTER (WHERE last_trade_date IS NULL)",
    "trading stopped (≥ 30 days)": "count(*) FILTER (WHERE trading_stopped_on IS NOT NULL)",
    "traded in 365d, not in 30d": "count(*) FILTER (WHERE trades_365d > 0 AND trades_30d = 0)",
    "realised P&L ≠ 0": "count(*) FILTER (WHERE realised_pnl <> 0)",
    "with a losing position": "count(*) FILTER (WHERE worst_security_code IS NOT NULL)",
    "redeemed funds in 365d": "count(*) FILTER (WHERE fund_redeem_365d > 0)",
    "redeemed but hold no fund": "count(*) FILTER (WHERE fund_redeem_365d > 0 AND fund_value = 0)",
    "AUM fell over 30d": "count(*) FILTER (WHERE aum_trend_30d < 0)",
    "logged in without trading (30d)": "count(*) FILTER (WHERE login_days_without_trade_30d > 0)",
    "Level-2 active": "count(*) FILTER (WHERE level2_active)",
    "follow on WeCom": "count(*) FILTER (WHERE follows_on_wecom)",
    "assessment expired": "count(*) FILTER (WHERE assessment_expired)",
    "lowest category": "count(*) FILTER (WHERE lowest_category)",
}


def edge_counts(result: str) -> dict[str, int]:
    """How many profiled customers sit on each planted edge (so the comparison exercised it)."""
    import duckdb

    exprs = ", ".join(f'{e} AS "{k}"' for k, e in EDGES.items())
    con = duckdb.connect()
    row = con.execute(f"SELECT {exprs} FROM read_parquet('{result}')").fetchall()[0]
    con.close()
    return dict(zip(EDGES, (int(v) for v in row), strict=True))


def compare_runs(a: dict, b: dict, what: str) -> dict:
    res = compare(pq.read_table(a["result"]), pq.read_table(b["result"]))
    res["what"] = what
    res["n_columns"] = len(pq.read_schema(a["result"]).names)
    pa.default_memory_pool().release_unused()  # the parent stays small while children run
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k customers / 5M trades / 500k "
                    "fund txns / 2M events")
    ap.add_argument("--customers", type=int)
    ap.add_argument("--trades", type=int)
    ap.add_argument("--fund-txns", type=int)
    ap.add_argument("--events", type=int)
    ap.add_argument("--rounds", type=int, default=5,
                    help="runs of each DuckDB engine, alternating order (default 5)")
    ap.add_argument("--memory-limit", default="6GB",
                    help="DuckDB memory_limit for caifu and the reference (Settings default 6GB)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--spark", choices=("quick", "same", "off"), default="quick",
                    help="Spark reference at the quick size (default), the measured size, or off")
    ap.add_argument("--spark-memory", default="6g", help="spark.driver.memory (default 6g)")
    ap.add_argument("--duckdb-profile", action="store_true",
                    help="after timing, run each DuckDB engine once more with DuckDB's JSON "
                         "profiler and print where the time goes")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keep", action="store_true", help="keep run folders (results, SQL, profiles)")
    ap.add_argument("--quiet-wait", type=float, default=300, metavar="S",
                    help="before each child, wait up to S seconds for other processes to go "
                         "quiet (default 300; 0: don't wait)")
    ap.add_argument("--max-background", type=float, default=0.15, metavar="CORES",
                    help="repeat a run during which other processes used more than CORES "
                         "cores on average (default 0.15)")
    ap.add_argument("--repeats", type=int, default=6,
                    help="how many such repeats in all (default 6)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--child", choices=("caifu", "sql", "spark"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    from rich.console import Console

    console = Console(width=max(160, shutil.get_terminal_size().columns))
    base = QUICK if args.quick else FULL
    sizes = Sizes(args.customers or base.customers, args.trades or base.trades,
                  args.fund_txns or base.fund_txns, args.events or base.events)
    files = Files(sizes, args.seed)
    files.ensure(console)
    spark_sizes = None if args.spark == "off" else sizes if args.spark == "same" else QUICK
    if spark_sizes is not None and spark_sizes != sizes:
        Files(spark_sizes, args.seed).ensure(console)
    if args.generate_only:
        return
    import duckdb
    import ibis
    import pyspark

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    machine = (f"{platform.node()}: {os.cpu_count()} cores, {mem:.0f} GiB, Python "
               f"{platform.python_version()}, DuckDB {duckdb.__version__}, Ibis {ibis.__version__}, "
               f"PySpark {pyspark.__version__}, pyarrow {pa.__version__}")
    console.print(machine)
    manifest = files.manifest()
    console.print("rows: " + ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items()))
    run = CACHE / "runs" / f"profile-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    run.mkdir(parents=True)
    results: dict = {"machine": machine, "args": vars(args), "as_of": AS_OF.isoformat(),
                     "manifest": manifest, "run_dir": str(run), "source": source_revision()}
    console.print(f"caifu source: {results['source']}")
    try:
        main_runs: dict[str, list[dict]] = {"caifu": [], "sql": []}
        budget = [args.repeats]
        for r in range(args.rounds):
            order = ("sql", "caifu") if r % 2 == 0 else ("caifu", "sql")
            for engine in order:
                main_runs[engine].append(run_quiet(engine, sizes, args, run,
                                                   f"{engine}-{r}", console, budget))
        results["main"] = {"sizes": asdict(sizes), **main_runs}
        comparisons = [compare_runs(main_runs["sql"][0], c,
                                    f"caifu round {i} vs hand-written SQL, {sizes.customers:,} "
                                    f"customers") for i, c in enumerate(main_runs["caifu"])]
        if spark_sizes is not None:
            sp: dict = {"sizes": asdict(spark_sizes)}
            if spark_sizes == sizes:
                sp["caifu"], sp["sql"] = main_runs["caifu"][0], main_runs["sql"][0]
            else:
                sp["sql"] = run_quiet("sql", spark_sizes, args, run, "sql-spark-size", console,
                                      budget)
                sp["caifu"] = run_quiet("caifu", spark_sizes, args, run, "caifu-spark-size",
                                        console, budget)
                comparisons.append(compare_runs(
                    sp["sql"], sp["caifu"],
                    f"caifu vs hand-written SQL, {spark_sizes.customers:,} customers"))
            sp["spark"] = run_quiet("spark", spark_sizes, args, run, "spark", console, budget)
            comparisons.append(compare_runs(
                sp["caifu"], sp["spark"],
                f"caifu on Spark vs caifu on DuckDB, {spark_sizes.customers:,} customers"))
            results["spark"] = sp
        results["comparisons"] = comparisons
        results["edges"] = edge_counts(main_runs["caifu"][0]["result"])
        console.print("customers on the planted edges: " + ", ".join(
            f"{k} {v:,}" for k, v in results["edges"].items()))
        console.print("planted in the data: " + ", ".join(
            f"{k.replace('_', ' ')} {v:,}" for k, v in manifest["planted"].items()))
        if args.duckdb_profile:
            results["profiles"] = {}
            for engine in ("caifu", "sql"):
                res = run_quiet(engine, sizes, args, run, f"{engine}-profiled", console,
                                budget, profile=True)
                results["profiles"][f"{engine} (profiled run: {res['total_wall']:.1f} s)"] = \
                    summarise_profile(run / f"{engine}-profiled" / "profile.json")
        verdicts = report(results, args, console)
        results["verdicts"] = verdicts
    finally:
        if not args.keep:
            for p in run.glob("*/"):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
    out = CACHE / "results" / f"profile-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    console.print(f"raw results: {out.relative_to(ROOT)}"
                  + (f"; run folder {run.relative_to(ROOT)}" if args.keep else ""))


if __name__ == "__main__":
    main()
