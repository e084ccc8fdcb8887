"""The system-of-record bulk insert: values round-trip, indexes, and all-or-nothing.

Into an empty SQLite table the insert drops the secondary indexes and builds them after the
rows, inside the batch's transaction; a failure must leave the table as it was, indexes
included. PostgreSQL gets the rows by COPY in CSV, where NULL and the empty string differ.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from sqlalchemy import select, text

from caifu.adapters.sor import store
from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.services.container import Container

pytestmark = pytest.mark.dialect  # COPY on PostgreSQL, executemany on SQLite

CUSTOMERS = registry()["customers"]


def _customers(ids: range, **override: object) -> pa.Table:
    rows = []
    for i in ids:
        row: dict[str, object] = dict.fromkeys(CUSTOMERS.column_names)
        row.update(customer_id=f"C{i:07d}", name=f"张三{i}", customer_type="individual",
                   id_type="resident_id", id_number=f"11010519491231002{i % 10}",
                   gender="F", birth_date=dt.date(1980, 1, 1) + dt.timedelta(days=i),
                   mobile="13800138000", branch_id="B01", advisor_id=f"A{i % 3}",
                   opened_on=dt.date(2020, 5, 6), channel="app", status="active",
                   professional=i % 2 == 0, marketing_consent=None)
        row.update(override)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=contract_schema(CUSTOMERS))


def _indexes(c: Container) -> list[tuple[str, str]]:
    with c.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return [(str(n), "") for (n,) in conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'customers' ORDER BY 1"))]
        return [(str(n), str(s)) for n, s in conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'customers' ORDER BY name"))]


def _stored(c: Container) -> list[dict[str, object]]:
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(*(t.c[n] for n in CUSTOMERS.column_names)).order_by(t.c.customer_id))]


def test_rows_round_trip_with_nulls_empty_strings_and_quotes(workspace: Container) -> None:
    data = _customers(range(5), mobile=None, gender="", name='a,"b"\n张')
    with store.bulk_transaction(workspace.engine) as conn:
        assert ingest_repo.insert_rows(conn, "acme", CUSTOMERS, data) == 5
    assert _stored(workspace) == data.to_pylist()


def test_indexes_are_rebuilt_after_a_load_into_an_empty_table(workspace: Container) -> None:
    before = _indexes(workspace)
    assert len(before) >= 3  # primary key, branch and advisor
    with store.bulk_transaction(workspace.engine) as conn:
        assert ingest_repo.insert_rows(conn, "acme", CUSTOMERS, _customers(range(1000))) == 1000
    assert _indexes(workspace) == before
    with workspace.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM customers WHERE tenant_id = 'acme' "
                              "AND advisor_id = 'A1'")).scalar_one()
    assert n == 333


def test_a_failed_load_into_an_empty_table_leaves_it_as_before(workspace: Container) -> None:
    before = _indexes(workspace)

    def batches() -> object:
        yield from _customers(range(100)).to_batches(max_chunksize=40)
        raise RuntimeError("the source broke")

    reader = pa.RecordBatchReader.from_batches(contract_schema(CUSTOMERS), batches())
    with pytest.raises(RuntimeError, match="the source broke"), \
            store.bulk_transaction(workspace.engine) as conn:
        ingest_repo.insert_rows(conn, "acme", CUSTOMERS, reader)
    assert _indexes(workspace) == before
    assert _stored(workspace) == []


def test_a_duplicate_key_fails_the_whole_load(workspace: Container) -> None:
    data = pa.concat_tables([_customers(range(10)), _customers(range(3, 4))])
    with pytest.raises(Exception, match="(?i)unique|duplicate"), \
            store.bulk_transaction(workspace.engine) as conn:
        ingest_repo.insert_rows(conn, "acme", CUSTOMERS, data)
    assert _stored(workspace) == []
    before = _indexes(workspace)
    with store.bulk_transaction(workspace.engine) as conn:
        ingest_repo.insert_rows(conn, "acme", CUSTOMERS, _customers(range(10)))
    with store.bulk_transaction(workspace.engine) as conn:  # not empty: indexes stay
        ingest_repo.insert_rows(conn, "acme", CUSTOMERS, _customers(range(10, 20)))
    assert len(_stored(workspace)) == 20
    assert _indexes(workspace) == before
