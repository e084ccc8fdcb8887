"""The lake write refuses to finish when it streams another number of rows than were counted.

The system-of-record write checks the count ``repo.insert_rows`` returns, in its transaction."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from caifu.services.ingest import _counted_stream


def _reader(sizes: list[int]) -> pa.RecordBatchReader:
    schema = pa.schema([("x", pa.int64())])
    batches = [pa.record_batch([pa.array(range(n), pa.int64())], schema=schema) for n in sizes]
    return pa.RecordBatchReader.from_batches(schema, batches)


def test_the_stream_passes_every_row_when_the_count_matches() -> None:
    assert _counted_stream(_reader([3, 0, 4]), 7).read_all().num_rows == 7


@pytest.mark.parametrize("expected", [6, 8, 0])
def test_the_stream_fails_at_its_end_on_another_count(expected: int) -> None:
    with pytest.raises(AssertionError, match=f"7 rows streamed to the lake, counted {expected}"):
        _counted_stream(_reader([3, 4]), expected).read_all()


def test_a_delta_write_fed_the_wrong_number_of_rows_commits_nothing(tmp_path: Path) -> None:
    from deltalake import DeltaTable, write_deltalake

    write_deltalake(str(tmp_path), _counted_stream(_reader([5, 5]), 10), mode="append")
    with pytest.raises(Exception, match="10 rows streamed to the lake, counted 9"):
        write_deltalake(str(tmp_path), _counted_stream(_reader([5, 5]), 9), mode="append")
    table = DeltaTable(str(tmp_path))
    assert (table.version(), table.to_pyarrow_table().num_rows) == (0, 10)
