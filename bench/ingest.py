"""Ingest throughput: caifu beside DuckDB loading the same files with no checks, same run.

    python bench/ingest.py                       # 1M customers / 20M trades, Parquet and GBK CSV
    python bench/ingest.py --quick               # 100k / 2M, a fast check
    python bench/ingest.py --format gbk-csv --customers 200000 --trades 5000000

For each format, in a fresh workspace: caifu ingests branches and advisors (setup), then
customers, accounts, securities and trades (measured), in a child process whose process
tree's RSS is sampled every 50 ms. The references run in another child, on the same files:

* load limit ("reference", the ratio's denominator): DuckDB loads the file into a table with
  no checks: ``CREATE TABLE t AS SELECT * FROM read_parquet(...)``; for GBK CSV, Python
  GBK→UTF-8 transcoding plus ``read_csv(all_varchar)`` — DuckDB cannot read GBK without an
  extension download, so transcoding is part of the honest limit. DuckDB on a UTF-8 copy of
  the file is shown beside it.
* no-check ingest ("load+write"): the same rows, typed, read by DuckDB and written to the
  table's store with no checks: ``write_deltalake`` for lake tables, plain ``sqlite3``
  ``executemany`` into the same SoR table definition for system-of-record tables.

Data is generated with numpy/pyarrow from a fixed seed and cached under ``.bench/data``
keyed by size, so re-runs skip generation. 0.01% of the trades are deliberately bad (unknown
security or account, zero quantity, bad side, future date, key conflicts, exact duplicates;
in CSV also bad decimals/integers and broken lines) so the quarantine path runs; the bench
checks that caifu's counts match what was planted.

DuckDB runs with ``Settings(duckdb_memory_limit=--memory-limit)``, 3GB by default rather than
the 6GB setting default, to aim at the < 4 GB peak-RSS goal (RSS ends up about 1 GB above
the limit). The machine may be shared: before each child the bench waits up to
``--quiet-wait`` seconds for other processes to go idle, and reports the CPU they used.

Benchmarks run on demand, never in the test suite. Results: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _measure import busy_cpu, tree_rss

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"
GEN_VERSION = 1
SEED = 20251125
TENANT = "bench"
TABLES = ("customers", "accounts", "securities", "trades")
SETUP = ("branches", "advisors")
FORMATS = ("parquet", "gbk-csv")
CHUNK = 1 << 20
GOAL_ROWS_S = 1_000_000
GOAL_RATIO = 0.3
GOAL_RSS = 4 * 1024**3
EPOCH = np.datetime64("1970-01-01", "D")

# --- vectorised value builders ----------------------------------------------------------------


def _fixed_strings(m: np.ndarray) -> pa.Array:
    """Rows of an (n, w) uint8 ASCII matrix as a string array, without Python objects."""
    n, w = m.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [
        None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(m).tobytes())
    ]).cast(pa.string())


def _digits(m: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    v = values.astype(np.int64).copy()
    for k in range(width - 1, -1, -1):
        m[:, col + k] = 48 + v % 10
        v //= 10


def codes(prefix: str, nums: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``nums``: C000000001, F0000000001 ..."""
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    m = np.empty((len(nums), len(p) + width), dtype=np.uint8)
    m[:, : len(p)] = p
    _digits(m, len(p), nums, width)
    return _fixed_strings(m)


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = EPOCH + days.astype("timedelta64[D]")
    months = d.astype("datetime64[M]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.frombuffer(b"0123456789X", dtype=np.uint8)


def resident_ids(region: np.ndarray, birth_days: np.ndarray, seq: np.ndarray) -> pa.Array:
    """Valid GB 11643-1999 IDs: ISO 7064 MOD 11-2 check characters computed with numpy."""
    m = np.empty((len(region), 18), dtype=np.uint8)
    y, mo, d = ymd(birth_days)
    _digits(m, 0, region, 6)
    _digits(m, 6, y, 4)
    _digits(m, 10, mo, 2)
    _digits(m, 12, d, 2)
    _digits(m, 14, seq, 3)
    total = (m[:, :17].astype(np.int64) - 48) @ _ID_WEIGHTS
    m[:, 17] = _ID_CHECK[(12 - total % 11) % 11]
    return _fixed_strings(m)


def decimals(units: np.ndarray, precision: int, scale: int) -> pa.Array:
    """Exact decimal128 from integers counted in 10**-scale (fen for money)."""
    v = np.ascontiguousarray(units, dtype=np.int64)
    buf = np.empty((len(v), 2), dtype=np.int64)
    buf[:, 0] = v
    buf[:, 1] = np.where(v < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(v),
                                 [None, pa.py_buffer(buf.tobytes())])


def dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(days.astype(np.int32), mask=None if valid is None else ~valid).cast(pa.date32())


def pick(values: list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(values).take(pa.array(idx))


def day_of(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


# --- the generated broker ---------------------------------------------------------------------

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志文斌宇浩凯晨欣怡梓涵子轩雨桐佳琪思远嘉诚俊杰博文天佑晓东海燕春梅秋菊冬雪丹阳")
REGIONS = np.array([110101, 110105, 110108, 310101, 310115, 320102, 330106, 340104, 350203,
                    370202, 420106, 440103, 440305, 500103, 510104, 610113, 210203, 120101])
CITIES = ["北京", "上海", "南京", "杭州", "合肥", "厦门", "青岛", "武汉", "广州", "深圳", "重庆",
          "成都", "西安", "大连", "天津"]
MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156,
                            157, 158, 159, 166, 176, 177, 178, 180, 181, 182, 183, 185, 186, 187,
                            188, 189, 191, 198, 199])
CHANNELS = ["branch", "app", "wecom", "bank", "internet", "referral", "campaign"]
N_BRANCHES = 120
N_ADVISORS = 3000
TRADE_START, TRADE_END = dt.date(2024, 1, 2), dt.date(2025, 10, 31)
BAD_SHARE = 0.0001


def names(rng: np.random.Generator, n: int) -> pa.Array:
    sur = pick(SURNAMES, rng.integers(0, len(SURNAMES), n))
    g1 = pick(GIVEN, rng.integers(0, len(GIVEN), n))
    g2 = pick([*GIVEN, *[""] * 40], rng.integers(0, len(GIVEN) + 40, n))
    return pc.binary_join_element_wise(sur, g1, g2, "")


def mobiles(rng: np.random.Generator, n: int) -> pa.Array:
    prefix = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES), n)]
    return codes("", prefix * 10**8 + rng.integers(0, 10**8, n), 11)


def branches() -> pa.Table:
    from caifu.core.ids import make_uscc

    i = np.arange(1, N_BRANCHES + 1)
    city = [CITIES[k % len(CITIES)] for k in range(N_BRANCHES)]
    return pa.table({
        "branch_id": codes("B", i, 4),
        "name": [f"{c}第{k + 1}营业部" for k, c in enumerate(city)],
        "province": city,
        "city": city,
        "credit_code": [make_uscc("9", "1", str(REGIONS[k % len(REGIONS)]), f"{10000000 + k:08d}")
                        for k in range(N_BRANCHES)],
        "opened_on": dates(day_of(dt.date(1995, 1, 1)) + (i * 37) % 7000),
    })


def advisors(rng: np.random.Generator) -> pa.Table:
    i = np.arange(1, N_ADVISORS + 1)
    return pa.table({
        "advisor_id": codes("A", i, 5),
        "name": names(rng, N_ADVISORS),
        "branch_id": codes("B", (i - 1) % N_BRANCHES + 1, 4),
        "sac_number": codes("S", 10**12 + i * 7919, 13),
        "role": pick(["advisor", "account_manager", "branch_manager"],
                     np.where(i <= N_BRANCHES, 2, i % 2)),
        "mobile": mobiles(rng, N_ADVISORS),
        "status": pick(["active", "left"], (rng.random(N_ADVISORS) < 0.05).astype(np.int64)),
    })


def customers(rng: np.random.Generator, n: int) -> pa.Table:
    i = np.arange(1, n + 1)
    birth = rng.integers(day_of(dt.date(1950, 1, 1)), day_of(dt.date(2005, 12, 31)), n)
    seq = rng.integers(0, 1000, n)
    passport = rng.random(n) < 0.005
    ids = resident_ids(REGIONS[rng.integers(0, len(REGIONS), n)], birth, seq)
    ids = pc.if_else(pa.array(passport), codes("E", rng.integers(0, 10**8, n), 8), ids)
    branch = rng.integers(1, N_BRANCHES + 1, n)
    advisor = branch + N_BRANCHES * rng.integers(0, N_ADVISORS // N_BRANCHES, n)
    has_advisor = rng.random(n) < 0.9
    opened = rng.integers(day_of(dt.date(2005, 1, 1)), day_of(dt.date(2025, 6, 30)), n)
    status = rng.choice(4, n, p=[0.85, 0.10, 0.01, 0.04])
    closed = status == 3
    return pa.table({
        "customer_id": codes("C", i, 9),
        "name": names(rng, n),
        "customer_type": pa.array(["individual"] * n),
        "id_type": pick(["resident_id", "passport"], passport.astype(np.int64)),
        "id_number": ids,
        "gender": pick(["F", "M"], seq % 2),
        "birth_date": dates(birth),
        "mobile": pc.if_else(pa.array(rng.random(n) < 0.97), mobiles(rng, n),
                             pa.scalar(None, pa.string())),
        "branch_id": codes("B", branch, 4),
        "advisor_id": pc.if_else(pa.array(has_advisor), codes("A", advisor, 5),
                                 pa.scalar(None, pa.string())),
        "opened_on": dates(opened),
        "channel": pick(CHANNELS, rng.integers(0, len(CHANNELS), n)),
        "status": pick(["normal", "dormant", "frozen", "closed"], status),
        "closed_on": dates(np.minimum(opened + rng.integers(30, 3000, n),
                                      day_of(dt.date(2025, 9, 30))), closed),
        "professional": pa.array(rng.random(n) < 0.02),
        "marketing_consent": pa.array(rng.random(n) < 0.6),
    })


def accounts(rng: np.random.Generator, cust: pa.Table) -> pa.Table:
    n = cust.num_rows
    i = np.arange(1, n + 1)
    opened = pc.cast(cust["opened_on"], pa.int32()).to_numpy()
    last = day_of(dt.date(2025, 9, 30))

    def perm(share: float) -> pa.Array:
        return dates(np.minimum(opened + rng.integers(0, 2000, n), last), rng.random(n) < share)

    l2 = rng.random(n) < 0.08
    since = np.minimum(opened + rng.integers(0, 2000, n), last)
    return pa.table({
        "fund_account": codes("F", i, 10),
        "customer_id": cust["customer_id"],
        "sh_account": codes("A", i, 9),
        "sz_account": pc.if_else(pa.array(rng.random(n) < 0.95), codes("0", i, 9),
                                 pa.scalar(None, pa.string())),
        "opened_on": cust["opened_on"],
        "status": pick(["normal", "frozen", "closed", "transferred_out"],
                       rng.choice(4, n, p=[0.94, 0.01, 0.04, 0.01])),
        "chinext_opened_on": perm(0.3),
        "star_opened_on": perm(0.1),
        "bse_opened_on": perm(0.03),
        "margin_opened_on": perm(0.05),
        "level2_since": dates(since, l2),
        "level2_until": dates(since + 365, l2),
    })


def securities() -> pa.Table:
    """The vendored A-share master (5,640 codes, GBK-safe short names)."""
    from caifu.data.reference import a_share_codes

    t = a_share_codes()
    code = t["stock_code"]
    first = pc.utf8_slice_codeunits(code, 0, 1)
    first3 = pc.utf8_slice_codeunits(code, 0, 3)
    sh = pc.is_in(first, pa.array(["6", "9"]))
    bj = pc.or_(pc.is_in(first, pa.array(["4", "8"])), pc.equal(first3, "920"))
    exchange = pc.if_else(bj, "BJ", pc.if_else(sh, "SH", "SZ"))
    board = pc.if_else(bj, "bse", pc.if_else(pc.equal(first3, "688"), "star", pc.if_else(
        pc.is_in(first3, pa.array(["300", "301"])), "chinext", "main")))
    return pa.table({
        "security_code": code,
        "exchange": exchange,
        "short_name": t["short_name"],
        "security_type": pa.array(["stock"] * t.num_rows),
        "board": board,
        "listed_on": t["list_date"],
    })


TRADE_BAD_KINDS = ("unknown_security", "zero_quantity", "bad_side", "future_date",
                   "unknown_account", "key_conflict", "exact_duplicate")
CSV_BAD_KINDS = ("decimal_scale", "not_integer")
BROKEN_LINES = 3  # CSV lines with one field too many, appended at the end


def trade_chunk(seed: int, lo: int, hi: int, n_trades: int, n_cust: int,
                sec_codes: pa.Array, days: np.ndarray) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Trades lo..hi-1 (deterministic per chunk) and the positions of planted bad rows."""
    rng = np.random.default_rng([seed, lo])
    n = hi - lo
    i = np.arange(lo, hi)
    # A few heavy traders, a long tail; file in time order like an accumulated export.
    cust = np.minimum((n_cust * rng.random(n) ** 2.2).astype(np.int64) + 1, n_cust)
    day = days[(i * len(days)) // n_trades]
    local = np.where(rng.random(n) < 0.5, rng.integers(34200, 41400, n),
                     rng.integers(46800, 54000, n))
    micros = (day.astype(np.int64) * 86400 + local - 8 * 3600) * 10**6
    n_sec = len(sec_codes)
    sec = np.minimum((n_sec * rng.random(n) ** 3).astype(np.int64), n_sec - 1)
    sell = rng.random(n) < 0.48
    qty = 100 * rng.integers(1, 60, n)
    price = rng.integers(1_000, 150_000, n)  # 0.001 yuan
    amount = (price * qty + 5) // 10  # fen
    fee = np.maximum(500, (amount * 25 + 50_000) // 100_000) + np.where(sell, (amount + 500) // 1000, 0)
    cols = {
        "trade_id": codes("T", i + 1, 12),
        "customer_id": codes("C", cust, 9),
        "fund_account": codes("F", cust, 10),
        "trade_date": dates(day),
        "trade_time": pa.array(micros).cast(pa.timestamp("us")),
        "security_code": sec_codes.take(pa.array(sec)),
        "side": pick(["B", "S"], sell.astype(np.int64)),
        "quantity": pa.array(qty.astype(np.int64)),
        "price": decimals(price, 12, 3),
        "amount": decimals(amount, 18, 2),
        "fee": decimals(fee, 18, 2),
        "channel": pick(["app", "pc", "phone", "counter", "api"],
                        rng.choice(5, n, p=[0.7, 0.15, 0.05, 0.05, 0.05])),
    }
    # Planted bad rows: never the first row of a chunk, never two side by side.
    kinds = (*TRADE_BAD_KINDS, *CSV_BAD_KINDS)
    k = max(len(kinds), round(n * BAD_SHARE))
    pos = np.unique(rng.choice(np.arange(1, n), size=min(k * 2, n - 1), replace=False))
    pos = pos[np.concatenate(([True], np.diff(pos) > 1))][:k]
    bad = {kind: pos[j:: len(kinds)] for j, kind in enumerate(kinds)}
    table = pa.table(cols)

    def put(name: str, where: np.ndarray, value: pa.Array | pa.Scalar) -> None:
        nonlocal table
        mask = np.zeros(n, dtype=bool)
        mask[where] = True
        col = table[name].combine_chunks()
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pc.if_else(pa.array(mask), value, col))

    future = day_of(dt.date(2027, 3, 1))
    put("security_code", bad["unknown_security"], pa.scalar("999999"))
    put("quantity", bad["zero_quantity"], pa.scalar(0, pa.int64()))
    put("side", bad["bad_side"], pa.scalar("X"))
    put("trade_date", bad["future_date"], pa.scalar(future, pa.int32()).cast(pa.date32()))
    put("trade_time", bad["future_date"],
        pa.scalar((future * 86400 + 7200) * 10**6, pa.int64()).cast(pa.timestamp("us")))
    put("fund_account", bad["unknown_account"], pa.scalar("F9999999999"))
    prev_ids = table["trade_id"].combine_chunks().take(pa.array(np.maximum(np.arange(n) - 1, 0)))
    put("trade_id", bad["key_conflict"], prev_ids)
    dup = bad["exact_duplicate"]
    idx = np.arange(n)
    idx[dup] = dup - 1
    table = table.take(pa.array(idx))
    return table, bad


# --- writing the files --------------------------------------------------------------------------

CUSTOMER_HEADERS = {
    "customer_id": "客户号", "name": "客户姓名", "customer_type": "客户类别", "id_type": "证件类型",
    "id_number": "证件号码", "gender": "性别", "birth_date": "出生日期", "mobile": "手机号码",
    "branch_id": "开户营业部", "advisor_id": "服务投顾", "opened_on": "开户日期", "channel": "获客渠道",
    "status": "客户状态", "closed_on": "销户日期", "professional": "专业投资者",
    "marketing_consent": "同意营销",
}


def as_text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """What a CSV export shows for a typed column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_timestamp(arr.type):
        return arr.cast(pa.timestamp("s")).cast(pa.string())
    if pa.types.is_boolean(arr.type):
        return pc.if_else(arr, "是", "否")
    return arr.cast(pa.string())


def csv_bytes(table: pa.Table, header: bool, headers: dict[str, str] | None = None) -> bytes:
    text = pa.table([as_text(table[c]) for c in table.column_names],
                    names=[(headers or {}).get(c, c) for c in table.column_names])
    return _unquoted_csv(text, header)


def _unquoted_csv(text: pa.Table, header: bool) -> bytes:
    """CSV as core systems export it: no quotes (pyarrow would quote the header)."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(text, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    head = (",".join(text.column_names) + "\n").encode() if header else b""
    return head + sink.getvalue().to_pybytes()


class Files:
    """The cached data set of one size: ``parquet/``, ``gbk-csv/`` and ``utf8-csv/``."""

    def __init__(self, n_customers: int, n_trades: int, seed: int) -> None:
        self.n_customers, self.n_trades, self.seed = n_customers, n_trades, seed
        self.dir = CACHE / "data" / f"v{GEN_VERSION}-c{n_customers}-t{n_trades}-s{seed}"

    def path(self, fmt: str, table: str) -> Path:
        ext = "parquet" if fmt == "parquet" else "csv"
        return self.dir / fmt / f"{table}.{ext}"

    def mapping(self, fmt: str) -> Path | None:
        return self.dir / fmt / "sources.yaml" if fmt == "gbk-csv" else None

    def manifest(self) -> dict:
        return json.loads((self.dir / "manifest.json").read_text())

    def ensure(self, formats: tuple[str, ...], say) -> None:  # type: ignore[no-untyped-def]
        import fcntl

        # Other sessions may run the bench too: one generator per data set at a time.
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            todo = [f for f in formats if not (self.dir / f / ".done").exists()]
            if not todo:
                say(f"data cached in {self.dir.relative_to(ROOT)}")
                return
            self._generate(tuple(todo), say)

    def _generate(self, todo: tuple[str, ...], say) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        for f in todo:
            shutil.rmtree(self.dir / f, ignore_errors=True)
            (self.dir / f).mkdir(parents=True)
        if "gbk-csv" in todo:
            shutil.rmtree(self.dir / "utf8-csv", ignore_errors=True)
            (self.dir / "utf8-csv").mkdir(parents=True)
        rng = np.random.default_rng(self.seed)
        small = {"branches": branches(), "advisors": advisors(rng)}
        cust = customers(rng, self.n_customers)
        small |= {"customers": cust, "accounts": accounts(rng, cust), "securities": securities()}
        del cust
        for name, table in small.items():
            if "parquet" in todo:
                pq.write_table(table, self.path("parquet", name))
            if "gbk-csv" in todo:
                data = csv_bytes(table, True, CUSTOMER_HEADERS if name == "customers" else None)
                self.path("gbk-csv", name).write_bytes(data.decode("utf-8").encode("gbk"))
                self.path("utf8-csv", name).write_bytes(data)
        sec_codes = small["securities"]["security_code"].combine_chunks()
        del small
        cal = pc.cast(pa.array(_trading_days()), pa.int32()).to_numpy()
        planted = dict.fromkeys((*TRADE_BAD_KINDS, *CSV_BAD_KINDS), 0)
        writer = None
        csv_out = open(self.path("gbk-csv", "trades"), "wb") if "gbk-csv" in todo else None
        try:
            for lo in range(0, self.n_trades, CHUNK):
                hi = min(lo + CHUNK, self.n_trades)
                table, bad = trade_chunk(self.seed, lo, hi, self.n_trades, self.n_customers,
                                         sec_codes, cal)
                for k, v in bad.items():
                    planted[k] += len(v)
                if "parquet" in todo:
                    if writer is None:
                        writer = pq.ParquetWriter(self.path("parquet", "trades"), table.schema)
                    writer.write_table(table, row_group_size=CHUNK)
                if csv_out is not None:
                    csv_out.write(self._trades_csv(table, bad, header=lo == 0))
                if hi == self.n_trades or (lo // CHUNK) % 5 == 4:
                    say(f"  trades {hi:,}/{self.n_trades:,}")
            if csv_out is not None:
                for j in range(BROKEN_LINES):
                    csv_out.write(f"TB{j:011d},C000000001,F0000000001,2025-03-03,"
                                  f"2025-03-03 02:15:00,600000,B,100,10.500,1050.00,5.00,app,"
                                  f"extra\n".encode())
        finally:
            if writer is not None:
                writer.close()
            if csv_out is not None:
                csv_out.close()
        if "gbk-csv" in todo:
            # Trades are ASCII, identical in GBK and UTF-8: the UTF-8 copy is a hard link.
            os.link(self.path("gbk-csv", "trades"), self.path("utf8-csv", "trades"))
            _write_sources_yaml(self.dir / "gbk-csv" / "sources.yaml")
        manifest = {"customers": self.n_customers, "trades": self.n_trades, "seed": self.seed,
                    "generator_version": GEN_VERSION, "planted": planted,
                    "broken_csv_lines": BROKEN_LINES}
        (self.dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for f in todo:
            (self.dir / f / ".done").write_text(dt.datetime.now(dt.UTC).isoformat())
        say(f"generated {', '.join(todo)} in {time.perf_counter() - t0:.0f} s "
            f"→ {self.dir.relative_to(ROOT)}")

    @staticmethod
    def _trades_csv(table: pa.Table, bad: dict[str, np.ndarray], header: bool) -> bytes:
        text = pa.table([as_text(table[c]) for c in table.column_names], names=table.column_names)
        n = table.num_rows
        for kind, name, suffix in (("decimal_scale", "price", "1"), ("not_integer", "quantity", "O")):
            mask = np.zeros(n, dtype=bool)
            mask[bad[kind]] = True
            col = text[name].combine_chunks()
            text = text.set_column(text.schema.get_field_index(name), name, pc.if_else(
                pa.array(mask), pc.binary_join_element_wise(col, suffix, ""), col))
        data = _unquoted_csv(text, header)
        assert data.isascii()
        return data


def _trading_days() -> list[dt.date]:
    from caifu.data.reference import trading_days

    return trading_days(TRADE_START, TRADE_END)


def _write_sources_yaml(path: Path) -> None:
    import yaml

    entries = [{"match": f"{t}.csv", "table": t, "encoding": "gbk"} for t in (*SETUP, *TABLES)]
    entries[2]["columns"] = {v: k for k, v in CUSTOMER_HEADERS.items()}
    path.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def expected_counts(manifest: dict, fmt: str) -> dict[str, int]:
    p = manifest["planted"]
    rejects = sum(p[k] for k in TRADE_BAD_KINDS if k != "exact_duplicate")
    if fmt == "gbk-csv":
        rejects += sum(p[k] for k in CSV_BAD_KINDS) + manifest["broken_csv_lines"]
    rows = manifest["trades"] + (manifest["broken_csv_lines"] if fmt == "gbk-csv" else 0)
    return {"rows_in": rows, "quarantined": rejects, "duplicates": p["exact_duplicate"]}


# --- the two children ---------------------------------------------------------------------------


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def child_caifu(args: argparse.Namespace) -> None:
    from caifu.services.ingest.load import Ingest
    from caifu.services.platform.workspace import create_tenant, init_workspace
    from caifu.settings import Settings

    files = Files(args.customers, args.trades, args.seed)
    settings = Settings(duckdb_memory_limit=args.memory_limit, duckdb_threads=args.threads)
    c = init_workspace(Path(args.workdir), settings)
    create_tenant(c, TENANT, "基准证券")
    ingest = Ingest(c)
    out: dict = {"tables": {}}
    for name in (*SETUP, *TABLES):
        t0, c0, p0 = time.time(), _cpu(), time.perf_counter()
        (r,) = ingest.ingest(TENANT, [files.path(args.fmt, name)],
                             mapping=files.mapping(args.fmt), table=name)
        secs = time.perf_counter() - p0
        out["tables"][name] = {
            "seconds": secs, "cpu": _cpu() - c0, "start": t0, "end": time.time(),
            "rows_in": r.rows_in, "inserted": r.inserted, "updated": r.updated,
            "quarantined": r.quarantined, "duplicates": r.duplicates, "reasons": r.reasons,
            "timings": r.timings,
        }
        print(f"    caifu {name}: {r.rows_in:,} rows in {secs:.1f} s {r.timings}",
              file=sys.stderr, flush=True)
    c.close()
    Path(args.out).write_text(json.dumps(out))


def _duck(args: argparse.Namespace, tmp: Path):  # type: ignore[no-untyped-def]
    import duckdb

    config: dict = {"memory_limit": args.memory_limit, "temp_directory": str(tmp / "duckdb"),
                    "autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if args.threads:
        config["threads"] = args.threads
    return duckdb.connect(":memory:", config=config)


def transcode(src: Path, dst: Path, encoding: str = "gbk") -> None:
    """Plain streaming GBK → UTF-8 in Python, the way any loader without DuckDB's
    encodings extension must do it (8 MiB chunks, strict)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with src.open("rb") as f, dst.open("wb") as g:
        while chunk := f.read(8 << 20):
            g.write(decoder.decode(chunk).encode("utf-8"))
        g.write(decoder.decode(b"", final=True).encode("utf-8"))


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def typed_csv_scan(path: Path, table: str) -> tuple[str, str]:
    """(read_csv with contract types, select list in contract names) for the no-check load."""
    from caifu.data.contracts import registry

    contract = registry()[table]
    header = path.open(encoding="utf-8").readline().rstrip("\n").split(",")
    to_contract = {v: k for k, v in CUSTOMER_HEADERS.items()} if table == "customers" else {}
    types, exprs = [], {}
    for h in header:
        c = contract[to_contract.get(h, h)]
        # Exports spell booleans 是/否, which DuckDB does not parse as BOOLEAN.
        sql_type = "VARCHAR" if c.kind in ("string", "bool") else c.type_name
        types.append(f"{_q(h)}: {_q(sql_type)}")
        exprs[c.name] = f'("{h}" = \'是\')' if c.kind == "bool" else f'"{h}"'
    scan = (f"read_csv({_q(str(path))}, header=true, ignore_errors=true, auto_detect=false, "
            f"columns={{{', '.join(types)}}})")
    return scan, contract_select(table, exprs)


def contract_select(table: str, exprs: dict[str, str]) -> str:
    """All contract columns in order: the file's (``exprs``), typed NULL for the others."""
    from caifu.data.contracts import registry

    return ", ".join(f'{exprs.get(c.name, f"CAST(NULL AS {c.type_name})")} AS "{c.name}"'
                     for c in registry()[table].columns)


class _Reference:
    """DuckDB with no checks on the same files: load limit, then load + write to the store."""

    RAW_CSV = "header=true, all_varchar=true, ignore_errors=true"

    def __init__(self, args: argparse.Namespace) -> None:
        from sqlalchemy import create_engine

        from caifu.adapters.sor.models import CONTRACT_TABLES

        self.args = args
        self.files = Files(args.customers, args.trades, args.seed)
        self.work = Path(args.workdir)
        (self.work / "lake").mkdir(parents=True, exist_ok=True)
        self.sor = self.work / "sor.db"
        # The system-of-record tables exactly as caifu declares them (keys and indexes).
        engine = create_engine(f"sqlite:///{self.sor}")
        CONTRACT_TABLES["customers"].metadata.create_all(
            engine, tables=[CONTRACT_TABLES[t] for t in TABLES if t in CONTRACT_TABLES])
        engine.dispose()

    def timed(self, rec: dict, label: str, fn, *fn_args) -> None:  # type: ignore[no-untyped-def]
        t0, p0, c0 = time.time(), time.perf_counter(), _cpu()
        fn(rec, *fn_args)
        secs = time.perf_counter() - p0
        rec.setdefault("windows", []).append((label, t0, time.time()))
        rec[label] = secs
        rec[label + "_cpu"] = _cpu() - c0
        print(f"    reference {rec['table']} {label}: {secs:.2f} s", file=sys.stderr, flush=True)

    def load(self, rec: dict, scan: str) -> None:
        con = _duck(self.args, self.work)
        con.execute(f"CREATE TABLE t AS SELECT * FROM {scan}")
        rec["rows"] = int(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
        con.close()

    def transcode_and_load(self, rec: dict, src: Path, utf8: Path) -> None:
        transcode(src, utf8)
        self.load(rec, f"read_csv({_q(str(utf8))}, {self.RAW_CSV})")

    def load_and_write(self, rec: dict, src: Path, utf8: Path | None, scan: str,
                       cols: str) -> None:
        import sqlite3

        from deltalake import write_deltalake

        from caifu.data.contracts import registry

        contract = registry()[rec["table"]]
        if utf8 is not None:
            transcode(src, utf8)
        con = _duck(self.args, self.work)
        if contract.store == "lake":
            reader = con.sql(f"SELECT {cols} FROM {scan}").to_arrow_reader(1 << 17)
            write_deltalake(str(self.work / "lake" / contract.name), reader, mode="overwrite")
        else:
            stored = []
            for c in contract.columns:  # what the SoR holds on SQLite: text dates and money
                expr = f'"{c.name}"'
                if c.kind in ("date", "decimal", "timestamp"):
                    expr = f"CAST({expr} AS VARCHAR)"
                elif c.kind == "bool":
                    expr = f"CAST({expr} AS INTEGER)"
                stored.append(expr)
            cur = con.execute(f"SELECT '{TENANT}', {', '.join(stored)} FROM "
                              f"(SELECT {cols} FROM {scan})")
            db = sqlite3.connect(self.sor)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            marks = ", ".join("?" * (len(contract.columns) + 1))
            with db:
                db.execute(f"DELETE FROM {contract.name}")
                while rows := cur.fetchmany(50_000):
                    db.executemany(f"INSERT INTO {contract.name} VALUES ({marks})", rows)
            db.close()
        con.close()

    def table(self, name: str) -> dict:
        rec: dict = {"table": name}
        src = self.files.path(self.args.fmt, name)
        if self.args.fmt == "parquet":
            scan = f"read_parquet({_q(str(src))})"
            self.timed(rec, "load", self.load, scan)
            cols = contract_select(name, {c: f'"{c}"' for c in pq.read_schema(src).names})
            self.timed(rec, "load_write", self.load_and_write, src, None, scan, cols)
        else:
            utf8 = self.work / f"{name}.utf8.csv"
            self.timed(rec, "load", self.transcode_and_load, src, utf8)
            copy = self.files.path("utf8-csv", name)
            self.timed(rec, "load_utf8_copy", self.load, f"read_csv({_q(str(copy))}, {self.RAW_CSV})")
            scan, cols = typed_csv_scan(utf8, name)
            self.timed(rec, "load_write", self.load_and_write, src, utf8, scan, cols)
            utf8.unlink()
        return rec


def child_reference(args: argparse.Namespace) -> None:
    ref = _Reference(args)
    out = {"tables": {name: ref.table(name) for name in TABLES}}
    Path(args.out).write_text(json.dumps(out))


# --- the parent: run, sample RSS, report ------------------------------------------------------


def run_child(kind: str, args: argparse.Namespace, fmt: str, workdir: Path) -> tuple[dict, list]:
    import psutil

    out = workdir.parent / f"{workdir.name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--fmt", fmt,
           "--workdir", str(workdir), "--out", str(out), "--customers", str(args.customers),
           "--trades", str(args.trades), "--seed", str(args.seed),
           "--memory-limit", args.memory_limit]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    busy0, mine0, w0 = busy_cpu(), os.times(), time.perf_counter()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        rss = tree_rss(root)
        samples.append((time.time(), rss))
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"{kind} child failed ({proc.returncode}) for {fmt}")
    mine1, wall = os.times(), time.perf_counter() - w0
    ours = (mine1.children_user + mine1.children_system + mine1.user + mine1.system
            - mine0.children_user - mine0.children_system - mine0.user - mine0.system)
    result = json.loads(out.read_text())
    # Other sessions share the machine: CPU they used meanwhile makes the figures noisier.
    result["background_cpu"] = max(0.0, busy_cpu() - busy0 - ours)
    result["wall"] = wall
    return result, samples


def peak(samples: list[tuple[float, int]], start: float = 0, end: float = float("inf")) -> int:
    return max((r for t, r in samples if start - 0.05 <= t <= end + 0.05), default=0)


def wait_quiet(limit: float, console) -> None:  # type: ignore[no-untyped-def]
    """Other sessions share this machine: wait (up to ``limit`` s) until it is nearly idle."""
    import psutil

    t0 = time.perf_counter()
    while True:
        busy = psutil.cpu_percent(interval=3) / 100 * (os.cpu_count() or 1)
        if busy < 0.25:
            return
        waited = time.perf_counter() - t0
        if waited > limit:
            console.print(f"  [yellow]machine still busy ({busy:.1f} cores); measuring anyway")
            return
        if waited < 4:
            console.print(f"  machine busy ({busy:.1f} cores in use); waiting up to {limit:.0f} s")


def measure(args: argparse.Namespace, fmt: str, files: Files, console) -> dict:  # type: ignore[no-untyped-def]
    run = CACHE / "runs" / f"{fmt}-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    run.mkdir(parents=True)
    try:
        wait_quiet(args.quiet_wait, console)
        console.print(f"[bold]{fmt}[/]: caifu ingest (child process)")
        caifu, caifu_rss = run_child("caifu", args, fmt, run / "workspace")
        wait_quiet(args.quiet_wait, console)
        console.print(f"[bold]{fmt}[/]: references (child process)")
        ref, ref_rss = run_child("reference", args, fmt, run / "reference")
    finally:
        if not args.keep:
            shutil.rmtree(run, ignore_errors=True)
    for rec in caifu["tables"].values():
        rec["peak_rss"] = peak(caifu_rss, rec["start"], rec["end"])
    for rec in ref["tables"].values():
        rec["peak_rss"] = max(peak(ref_rss, t0, t1) for _, t0, t1 in rec["windows"])
    return {"format": fmt, "caifu": caifu, "reference": ref,
            "caifu_peak_rss": peak(caifu_rss), "reference_peak_rss": peak(ref_rss),
            "expected_trades": expected_counts(files.manifest(), fmt)}


def _rate(rows: int, secs: float) -> str:
    return f"{rows / secs:,.0f}" if secs else "-"


def _gb(b: int) -> str:
    return f"{b / 1024**3:.2f} GB"


def report(res: dict, args: argparse.Namespace, console) -> list[str]:  # type: ignore[no-untyped-def]
    from rich.table import Table

    fmt = res["format"]
    ref_name = ("DuckDB read_parquet → table" if fmt == "parquet" else
                "Python GBK→UTF-8 transcode + DuckDB read_csv(all_varchar) → table")
    t = Table(title=f"ingest {fmt} — reference: {ref_name}; memory_limit {args.memory_limit}",
              title_justify="left")
    for col in ("table", "rows", "caifu s", "caifu rows/s", "ref s", "ref rows/s", "ratio",
                "load+write s", "ratio vs load+write", "checksum", "read", "check", "write",
                "other", "CPU s", "ref CPU s", "peak RSS", "ref peak RSS"):
        t.add_column(col, justify="left" if col == "table" else "right")
    tot = {"rows": 0, "caifu": 0.0, "ref": 0.0, "lw": 0.0}
    for name in TABLES:
        c, r = res["caifu"]["tables"][name], res["reference"]["tables"][name]
        rows = c["rows_in"]
        ph = c["timings"]
        other = c["seconds"] - sum(ph.values())
        tot["rows"] += rows
        tot["caifu"] += c["seconds"]
        tot["ref"] += r["load"]
        tot["lw"] += r["load_write"]
        t.add_row(name, f"{rows:,}", f"{c['seconds']:.2f}", _rate(rows, c["seconds"]),
                  f"{r['load']:.2f}", _rate(rows, r["load"]), f"{r['load'] / c['seconds']:.2f}",
                  f"{r['load_write']:.2f}", f"{r['load_write'] / c['seconds']:.2f}",
                  *(f"{ph.get(p, 0):.2f}" for p in ("checksum", "read", "check", "write")),
                  f"{other:.2f}", f"{c['cpu']:.1f}", f"{r['load_cpu']:.1f}", _gb(c["peak_rss"]),
                  _gb(r["peak_rss"]))
    overall = tot["rows"] / tot["caifu"]
    ratio = tot["ref"] / tot["caifu"]
    t.add_row("[bold]all four", f"{tot['rows']:,}", f"{tot['caifu']:.2f}", f"{overall:,.0f}",
              f"{tot['ref']:.2f}", _rate(tot["rows"], tot["ref"]), f"{ratio:.2f}",
              f"{tot['lw']:.2f}", f"{tot['lw'] / tot['caifu']:.2f}", "", "", "", "", "", "", "",
              _gb(res["caifu_peak_rss"]), _gb(res["reference_peak_rss"]))
    console.print(t)
    if fmt == "gbk-csv":
        parts = [f"{n} {res['reference']['tables'][n]['load_utf8_copy']:.2f} s"
                 for n in TABLES]
        console.print("  DuckDB read_csv on a UTF-8 copy (no transcoding): " + ", ".join(parts))
    for who in ("caifu", "reference"):
        r = res[who]
        console.print(f"  background: other processes used {r['background_cpu']:.1f} CPU-s "
                      f"({r['background_cpu'] / r['wall']:.2f} cores on average) during the "
                      f"{who} run of {r['wall']:.0f} s")
    setup = ", ".join(f"{n} {res['caifu']['tables'][n]['seconds']:.2f} s" for n in SETUP)
    console.print(f"  setup (not in totals): {setup}")
    tr = res["caifu"]["tables"]["trades"]
    exp = res["expected_trades"]
    got = {"rows_in": tr["rows_in"], "quarantined": tr["quarantined"],
           "duplicates": tr["duplicates"]}
    ok = got == exp and tr["inserted"] == exp["rows_in"] - exp["quarantined"] - exp["duplicates"]
    console.print(f"  trades: {tr['inserted']:,} inserted, {tr['quarantined']:,} quarantined "
                  f"{tr['reasons']}, {tr['duplicates']:,} duplicates — "
                  + ("[green]matches the planted bad rows" if ok else f"[red]expected {exp}"))
    goals = [
        (f"{fmt}: overall caifu rows/s {overall:,.0f}", overall >= GOAL_ROWS_S, "≥ 1,000,000")
        if fmt == "parquet" else None,
        (f"{fmt}: ratio to raw-load limit {ratio:.2f}", ratio >= GOAL_RATIO, "≥ 0.3"),
        (f"{fmt}: caifu peak RSS {_gb(res['caifu_peak_rss'])}",
         res["caifu_peak_rss"] < GOAL_RSS, "< 4 GB"),
    ]
    lines = []
    for g in goals:
        if g is None:
            continue
        text, passed, goal = g
        console.print(f"  {'[green]PASS' if passed else '[red]FAIL'}[/] {text} (goal {goal})")
        lines.append(f"{'PASS' if passed else 'FAIL'} {text} (goal {goal})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--trades", type=int, default=20_000_000)
    ap.add_argument("--format", choices=(*FORMATS, "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="100k customers / 2M trades")
    ap.add_argument("--memory-limit", default="3GB",
                    help="DuckDB memory_limit for caifu and the references (Settings default 6GB)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keep", action="store_true", help="keep workspaces under .bench/runs")
    ap.add_argument("--quiet-wait", type=float, default=300, metavar="S",
                    help="before each measured child, wait up to S seconds for other "
                         "processes to go quiet (default 300; 0: don't wait)")
    ap.add_argument("--child", choices=("caifu", "reference"), help=argparse.SUPPRESS)
    ap.add_argument("--fmt", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        (child_caifu if args.child == "caifu" else child_reference)(args)
        return
    if args.quick:
        args.customers, args.trades = 100_000, 2_000_000

    from rich.console import Console

    console = Console(width=max(200, shutil.get_terminal_size().columns))
    formats = FORMATS if args.format == "both" else (args.format,)
    files = Files(args.customers, args.trades, args.seed)
    files.ensure(formats, lambda m: console.print(m))
    import deltalake
    import duckdb

    console.print(f"{platform.node()}: {os.cpu_count()} cores, "
                  f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB, "
                  f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
                  f"deltalake {deltalake.__version__}, pyarrow {pa.__version__}; "
                  f"{args.customers:,} customers / {args.trades:,} trades; "
                  f"DuckDB memory_limit {args.memory_limit}, threads {args.threads or 'default'}")
    results, verdicts = [], []
    for fmt in formats:
        res = measure(args, fmt, files, console)
        results.append(res)
        verdicts += report(res, args, console)
    out = CACHE / "results" / f"ingest-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results, "verdicts": verdicts},
                              indent=1, default=str))
    console.print(f"raw results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
