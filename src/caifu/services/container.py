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
import yaml
from ibis.backends.duckdb import Backend
from sqlalchemy import Engine

from caifu.adapters.engines import duckdb as duckdb_engine
from caifu.adapters.engines.session import DuckDBSession, EngineSession, SparkSession
from caifu.adapters.lake.delta import Lake
from caifu.adapters.sor.store import current_revision, head_revision, open_engine
from caifu.core.clock import Clock, SystemClock
from caifu.core.errors import ConfigError, WorkspaceError
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

    def close(self) -> None:
        self.engine.dispose()


def default_sor_url(root: Path) -> str:
    return f"sqlite:///{(root / 'sor.db').resolve()}"


def write_workspace_file(root: Path, sor_url: str) -> None:
    config = {"version": 1, "sor_url": sor_url, "lake": "lake"}
    (root / WORKSPACE_FILE).write_text(
        "# caifu workspace\n" + yaml.safe_dump(config, allow_unicode=True), encoding="utf-8"
    )


def build(settings: Settings, root: Path | None = None, check_schema: bool = True) -> Container:
    root = (root or settings.workspace).resolve()
    if any(ch in str(root) for ch in "*?[]"):
        # DuckDB reads lake files by path and would take these characters as a glob.
        raise WorkspaceError(f"{root}: a workspace path may not contain * ? [ or ]")
    config_path = root / WORKSPACE_FILE
    if not config_path.is_file():
        raise WorkspaceError(f"no caifu workspace at {root} (run `caifu init {root}` first)")
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise WorkspaceError(f"{config_path}: not valid YAML: {exc}") from None
    sor_url = settings.sor_url or config.get("sor_url") or default_sor_url(root)
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
