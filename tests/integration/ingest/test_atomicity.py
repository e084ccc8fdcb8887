"""A batch lands whole or not at all, even when the ingesting process is SIGKILLed.

A child process ingests a trades file and is killed at a chosen point: at each ingest phase
(through the ``progress`` callback), just before the Delta commit, in the middle of the Delta
write, just after the Delta commit (before the log is marked committed), and inside the
system-of-record transaction of a customers file; then at two moments chosen by the clock
from outside. After every kill the lake holds none or all of the batch; the next ingest settles
the crashed batch (``failed`` and its quarantine dropped, or ``committed``), and re-running the
file lands every row exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES, ingest_log, ingest_quarantine
from caifu.services.container import Container, build, default_sor_url, write_workspace_file
from caifu.services.ingest.load import Ingest
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings
from tests.factories import (
    customer_row,
    customers_csv,
    seed_reference,
    trade_row,
    trades_csv,
    write,
)

SETTINGS = Settings(duckdb_memory_limit="1GB", sor_url=None)

# The child: open the workspace, arrange to SIGKILL itself at ``mode``, ingest one file.
CHILD = r"""
import os, signal, sys
from pathlib import Path

from caifu.adapters.lake.delta import Lake
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.services.container import build
from caifu.services.ingest.load import Ingest
from caifu.settings import Settings

root, source, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def progress(name, phase):
    print("phase", phase, flush=True)
    if mode == "phase:" + phase:
        die()


original_folder = Lake.data_folder
original_append_files = Lake.append_files


def data_folder(self, tenant, table, batch_id):
    if mode == "before-append":
        die()
    return original_folder(self, tenant, table, batch_id)


def append_files(self, tenant, contract, folder, batch_id, expected_rows):
    if mode == "mid-append":
        die()  # the batch's data files are written, its Delta commit is not
    rows = original_append_files(self, tenant, contract, folder, batch_id, expected_rows)
    if mode == "after-append":
        die()
    return rows


Lake.data_folder = data_folder
Lake.append_files = append_files
if mode == "sor-transaction":
    ingest_repo.update_rows = lambda *args, **kwargs: die()  # runs after insert_rows, same transaction

container = build(Settings(duckdb_memory_limit="1GB", sor_url=None), root)
print("ready", flush=True)
Ingest(container).ingest("acme", [source], progress=progress)
print("finished", flush=True)
"""


@dataclass(frozen=True)
class TradesFile:
    path: Path
    valid: int  # distinct valid trade ids: what the lake must hold once it is loaded
    quarantined: int
    duplicates: int

    @property
    def rows_in(self) -> int:
        return self.valid + self.quarantined + self.duplicates


def _trades_file(path: Path, n: int, *, dirty: bool) -> TradesFile:
    extra = []
    if dirty:
        extra = [trade_row(n + 1, side="X"), trade_row(n + 2, quantity="0"),
                 trade_row(n + 3, trade_date="2025-02-30"), "T9999999,C00001,F00001",
                 trade_row(5), trade_row(6)]  # 4 rejects, then 2 duplicates within the file
    write(path, trades_csv(range(1, n + 1), extra))
    return TradesFile(path, n, 4 if dirty else 0, 2 if dirty else 0)


@dataclass(frozen=True)
class Files:
    template: Path  # a closed, seeded workspace to copy
    dirty: TradesFile
    clean: TradesFile
    big: TradesFile
    customers: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    base = tmp_path_factory.mktemp("atomicity")
    c = init_workspace(base / "template", SETTINGS)
    create_tenant(c, "acme", "甲乙证券")
    for r in Ingest(c).ingest("acme", seed_reference(base / "ref")):
        assert r.balanced and r.quarantined == 0, r
    c.close()
    customers = customers_csv(0, [customer_row(i) for i in range(6, 106)])
    return Files(
        template=base / "template",
        dirty=_trades_file(base / "src" / "trades_dirty.csv", 5_000, dirty=True),
        clean=_trades_file(base / "src" / "trades_clean.csv", 5_000, dirty=False),
        big=_trades_file(base / "src" / "trades_big.csv", 150_000, dirty=True),
        customers=write(base / "src" / "customers_new.csv", customers),
    )


@pytest.fixture
def ws(files: Files, tmp_path: Path) -> Iterator[Container]:
    """A fresh copy of the seeded workspace (SQLite SoR inside it)."""
    root = tmp_path / "ws"
    shutil.copytree(files.template, root)
    write_workspace_file(root, default_sor_url(root))
    c = build(SETTINGS, root)
    yield c
    c.close()


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CAIFU_")}


def run_child(ws: Container, source: Path, mode: str) -> int:
    """Ingest ``source`` in a child that SIGKILLs itself at ``mode``; its return code."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ws.root), str(source), mode],
                          capture_output=True, text=True, timeout=120, env=_child_env(),
                          cwd=ws.root)
    assert proc.returncode == -signal.SIGKILL, (
        f"child was not killed at {mode}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode


def kill_from_outside(ws: Container, source: Path, after_phase: str, delay: float) -> str:
    """Start an ingest and SIGKILL it ``delay`` s after it enters ``after_phase``."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ws.root), str(source), "none"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_child_env(), cwd=ws.root)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.strip() == f"phase {after_phase}":
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (-signal.SIGKILL, 0), err
    return "killed" if proc.returncode == -signal.SIGKILL else "finished"


# --- what must hold --------------------------------------------------------------------------


def _log(ws: Container, table: str = "trades") -> list[dict]:
    with ws.engine.connect() as conn:
        rows = conn.execute(select(ingest_log).where(ingest_log.c.tenant_id == "acme",
                                                     ingest_log.c.table_name == table)
                            .order_by(ingest_log.c.started_at)).all()
    return [dict(r._mapping) for r in rows]


def _quarantine(ws: Container, batch_id: str) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ingest_quarantine).where(
            ingest_quarantine.c.tenant_id == "acme",
            ingest_quarantine.c.batch_id == batch_id)).scalar_one())


def _lake_trades(ws: Container) -> tuple[int, int]:
    """(rows, distinct trade ids) in the trades table, read from its current files."""
    files = ws.lake.files("acme", "trades")
    if not files:
        return 0, 0
    con = duckdb.connect()
    try:
        (rows, ids), = con.execute(
            "SELECT count(*), count(DISTINCT trade_id) FROM read_parquet($files)",
            {"files": files}).fetchall()
    finally:
        con.close()
    assert ws.lake.count("acme", "trades") == rows
    return int(rows), int(ids)


def assert_whole_or_nothing(ws: Container, f: TradesFile) -> str | None:
    """Right after a kill: the lake has none or all of the batch. The crashed batch's id."""
    rows, ids = _lake_trades(ws)
    assert rows in (0, f.valid), f"partial batch in the lake: {rows} of {f.valid}"
    assert ids == rows
    log = _log(ws)
    assert len(log) <= 1
    if not log:  # killed before the batch was logged: nothing of it anywhere
        assert rows == 0
        return None
    (entry,) = log
    assert entry["status"] == "committing"
    assert _quarantine(ws, entry["batch_id"]) == f.quarantined
    return str(entry["batch_id"])


def rerun_and_check(ws: Container, f: TradesFile, crashed: str | None) -> None:
    """Re-run the file in-process: the crashed batch is settled and every row is there once."""
    landed_before, _ = _lake_trades(ws)
    (result,) = Ingest(ws).ingest("acme", [f.path])
    assert result.balanced, result
    assert result.rows_in == f.rows_in
    assert result.quarantined == f.quarantined
    if landed_before:  # the crashed batch did commit: the re-run adds nothing
        assert (result.inserted, result.duplicates) == (0, f.valid + f.duplicates)
    else:
        assert (result.inserted, result.duplicates) == (f.valid, f.duplicates)
    assert _lake_trades(ws) == (f.valid, f.valid)

    statuses = {e["batch_id"]: e["status"] for e in _log(ws)}
    assert "committing" not in statuses.values(), statuses
    assert statuses[result.batch_id] == "committed"
    assert _quarantine(ws, result.batch_id) == f.quarantined
    if crashed is not None:
        settled = "committed" if landed_before else "failed"
        assert statuses[crashed] == settled
        assert _quarantine(ws, crashed) == (f.quarantined if landed_before else 0)


# --- deterministic kills ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [
    "phase:checksum", "phase:read", "phase:check", "phase:write",
    "before-append", "mid-append",
])
def test_kill_before_the_lake_commit_leaves_nothing(ws: Container, files: Files,
                                                    mode: str) -> None:
    run_child(ws, files.dirty.path, mode)
    crashed = assert_whole_or_nothing(ws, files.dirty)
    assert _lake_trades(ws) == (0, 0)
    assert (crashed is not None) == mode.endswith("append")  # logged once writing began
    rerun_and_check(ws, files.dirty, crashed)


def test_kill_after_the_lake_commit_keeps_the_batch(ws: Container, files: Files) -> None:
    run_child(ws, files.dirty.path, "after-append")
    crashed = assert_whole_or_nothing(ws, files.dirty)
    assert crashed is not None
    assert _lake_trades(ws) == (files.dirty.valid, files.dirty.valid)
    assert ws.lake.committed_batches("acme", "trades") == {crashed}
    rerun_and_check(ws, files.dirty, crashed)


def test_kill_after_commit_before_log_rerun_is_all_duplicates(ws: Container,
                                                               files: Files) -> None:
    f = files.clean
    run_child(ws, f.path, "after-append")
    (pending,) = _log(ws)
    assert pending["status"] == "committing"
    (result,) = Ingest(ws).ingest("acme", [f.path])
    assert (result.rows_in, result.inserted, result.quarantined, result.duplicates) == (
        f.valid, 0, 0, f.valid)
    settled = {e["batch_id"]: e for e in _log(ws)}[pending["batch_id"]]
    assert settled["status"] == "committed"
    assert "after the lake commit" in (settled["error"] or "")
    assert _lake_trades(ws) == (f.valid, f.valid)
    # the profile its writer did not live to record, from the batch's Parquet footers
    from sqlalchemy import select

    from caifu.adapters.sor.quality_models import ingest_profiles as ip
    from caifu.services.quality.history import history

    profiles = {h["batch_id"]: h for h in history(ws, "acme", "trades")}
    assert profiles[pending["batch_id"]]["profiled"]
    assert profiles[pending["batch_id"]]["null_counts"]["trade_id"] == 0
    assert profiles[pending["batch_id"]]["oldest_date"] is not None
    with ws.engine.connect() as conn:
        assert conn.execute(select(ip.c.rows_loaded).where(
            ip.c.batch_id == pending["batch_id"])).scalar_one() == f.valid


def test_settled_batch_records_its_counts(ws: Container, files: Files) -> None:
    f = files.clean
    run_child(ws, f.path, "after-append")
    Ingest(ws).ingest("acme", [f.path])
    settled = _log(ws)[0]
    assert (settled["rows_in"], settled["loaded"]) == (f.valid, f.valid)


def test_files_of_a_crashed_write_never_become_visible(ws: Container, files: Files) -> None:
    """A writer killed after writing data files but before the Delta commit leaves orphans.

    "mid-append" kills the child once DuckDB has written the batch's files into the table
    folder, before they are committed; one more orphan is planted beside them.
    """
    f = files.dirty
    run_child(ws, f.path, "mid-append")
    table_dir = ws.lake.path("acme", "trades")
    assert list(table_dir.glob("batch-*/*.parquet")), "the kill came before the files"
    orphan = pa.table({"trade_id": ["T0000001", "ORPHAN01"], "quantity": [1, 2]})
    pq.write_table(orphan, table_dir / "part-00000-0000-orphan-c000.snappy.parquet")
    crashed = assert_whole_or_nothing(ws, f)
    rerun_and_check(ws, f, crashed)  # exactly f.valid rows, none of them the orphan's
    assert all("orphan" not in uri for uri in ws.lake.files("acme", "trades"))


def test_settling_needs_no_rerun_of_the_same_file(ws: Container, files: Files,
                                                  tmp_path: Path) -> None:
    """Any next ingest of the table settles a crashed batch, not only a re-run."""
    run_child(ws, files.dirty.path, "before-append")
    (pending,) = _log(ws)
    other = _trades_file(tmp_path / "trades_other.csv", 10, dirty=False)
    (result,) = Ingest(ws).ingest("acme", [other.path])
    assert result.inserted == 10
    statuses = {e["batch_id"]: e["status"] for e in _log(ws)}
    assert statuses[pending["batch_id"]] == "failed"
    assert _quarantine(ws, pending["batch_id"]) == 0


def test_kill_inside_the_sor_transaction_rolls_back(ws: Container, files: Files) -> None:
    customers = CONTRACT_TABLES["customers"]

    def stored() -> int:
        with ws.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(customers).where(
                customers.c.tenant_id == "acme")).scalar_one())

    run_child(ws, files.customers, "sor-transaction")
    assert stored() == 5
    assert [e for e in _log(ws, "customers") if e["source_path"] == str(files.customers)] == []
    (result,) = Ingest(ws).ingest("acme", [files.customers])
    assert (result.rows_in, result.inserted, result.quarantined) == (100, 100, 0)
    assert stored() == 105


# --- kills from outside, at a moment chosen by the clock ------------------------------------


@pytest.mark.parametrize(("after_phase", "delay"), [("check", 0.3), ("write", 0.05)])
def test_kill_at_a_random_moment(ws: Container, files: Files, after_phase: str,
                                 delay: float) -> None:
    outcome = kill_from_outside(ws, files.big.path, after_phase, delay)
    crashed = assert_whole_or_nothing(ws, files.big) if outcome == "killed" else None
    rerun_and_check(ws, files.big, crashed)
