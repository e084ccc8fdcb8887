"""The bulk insert stores on SQLite exactly what SQLAlchemy's bind processors would store.

``repos.ingest.insert_rows`` converts whole Arrow columns instead of calling a bind processor per
value; a value stored in another spelling ("2024-01-02 09:30:00" for a DateTime, "1.5" for
money) would compare and sort differently from the rows SQLAlchemy writes elsewhere.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy.dialects import sqlite

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos.ingest import sqlite_values
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import arrow_type

DIALECT = sqlite.dialect()

SAMPLES: dict[str, list[Any]] = {
    "string": ["", "张三", "a,b\"c\nd", " x ", None],
    "int": [0, -1, 2**62, None],
    "decimal": [Decimal("0"), Decimal("1.5"), Decimal("-0.01"), Decimal("-123.45"),
                Decimal("9999999999999999.99"), Decimal("100"), None],
    "float": [0.0, -1.25, 1e300, None],
    "date": [dt.date(2024, 1, 2), dt.date(1900, 12, 31), dt.date(999, 3, 4), None],
    "timestamp": [dt.datetime(2024, 1, 2, 9, 30), dt.datetime(2024, 1, 2, 23, 59, 59, 5),
                  dt.datetime(1970, 1, 1), None],
    "bool": [True, False, None],
}


def _sor_columns() -> list[tuple[str, str]]:
    return [(t.name, c.name) for t in registry() if t.store == "sor" for c in t.columns]


def test_every_kind_of_the_system_of_record_is_sampled() -> None:
    kinds = {c.kind for t in registry() if t.store == "sor" for c in t.columns}
    assert kinds <= set(SAMPLES)


@pytest.mark.parametrize(("table", "column"), _sor_columns())
def test_column_values_equal_the_bind_processors(table: str, column: str) -> None:
    col = registry()[table][column]
    sa_type = CONTRACT_TABLES[table].c[column].type
    process = sa_type.dialect_impl(DIALECT).bind_processor(DIALECT)
    values = SAMPLES[col.kind]
    if col.kind == "decimal":
        quantum = Decimal(1).scaleb(-col.scale)
        values = [v for v in values
                  if v is None or len(v.quantize(quantum).as_tuple().digits) <= col.precision]
    expected = [process(v) for v in values] if process else values
    arrow = pa.array(values, arrow_type(col))
    assert sqlite_values(arrow, arrow_type(col)) == expected
    # DuckDB hands over its own widths (DECIMAL(38,2), INTEGER): cast to the contract first.
    if col.kind == "decimal":
        wide = pa.array(values, pa.decimal128(38, col.scale))
        assert sqlite_values(wide, arrow_type(col)) == expected


def test_timestamps_and_floats_too() -> None:
    from sqlalchemy import DateTime, Float

    for sa_type, kind, to in [(DateTime(), "timestamp", pa.timestamp("us")),
                              (Float(), "float", pa.float64())]:
        process = sa_type.dialect_impl(DIALECT).bind_processor(DIALECT)
        values = SAMPLES[kind]
        expected = [process(v) for v in values] if process else values
        assert sqlite_values(pa.array(values, to), to) == expected
