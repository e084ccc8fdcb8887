"""``caifu recommend batch``: every customer's top-k list as one Parquet or CSV file.

One row per (customer, rank): ``customer_id, rank, item_id, item_type, score, reason,
policy_version`` — so anyone can check a list against the system of record (the item's
R-level against the customer's assessment, the reason against his history). Customers with
fewer than k eligible items get shorter lists (the file says how many); customers with none
get no rows and are counted. Written a block of customers at a time: memory stays flat at a
million customers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from caifu.recommend.catalogue import ITEM_TYPES
from caifu.recommend.eligibility import recheck
from caifu.recommend.reasons import explain
from caifu.services.recommend.policy import BLOCK, Fitted, Stages

SCHEMA = pa.schema([("customer_id", pa.string()), ("rank", pa.int16()),
                    ("item_id", pa.string()), ("item_type", pa.string()),
                    ("score", pa.float64()), ("reason", pa.string()),
                    ("policy_version", pa.string())])


@dataclass
class BatchResult:
    customers: int
    rows: int
    empty: int  # customers with no eligible item
    short: int  # customers with fewer than k eligible items
    violations: int  # suitability re-check of every written pair (must be 0)
    seconds: float
    stages: dict[str, float]  # wall seconds per stage (``policy.Stages``)
    stages_cpu: dict[str, float]  # process CPU seconds per stage


def block_table(f: Fitted, rows: np.ndarray, k: int, stages: Stages | None = None,
                ids: np.ndarray | None = None, memo: dict[int, str | None] | None = None
                ) -> tuple[pa.Table, np.ndarray, int]:
    """The rows of one block of customers, each customer's list length, and the block's
    re-check violations. ``ids``: ``f.ids`` as an array (made once per batch, not per block);
    ``memo``: the re-check's verdicts so far (``eligibility.recheck``)."""
    stage = stages or Stages()
    lists, scores = f.lists(rows, k, stages=stage)
    chosen = lists >= 0
    r = np.repeat(rows, k)[chosen.ravel()]
    items = lists[chosen]
    with stage("reasons"):
        reasons = explain(f.ctx, r, items)
    with stage("re-check"):
        rc = recheck(f.elig.cust, f.data.cat, f.day, r, items, memo=memo)
    with stage("write"):
        if ids is None:
            ids = np.asarray(f.ids, dtype=object)
        rank = np.tile(np.arange(1, k + 1, dtype=np.int16), len(rows))[chosen.ravel()]
        table = pa.table({
            "customer_id": pa.array(ids[r], pa.string()),
            "rank": pa.array(rank, pa.int16()),
            "item_id": pa.array(f.data.cat.item_id[items], pa.string()),
            "item_type": pa.array(np.asarray(ITEM_TYPES, dtype=object)[
                f.data.cat.item_type[items]], pa.string()),
            "score": pa.array(scores[chosen], pa.float64()),
            "reason": pa.array(reasons, pa.string()),
            "policy_version": pa.array(np.full(len(r), f.version, dtype=object), pa.string()),
        }, schema=SCHEMA)
    return table, chosen.sum(axis=1), rc.violations


def write(f: Fitted, out: Path, k: int = 10,
          progress: Callable[[int, int], None] = lambda _done, _total: None,
          block: int = BLOCK, workers: int = 2) -> BatchResult:
    """Every customer's list into ``out`` (.parquet, or .csv), ``block`` customers at a time
    (memory grows with the block: ~0.3 MB per customer at 500 items, times twice the workers
    in flight). ``workers`` blocks are listed at once, each on its own thread with a
    one-thread LightGBM — numpy and LightGBM release the GIL, so two cores do twice the work —
    and written in customer order: the file is the same for any number of workers."""
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise ValueError(f"{out}: the batch file must end in .parquet or .csv")
    if block < 1 or workers < 1:
        raise ValueError(f"block and workers must be at least 1 (got {block}, {workers})")
    t0 = time.perf_counter()
    n = len(f.ids)
    ids = np.asarray(f.ids, dtype=object)
    memo: dict[int, str | None] = {}
    threaded = workers > 1
    stages = Stages(time.thread_time if threaded else time.process_time)
    per_thread: list[Stages] = []
    local = threading.local()
    g = replace(f, predict_threads=1) if threaded else f

    def listed(rows: np.ndarray) -> tuple[pa.Table, np.ndarray, int]:
        if not hasattr(local, "stages"):
            local.stages = Stages(time.thread_time)
            per_thread.append(local.stages)
        return block_table(g, rows, k, local.stages, ids, memo)

    written = empty = short = violations = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | pacsv.CSVWriter = (
        pq.ParquetWriter(out, SCHEMA) if out.suffix.lower() == ".parquet"
        else pacsv.CSVWriter(out, SCHEMA))

    def take(rows: np.ndarray, table: pa.Table, counts: np.ndarray, v: int) -> None:
        nonlocal written, empty, short, violations
        empty += int((counts == 0).sum())
        short += int(((counts > 0) & (counts < k)).sum())
        violations += v
        written += table.num_rows
        with stages("write"):
            writer.write_table(table)
        progress(int(rows[-1]) + 1, n)

    blocks = (np.arange(s, min(s + block, n)) for s in range(0, n, block))
    # one BLAS thread: the products here are small, and BLAS threads spinning idle between
    # them cost a tenth of the batch's CPU (measured; the results are the same)
    try:
        with threadpool_limits(1, "blas"):
            if not threaded:
                for rows in blocks:
                    take(rows, *block_table(f, rows, k, stages, ids, memo))
            else:
                _threaded(listed, take, blocks, workers)
    finally:
        writer.close()
    for other in per_thread:
        stages.add(other)
    return BatchResult(n, written, empty, short, violations, time.perf_counter() - t0,
                       stages.seconds, stages.cpu)


def _threaded(listed: Callable[[np.ndarray], tuple[pa.Table, np.ndarray, int]],
              take: Callable[..., None], blocks: Iterator[np.ndarray], workers: int) -> None:
    """Blocks listed on ``workers`` threads, taken in their order; at most twice the workers
    in flight (memory stays flat)."""
    with ThreadPoolExecutor(workers, thread_name_prefix="recommend-batch") as pool:
        pending: deque[tuple[np.ndarray, Future[tuple[pa.Table, np.ndarray, int]]]] = deque()
        for rows in blocks:
            pending.append((rows, pool.submit(listed, rows)))
            if len(pending) > 2 * workers:
                done, future = pending.popleft()
                take(done, *future.result())
        while pending:
            done, future = pending.popleft()
            take(done, *future.result())
