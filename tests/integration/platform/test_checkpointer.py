"""The API's WAL checkpointer (``adapters.sor.store.Checkpointer``): while it runs, no
connection checkpoints on commit and its own thread moves the WAL into the database file;
once stopped, connections checkpoint on their own again and nothing written is lost."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from caifu.adapters.sor.store import Checkpointer, open_engine


def _autocheckpoint(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write(engine, rows: int) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 500}] * rows)


def _wal_frames(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(frames in the WAL, frames already in the database file), without checkpointing."""
    with engine.connect() as conn:
        # a PASSIVE checkpoint of nothing new reports the current state
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(log), int(done)


def test_the_wal_is_checkpointed_by_the_thread_not_by_commits(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'sor.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    assert _autocheckpoint(engine) == 1000  # SQLite's default, before

    cp = Checkpointer(engine, interval=3600)  # no tick during the test: checkpoints by hand
    cp.start()
    try:
        assert _autocheckpoint(engine) == 0
        wal = tmp_path / "sor.db-wal"
        for _ in range(80):  # 8 MB of rows: ~2,000 pages, two automatic checkpoints' worth
            _write(engine, 200)
        # nothing moved the WAL back to its start: it holds every page written since (with
        # the automatic checkpoint, the file is reused from its start past 1,000 pages)
        assert wal.stat().st_size > 1500 * 4096
        cp.checkpoint()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 16000
    finally:
        cp.stop()
    assert _autocheckpoint(engine) == 1000  # given back
    log, done = _wal_frames(engine)
    assert log == done  # everything in the database file


def test_the_thread_checkpoints_on_its_own(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'sor.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    cp = Checkpointer(engine, interval=0.05)
    cp.start()
    try:
        _write(engine, 500)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log, done = _wal_frames(engine)
            if log and log == done:
                break
            time.sleep(0.05)
        assert log > 0 and log == done
    finally:
        cp.stop()


def test_postgresql_is_left_alone() -> None:
    engine = open_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    cp = Checkpointer(engine)
    cp.start()
    assert cp._thread is None
    cp.stop()
