"""Operational tables of the system of record as Arrow, for the metric layer: one tenant's
rows, the columns a metric file declares."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from sqlalchemy import Connection, select

import caifu.adapters.sor.models  # noqa: F401 - registers the tables on the metadata
import caifu.adapters.sor.recommend_models  # noqa: F401
import caifu.adapters.sor.risk_models  # noqa: F401
import caifu.adapters.sor.scrm_models  # noqa: F401
from caifu.adapters.sor.metadata import metadata
from caifu.core.errors import ConfigError

ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "decimal": pa.decimal128(18, 2),
          "float": pa.float64(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
          "bool": pa.bool_()}


def table_rows(conn: Connection, tenant: str, table: str, columns: Mapping[str, str]
               ) -> pa.Table:
    """``columns`` (name → kind) of ``table``'s rows of ``tenant``; an empty table when none."""
    t = metadata.tables.get(table)
    if t is None:
        raise ConfigError(f"no system-of-record table {table!r}")
    missing = [c for c in columns if c not in t.c]
    if missing:
        raise ConfigError(f"{table} has no column(s) {', '.join(missing)}")
    result = conn.execute(select(*(t.c[c] for c in columns)).where(t.c.tenant_id == tenant)
                          ).all()
    values = list(zip(*result, strict=True)) if result else [() for _ in columns]
    return pa.table({c: pa.array(list(values[i]), ARROW_TYPES[kind])
                     for i, (c, kind) in enumerate(columns.items())})
