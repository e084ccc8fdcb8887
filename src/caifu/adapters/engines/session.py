"""One job's engine behind Ibis: DuckDB (default, in-process) or Spark (local or a cluster).

A pipeline only ever sees ``ir.Table``s; a session turns the job's inputs — Arrow tables read
from the system of record, Parquet files from the lake's Delta file lists — into tables on its
engine, and hands results back as Arrow.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from caifu.adapters.engines import duckdb as duckdb_engine
from caifu.core.errors import ConfigError


class EngineSession(Protocol):
    name: str
    con: BaseBackend

    def from_arrow(self, name: str, data: pa.Table) -> ir.Table: ...

    def read_parquet(self, name: str, files: list[str]) -> ir.Table: ...

    def to_arrow(self, expr: ir.Table) -> pa.Table: ...

    def close(self) -> None: ...


class DuckDBSession:
    name = "duckdb"

    def __init__(self, scratch: Path, memory_limit: str | None, threads: int | None) -> None:
        self.con = duckdb_engine.connect(temp_dir=scratch / "duckdb", memory_limit=memory_limit,
                                         threads=threads)

    def from_arrow(self, name: str, data: pa.Table) -> ir.Table:
        # Ibis 12's create_table(obj=arrow) emits SQL DuckDB 2 rejects (DROP VIEW IF EXISTS
        # with no name), so the Arrow data is copied in through DuckDB's own registration.
        raw = self.con.con
        raw.register("_caifu_arrow", data)
        try:
            raw.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _caifu_arrow')
        finally:
            raw.unregister("_caifu_arrow")
        return self.con.table(name)

    def read_parquet(self, name: str, files: list[str]) -> ir.Table:
        return self.con.read_parquet(files, table_name=name)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return expr.to_pyarrow()

    def compile(self, expr: ir.Table) -> tuple[str, tuple[tuple[str, pa.Table], ...]]:
        """The SQL of ``expr`` and the in-memory tables it names (Ibis registers those itself
        when it runs an expression; ``run_sql`` needs them given)."""
        import ibis.expr.operations as ops

        memtables = tuple((m.name, m.data.to_pyarrow(m.schema))
                          for m in expr.op().find(ops.InMemoryTable))
        return str(self.con.compile(expr)), memtables

    def run_sql(self, sql: str, memtables: tuple[tuple[str, pa.Table], ...],
                schema: pa.Schema) -> pa.Table:
        """Run SQL from ``compile`` on this session's tables; the result has ``schema``."""
        raw = self.con.con
        for name, data in memtables:
            raw.register(name, data)
        try:
            return raw.sql(sql).to_arrow_table().cast(schema)
        finally:
            for name, _ in memtables:
                raw.unregister(name)

    def close(self) -> None:
        self.con.disconnect()


_SPARK_LOCK = threading.Lock()


class SparkSession:
    """Spark through Ibis. Local mode unless ``master`` names a cluster.

    Spark keeps one session per process, so all jobs of a process share it; each job's
    tables are temporary views under the job's own prefix, and ``close`` drops only those.
    """

    name = "spark"

    def __init__(self, master: str = "local[2]", conf: dict[str, str] | None = None) -> None:
        try:
            import ibis
            from pyspark.sql import SparkSession as _Spark
        except ImportError:
            raise ConfigError("the Spark engine needs the 'spark' extra: "
                              "pip install 'caifu[spark]'") from None
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        with _SPARK_LOCK:
            builder = (_Spark.builder.master(master).appName("caifu")
                       .config("spark.sql.session.timeZone", "UTC")
                       .config("spark.ui.enabled", "false")
                       .config("spark.sql.shuffle.partitions", "8")
                       .config("spark.sql.ansi.enabled", "false"))
            for k, v in (conf or {}).items():
                builder = builder.config(k, v)
            self.spark: Any = builder.getOrCreate()
            self.spark.sparkContext.setLogLevel("ERROR")
        self.con = ibis.pyspark.connect(self.spark)
        self.prefix = f"j{uuid.uuid4().hex[:12]}_"

    def from_arrow(self, name: str, data: pa.Table) -> ir.Table:
        # Spark checks NOT NULL while converting; nullability is the contracts' business.
        relaxed = pa.schema([f.with_nullable(True) for f in data.schema])
        view = self.prefix + name
        self.spark.createDataFrame(data.cast(relaxed)).createOrReplaceTempView(view)
        return self.con.table(view)

    def read_parquet(self, name: str, files: list[str]) -> ir.Table:
        view = self.prefix + name
        self.spark.read.parquet(*files).createOrReplaceTempView(view)
        return self.con.table(view)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)

    def close(self) -> None:
        """This job's views are dropped; the Spark session stays for the process's next job."""
        for view in self.spark.catalog.listTables():
            if view.isTemporary and view.name.startswith(self.prefix):
                self.spark.catalog.dropTempView(view.name)
