"""The one place that decides which adapters run, from Settings and the workspace file."""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import yaml
from ibis.backends.duckdb import Backend
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from caifu.adapters.engines import duckdb as duckdb_engine
from caifu.adapters.engines.session import DuckDBSession, EngineSession, SparkSession
from caifu.adapters.lake.delta import Lake
from caifu.adapters.sor.store import current_revision, head_revision, open_engine
from caifu.core.clock import Clock, SystemClock
from caifu.core.errors import ConfigError, WorkspaceError
from caifu.services.platform.telemetry import Counters
from caifu.settings import Settings

WORKSPACE_FILE = "caifu.yaml"


@dataclass
class Container:
    root: Path
    sor_url: str
    engine: Engine
    lake: Lake
    settings: Settings
    # how WeCom API calls travel: None is real HTTP to the tenant's configured base URL; tests
    # put the fake WeCom's httpx.MockTransport here (services/wecom.client_for)
    wecom_transport: Any = None
    # the WeCom token cache and per-corp rate limiters of this process (services/wecom)
    wecom_shared: dict[str, Any] = field(default_factory=dict)
    # what time it is (naive UTC): tests put a core.clock.FixedClock here
    clock: Clock = field(default_factory=SystemClock)
    # this process's operational counters, exported at GET /metrics (services/platform/telemetry)
    counters: Counters = field(default_factory=Counters)

    @contextmanager
    def scratch(self, job: str) -> Iterator[Path]:
        """A private scratch folder for one job, removed afterwards."""
        path = self.root / "tmp" / job
        path.mkdir(parents=True, exist_ok=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    @contextmanager
    def lock(self, tenant: str, name: str) -> Iterator[None]:
        """An exclusive, cross-process lock on (tenant, name) — a lake table's writers, or
        ``serving`` for the build and the real-time worker. The same files as ingest's."""
        lock_dir = self.root / "locks"
        lock_dir.mkdir(exist_ok=True)
        with (lock_dir / f"{tenant}.{name}.lock").open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def duckdb(self, scratch: Path) -> Backend:
        """A fresh, ephemeral DuckDB for one job (never shared across threads).

        It spills into the job's own scratch folder: DuckDB instances sharing a spill folder
        have been seen to remove each other's files.
        """
        return duckdb_engine.connect(
            temp_dir=scratch / "duckdb",
            memory_limit=self.settings.duckdb_memory_limit,
            threads=self.settings.duckdb_threads,
        )

    def session(self, engine: str, scratch: Path) -> EngineSession:
        """The engine a pipeline job runs on: ``duckdb`` (default) or ``spark``."""
        if engine == "duckdb":
            return DuckDBSession(scratch, self.settings.duckdb_memory_limit,
                                 self.settings.duckdb_threads)
        if engine == "spark":
            return SparkSession(self.settings.spark_master)
        raise ConfigError(f"unknown engine {engine!r}; use duckdb or spark")

    @contextmanager
    def job_session(self, engine: str, job: str) -> Iterator[EngineSession]:
        """An engine session for one job in its own scratch folder; both end with the block."""
        with self.scratch(f"{job}-{time.time_ns()}") as scratch:
            s = self.session(engine, scratch)
            try:
                yield s
            finally:
                s.close()

    def lake_table(self, con: Backend, tenant: str, table: str) -> ir.Table | None:
        """A lake table as an Ibis table on ``con`` (None while it has no data).

        Read through the Delta log's current file list, so DuckDB needs no extension.
        """
        files = self.lake.files(tenant, table)
        return con.read_parquet(files) if files else None

    def lake_query(self, tenant: str, table: str, sql: str,
                   params: list[Any] | None = None) -> pa.Table | None:
        """``sql`` over a lake table (named ``table`` in it) as Arrow, in an ephemeral DuckDB;
        None while the table has no data. Its files may differ in physical types (a real-time
        append beside the nightly ingest): DuckDB unifies them by column name."""
        files = self.lake.files(tenant, table)
        if not files:
            return None
        import duckdb

        con = duckdb.connect()
        try:
            con.read_parquet([str(f) for f in files], union_by_name=True).create_view(table)
            return con.sql(sql, params=params or None).to_arrow_table()
        finally:
            con.close()

    def close(self) -> None:
        self.engine.dispose()


def default_sor_url(root: Path) -> str:
    return f"sqlite:///{(root / 'sor.db').resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL as written (maybe relative); None for another database or
    an in-memory one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _with_path(url: str, path: Path) -> str:
    return make_url(url).set(database=str(path)).render_as_string(hide_password=False)


def stored_sor_url(url: str, root: Path) -> str:
    """The URL as caifu.yaml keeps it: a SQLite file inside the workspace relative to it, so
    a copied, moved or restored workspace opens its own database; anything else as given."""
    path = sqlite_path(url)
    if path is None or not path.is_absolute():
        return url
    try:
        return _with_path(url, path.resolve().relative_to(root.resolve()))
    except ValueError:
        return url  # outside the workspace: stays absolute


def resolve_sor_url(url: str, root: Path) -> str:
    """A caifu.yaml URL made absolute: a relative SQLite path is relative to the workspace."""
    path = sqlite_path(url)
    if path is None or path.is_absolute():
        return url
    return _with_path(url, (root / path).resolve())


def owning_workspace(path: Path, root: Path) -> Path | None:
    """The other workspace whose folder holds ``path`` (the nearest one above it), or None
    when that is ``root`` itself or no workspace holds it."""
    root = root.resolve()
    for folder in path.resolve().parents:
        if folder == root:
            return None
        if (folder / WORKSPACE_FILE).is_file():
            return folder
    return None


def moved_from(url: str, root: Path) -> Path | None:
    """For a caifu.yaml that an older caifu wrote with an absolute SQLite path: the
    workspace's own file of that name when the path leads outside it — into another
    workspace, or nowhere — i.e. the workspace was copied or moved. None otherwise."""
    path = sqlite_path(url)
    if path is None or not path.is_absolute():
        return None
    local = root.resolve() / path.name
    if path.resolve() == local or not local.is_file():
        return None
    if owning_workspace(path, root) is not None or not path.exists():
        return local
    return None


def read_workspace_file(root: Path) -> dict[str, Any]:
    config_path = root / WORKSPACE_FILE
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise WorkspaceError(f"{config_path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise WorkspaceError(f"{config_path}: expected a mapping (version, sor_url, lake)")
    return config


def write_workspace_file(root: Path, sor_url: str, workspace_id: str | None = None,
                         share_database: bool = False) -> None:
    config: dict[str, Any] = {"version": 1, "sor_url": stored_sor_url(sor_url, root),
                              "lake": "lake"}
    if workspace_id:
        config["workspace_id"] = workspace_id
    if share_database:  # `caifu init --share-database`: said once, remembered
        config["share_database"] = True
    (root / WORKSPACE_FILE).write_text(
        "# caifu workspace; a relative SQLite path is relative to this folder\n"
        + yaml.safe_dump(config, allow_unicode=True), encoding="utf-8"
    )


def _refuse_foreign_database(stored: str, root: Path, config_path: Path) -> None:
    path = sqlite_path(stored)
    if path is None:
        return
    local = moved_from(stored, root)
    if local is not None:
        raise WorkspaceError(
            f"{config_path}: sor_url points at {path}, outside this workspace, while the "
            f"workspace has its own {local.name} — it was copied or moved, and would write "
            f"into another workspace's database; run `caifu init {root}` to use {local}")
    resolved = sqlite_path(resolve_sor_url(stored, root))
    other = owning_workspace(resolved, root) if resolved is not None else None
    if other is not None:
        raise WorkspaceError(
            f"{config_path}: sor_url points at {path}, a database inside the workspace at "
            f"{other}; a workspace writes only its own (run `caifu init {root}` to give it "
            "one, or `caifu init --share-database` if sharing is meant)")


def build(settings: Settings, root: Path | None = None, check_schema: bool = True) -> Container:
    root = (root or settings.workspace).resolve()
    if any(ch in str(root) for ch in "*?[]"):
        # DuckDB reads lake files by path and would take these characters as a glob.
        raise WorkspaceError(f"{root}: a workspace path may not contain * ? [ or ]")
    config_path = root / WORKSPACE_FILE
    if not config_path.is_file():
        raise WorkspaceError(f"no caifu workspace at {root} (run `caifu init {root}` first)")
    config = read_workspace_file(root)
    sor_url = settings.sor_url
    if not sor_url:
        stored = str(config.get("sor_url") or default_sor_url(root))
        if not config.get("share_database"):
            _refuse_foreign_database(stored, root, config_path)
        sor_url = resolve_sor_url(stored, root)
    lake_root = root / str(config.get("lake", "lake"))
    engine = open_engine(sor_url)
    if check_schema:
        have, need = current_revision(engine), head_revision()
        if have != need:
            engine.dispose()
            raise WorkspaceError(
                f"the system of record of {root} is at schema {have or 'none'} but this caifu "
                f"needs {need}; run `caifu init {root}` to upgrade it")
    return Container(root, sor_url, engine, Lake(lake_root), settings)
