"""Erasure reaches every file holding the customer: uploads waiting under the workspace,
lake files a running reader still reads (retired after a grace period, not at once), and the
SQLite file's free pages (secure_delete)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert, select, text

from caifu.adapters.sor import store
from caifu.adapters.sor.models import CONTRACT_TABLES, dsr_requests
from caifu.services.compliance import privacy
from caifu.services.container import Container
from caifu.services.ingest.uploads import save_upload
from caifu.services.platform.jobs import Jobs, uploads_dir
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings
from tests.factories import BRANCHES

T = "acme"
CID, OTHER = "P0000042", "P0000043"
NAME = "欧阳娜娜测试"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Container]:
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="1GB"))
    create_tenant(c, T, "甲乙证券")
    t = CONTRACT_TABLES["customers"]
    with c.engine.begin() as conn:
        for cid, name in ((CID, NAME), (OTHER, "张三")):
            conn.execute(insert(t).values(
                tenant_id=T, customer_id=cid, name=name, customer_type="individual",
                id_type="passport", id_number="E12345678", mobile="13812345678",
                branch_id="B", advisor_id="A", opened_on=dt.date(2026, 1, 2), channel="app",
                status="normal"))
    yield c
    c.close()


def _scores(c: Container) -> None:
    day = dt.date(2026, 11, 1)
    rows = pa.table({"as_of": [day, day], "customer_id": [CID, OTHER],
                     "value": [0.9, 0.1]})
    c.lake.write_snapshot(T, "model_scores", rows, day.isoformat(), {})


def _upload(c: Container, name: str, body: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield body

    upload_id, _ = asyncio.run(save_upload(c, T, name, chunks(), 1 << 20))
    return upload_id


def _holds(root: Path, value: str) -> list[Path]:
    found = []
    for path in root.rglob("*.parquet"):
        data = pa.Table.from_batches(ds.dataset(path, format="parquet").to_batches())
        if any(pa.types.is_string(col.type) and value in col.to_pylist() for col in data.columns):
            found.append(path)
    return found


def test_erasure_removes_uploads_holding_the_customer(ws: Container) -> None:
    his = _upload(ws, "customers.csv", f"customer_id,name\n{OTHER},张三\n{CID},x\n".encode())
    similar = _upload(ws, "others.csv", f"customer_id\n{CID}9\nX{CID}\n".encode())
    parquet_buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"cust": [CID], "n": [1]}), parquet_buf)
    his_parquet = _upload(ws, "trades.parquet", parquet_buf.getvalue().to_pybytes())

    r = privacy.erase_customer(ws, T, CID, "comp.li", "客户要求删除")

    assert sorted(r.uploads_removed) == sorted([f"{his}/customers.csv",
                                               f"{his_parquet}/trades.parquet"])
    assert not (uploads_dir(ws, T) / his).exists()
    assert not (uploads_dir(ws, T) / his_parquet).exists()
    assert (uploads_dir(ws, T) / similar / "others.csv").is_file()  # names only look alike
    with ws.engine.connect() as conn:
        details = json.loads(conn.execute(select(dsr_requests.c.details_json).where(
            dsr_requests.c.request_id == r.request_id)).scalar_one())
    assert sorted(details["uploads_removed"]) == sorted(r.uploads_removed)


def test_an_ingest_job_removes_its_upload_when_it_ends(ws: Container) -> None:
    upload_id = _upload(ws, "branches.csv", BRANCHES.encode())
    bad = _upload(ws, "customers.csv", b"no_such_column\n1\n")
    jobs = Jobs(ws)
    ok = jobs.submit(T, "ingest", {"upload_id": upload_id, "file": "branches.csv"}, "ops")
    failed = jobs.submit(T, "ingest", {"upload_id": bad, "file": "customers.csv"}, "ops")
    jobs.run_next()
    jobs.run_next()
    assert jobs.get(T, ok["job_id"])["status"] == "succeeded"
    assert jobs.get(T, failed["job_id"])["status"] == "failed"
    # the rows are in the system of record (or refused): the upload has no further use
    assert not (uploads_dir(ws, T) / upload_id).exists()
    assert not (uploads_dir(ws, T) / bad).exists()


def test_a_reader_keeps_reading_its_snapshot_while_an_erasure_runs(ws: Container) -> None:
    _scores(ws)
    snapshot = ws.lake.files(T, "model_scores")  # a reader holds this file list
    before = sorted(ds.dataset(snapshot, format="parquet").to_table()["customer_id"]
                    .to_pylist())

    r = privacy.erase_customer(ws, T, CID, "comp.li", "客户要求删除")

    assert r.deleted["lake.model_scores"] == 1
    # the reader's files are still there: its query ends as it began
    again = sorted(ds.dataset(snapshot, format="parquet").to_table()["customer_id"]
                   .to_pylist())
    assert again == before == [CID, OTHER]
    # a new reader no longer sees him
    now = ds.dataset(ws.lake.files(T, "model_scores"), format="parquet").to_table()
    assert now["customer_id"].to_pylist() == [OTHER]
    due = dt.datetime.fromisoformat(r.old_files_removed_by)
    assert r.old_files == 1 and due > dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with ws.engine.connect() as conn:
        details = json.loads(conn.execute(select(dsr_requests.c.details_json).where(
            dsr_requests.c.request_id == r.request_id)).scalar_one())
    assert details["retirement"] == {"files": 1, "due_at": r.old_files_removed_by,
                                     "removed_at": None}

    # a retirement before the grace period has run out keeps them
    early = privacy.retire_files(ws, T, now=due - dt.timedelta(minutes=1))
    assert early == {"removed": 0, "waiting": 1}
    assert _holds(ws.lake.path(T, "model_scores"), CID)


def test_old_lake_files_are_removed_once_the_grace_period_has_run(ws: Container) -> None:
    _scores(ws)
    r = privacy.erase_customer(ws, T, CID, "comp.li", "客户要求删除")
    root = ws.lake.path(T, "model_scores")
    assert _holds(root, CID)  # still readable by readers that began before the erasure
    due = dt.datetime.fromisoformat(r.old_files_removed_by)

    done = privacy.retire_files(ws, T, now=due)

    assert done == {"removed": 1, "waiting": 0}
    assert _holds(root, CID) == []
    assert ds.dataset(ws.lake.files(T, "model_scores"), format="parquet").to_table()[
        "customer_id"].to_pylist() == [OTHER]
    [req] = privacy.list_requests(ws, T, 10, 0)["items"]
    assert req["details"]["retirement"]["removed_at"] is not None
    assert privacy.retire_files(ws, T, now=due) == {"removed": 0, "waiting": 0}


def test_sqlite_overwrites_erased_rows(ws: Container, tmp_path: Path) -> None:
    # set on every connection, not left to how the SQLite library was compiled
    raw = sqlite3.connect(tmp_path / "x.db")
    raw.execute("PRAGMA secure_delete=OFF")
    store._sqlite_pragmas(raw, None)
    assert raw.execute("PRAGMA secure_delete").fetchone() == (1,)
    raw.close()
    with ws.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
    privacy.erase_customer(ws, T, CID, "comp.li", "客户要求删除")
    with ws.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.engine.dispose()
    db = ws.root / "sor.db"
    for path in (db, db.with_name("sor.db-wal")):
        data = path.read_bytes() if path.exists() else b""
        assert NAME.encode() not in data, f"{path.name} still holds the erased name"
    assert "张三".encode() in db.read_bytes()  # the other customer is untouched
    with ws.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar_one() == 1
