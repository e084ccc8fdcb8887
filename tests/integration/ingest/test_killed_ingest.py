"""An ingest killed with SIGKILL while writing the lake: the next ingest marks its batch
failed ("interrupted", loaded 0) and removes its uncommitted Parquet files and scratch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from caifu.adapters.sor.models import ingest_log
from caifu.services.ingest.load import Ingest
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings
from tests.factories import BRANCHES, TRADE_HEADER, seed_reference, trade_row, trades_csv, write

T = "acme"
ROWS = 1_500_000


def test_a_killed_batch_is_recovered_by_the_next_ingest(tmp_path: Path) -> None:
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="1GB"))
    create_tenant(c, T, "甲乙证券")
    seed_reference(tmp_path / "ref")
    Ingest(c).ingest(T, [tmp_path / "ref"])
    big = tmp_path / "big" / "trades.csv"
    big.parent.mkdir()
    with big.open("w") as f:
        f.write(TRADE_HEADER + "\n")
        for i in range(1, ROWS + 1):
            f.write(trade_row(i) + "\n")

    proc = subprocess.Popen(
        [sys.executable, "-c", "from caifu.cli import app; app()", "ingest", "-t", T,
         "-w", str(c.root), str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "CAIFU_DUCKDB_THREADS": "1"})
    lake = c.lake.path(T, "trades")
    batch = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            with c.engine.connect() as conn:
                batch = conn.execute(select(ingest_log.c.batch_id).where(
                    ingest_log.c.table_name == "trades",
                    ingest_log.c.status == "committing")).scalar()
            if batch is not None and (lake / f"batch-{batch}").is_dir():
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the ingest ended before it could be killed"
        assert batch is not None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    scratch = [p for p in (c.root / "tmp").iterdir() if p.is_dir()]
    assert scratch and (lake / f"batch-{batch}").is_dir()  # what the killed process left

    # the next ingest, of another table: the trades lock is free, so it settles trades too
    Ingest(c).ingest(T, [write(tmp_path / "b" / "branches.csv", BRANCHES)])

    with c.engine.connect() as conn:
        row = conn.execute(select(ingest_log).where(ingest_log.c.batch_id == batch)).one()
    assert row.status == "failed" and row.error.startswith("interrupted")
    assert (row.loaded, row.inserted, row.quarantined) == (0, 0, 0)
    assert not (lake / f"batch-{batch}").exists()
    assert [p for p in (c.root / "tmp").iterdir() if p.is_dir()] == []
    assert c.lake.count(T, "trades") == 0
    [r] = Ingest(c).ingest(T, [write(tmp_path / "t" / "trades.csv", trades_csv(range(1, 6)))])
    assert r.inserted == 5 and c.lake.count(T, "trades") == 5
    c.close()
