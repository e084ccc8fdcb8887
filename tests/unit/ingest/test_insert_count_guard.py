"""The lake commit refuses files with another number of rows than were counted, or another schema.

The system-of-record write checks the count ``repos.ingest.insert_rows`` returns, in its transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from caifu.adapters.lake.delta import Lake, arrow_schema
from caifu.data.contracts import registry

TRADES = registry()["trades"]


def _trades(n: int, start: int = 0) -> pa.Table:
    rows = [{"trade_id": f"T{i:08d}", "customer_id": f"C{i % 7:07d}",
             "fund_account": f"F{i % 7:07d}", "trade_date": dt.date(2024, 1, 2 + i % 20),
             "trade_time": dt.datetime(2024, 1, 2, 9, 30, 0, i), "security_code": "600000",
             "side": "B", "quantity": 100 + i, "price": Decimal("10.125"),
             "amount": Decimal("1012.50"), "fee": None if i % 3 else Decimal("5.00"),
             "channel": "app", "_batch_id": "b"} for i in range(start, start + n)]
    return pa.Table.from_pylist(rows, schema=arrow_schema(TRADES))


def _write(lake: Lake, batch: str, data: pa.Table) -> Path:
    """Files as ingest writes them: DuckDB's per-thread Parquet output into the batch folder."""
    folder = lake.data_folder("acme", "trades", batch)
    cols = ", ".join(f'CAST("{c.name}" AS {c.type_name}) AS "{c.name}"' for c in TRADES.columns)
    con = duckdb.connect()
    con.register("src", data)
    con.execute(f"SET threads = 2; COPY (SELECT {cols}, _batch_id FROM src) TO '{folder}' "
                "(FORMAT parquet, PER_THREAD_OUTPUT true)")
    con.close()
    return folder


def test_files_commit_once_with_their_rows_and_statistics(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    first, second = _trades(1000), _trades(500, start=1000)
    assert lake.append_files("acme", TRADES, _write(lake, "b1", first), "b1", 1000) == 1000
    assert lake.append_files("acme", TRADES, _write(lake, "b2", second), "b2", 500) == 500
    table = DeltaTable(str(lake.path("acme", "trades")))
    assert table.version() == 1
    assert lake.committed_batches("acme", "trades") == {"b1", "b2"}
    assert lake.count("acme", "trades") == 1500
    got = table.to_pyarrow_table().sort_by("trade_id").drop_columns(["_batch_id"])
    want = pa.concat_tables([first, second]).drop_columns(["_batch_id"])
    assert got.to_pylist() == want.to_pylist()
    # Statistics drive file skipping: a filter must still find every matching row.
    dataset = table.to_pyarrow_dataset()
    for flt, n in [(ds.field("trade_id") >= "T00001200", 300),
                   (ds.field("quantity") < 110, 10),
                   (ds.field("trade_date") == dt.date(2024, 1, 2), 75)]:
        assert dataset.to_table(filter=flt).num_rows == n, flt


def test_another_row_count_commits_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append_files("acme", TRADES, _write(lake, "b1", _trades(10)), "b1", 10)
    folder = _write(lake, "b2", _trades(10, start=10))
    with pytest.raises(AssertionError, match="10 rows in the files for the lake, counted 9"):
        lake.append_files("acme", TRADES, folder, "b2", 9)
    assert lake.committed_batches("acme", "trades") == {"b1"}
    assert lake.count("acme", "trades") == 10


def test_another_schema_commits_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    folder = lake.data_folder("acme", "trades", "b1")
    duckdb.sql(f"COPY (SELECT 'T1' AS trade_id) TO '{folder / 'data_0.parquet'}' (FORMAT parquet)")
    with pytest.raises(AssertionError, match="is not the lake schema"):
        lake.append_files("acme", TRADES, folder, "b1", 1)
    assert lake.committed_batches("acme", "trades") == set()
