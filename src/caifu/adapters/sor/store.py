"""Opening the system of record and bringing its schema up to date."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event

from caifu.adapters.sor import rls
from caifu.core.errors import WorkspaceError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; many processes can read while one ingests.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # An erased customer's rows must not live on in free pages: SQLite overwrites deleted
    # content with zeros. Set here because the library's compiled-in default varies.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


# Page cache for a bulk write, in KiB. With SQLite's 2 MB default, inserting 1M customers
# (primary key and two secondary indexes) took 8.6 s; with 256 MB, 6.0 s.
BULK_CACHE_KIB = 256 * 1024


@contextmanager
def bulk_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction, on SQLite with a large page cache, then the connection's own again.

    The cache is set and restored outside the transaction so the written pages are committed
    before the cache shrinks; pooled connections outlive the batch, and a 256 MB cache kept
    through the next (DuckDB-heavy) batch would add to its peak memory.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
            conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size={before}")
                conn.exec_driver_sql("PRAGMA shrink_memory")
                conn.commit()


class Checkpointer:
    """SQLite, in a long-running process (the API): the WAL is copied into the database file
    by a thread of its own, not by whichever request's commit crosses SQLite's 1,000-page
    mark — that commit otherwise pays the checkpoint, the tail of the sidebar's latency
    (bench/recommend_serving.py: p99 8–10 ms → 2.4–4.2 ms at 100k lists). ``start`` turns the
    automatic checkpoint off on the engine's connections (the pool is emptied so every
    connection gets it) and checkpoints every ``interval`` seconds, PASSIVE (it never waits
    for readers or blocks writers); ``stop`` checkpoints once more and gives the connections
    their automatic checkpoint back. A no-op on PostgreSQL."""

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine, self.interval = engine, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _manual(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    def start(self) -> None:
        if self.engine.dialect.name != "sqlite" or self._thread is not None:
            return
        event.listen(self.engine, "connect", self._manual)
        self.engine.dispose()
        self._thread = threading.Thread(target=self._run, name="caifu-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except Exception:  # the next tick tries again; the WAL only grows meanwhile
                logging.getLogger(__name__).exception("WAL checkpoint failed")

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        event.remove(self.engine, "connect", self._manual)
        self.engine.dispose()
        self.checkpoint()


def open_engine(url: str) -> Engine:
    """An engine for the SoR at ``url`` (sqlite:///path or postgresql+psycopg://…). A pooled
    connection is pinged before use on a server database only: a SQLite file cannot drop the
    connection, and the ping was one more round trip on every checkout."""
    try:
        engine = create_engine(url, future=True,
                               pool_pre_ping=not url.startswith("sqlite"))
    except Exception as exc:  # bad URL, missing driver
        raise WorkspaceError(f"cannot open the system of record at {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    rls.install(engine)
    return engine


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("caifu.adapters.sor") / "migrations"))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the SoR schema to ``revision`` (idempotent)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
