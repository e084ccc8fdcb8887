"""Ingest end to end, on SQLite and PostgreSQL: conservation, idempotency, GBK, clear errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES, ingest_log, ingest_quarantine
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.core.errors import EncodingError, SchemaMismatchError, UnreadableSourceError
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from tests.factories import (
    customer_row,
    customers_csv,
    seed_reference,
    trade_row,
    trades_csv,
    write,
)

pytestmark = pytest.mark.dialect  # ingest writes the SoR by COPY on PostgreSQL


def _count(c: Container, table: str, tenant: str = "acme") -> int:
    t = CONTRACT_TABLES[table]
    with c.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(t.c.tenant_id == tenant)).scalar_one())


def _lake_ids(c: Container, table: str, key: str) -> list[str]:
    files = c.lake.files("acme", table)
    if not files:
        return []
    rows = duckdb.connect().execute(f"SELECT {key} FROM read_parquet(?)", [files]).fetchall()
    return [r[0] for r in rows]


def test_conservation_on_a_file_with_known_bad_rows(workspace: Container, tmp_path: Path) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    bad = [
        trade_row(101, security_code="999999"),             # unknown security
        trade_row(102, customer_id="C99999"),               # unknown customer
        trade_row(103, amount="-5.00"),                     # negative money
        trade_row(104, price="10.1234"),                    # 4 decimals for a 3-scale price
        trade_row(105, trade_date="2099-01-01"),            # future
        trade_row(106, side="X"),                           # enum
        trade_row(107, quantity=""),                        # required
        trade_row(108, trade_time="yesterday"),             # not a timestamp
        trade_row(1),                                       # exact duplicate of row 1
        trade_row(2, amount="99.00"),                       # same key, other content
        "T0000200,C00001",                                  # too few fields
    ]
    path = write(tmp_path / "trades.csv", trades_csv(range(1, 51), bad))
    (r,) = ing.ingest("acme", [path])
    assert r.rows_in == 61
    assert (r.inserted, r.quarantined, r.duplicates) == (50, 10, 1)
    assert r.rows_in == r.loaded + r.quarantined + r.duplicates
    assert r.reasons == {
        "security_code:UNKNOWN_REF": 1, "customer_id:UNKNOWN_REF": 1, "amount:BELOW_MIN": 1,
        "price:DECIMAL_SCALE": 1, "trade_date:FUTURE": 1, "side:ENUM": 1,
        "quantity:REQUIRED": 1, "trade_time:NOT_TIMESTAMP": 1, "key:CONFLICT_IN_FILE": 1,
        "row:MISSING_COLUMNS": 1,
    }
    assert sorted(_lake_ids(workspace, "trades", "trade_id")) == [f"T{i:07d}" for i in range(1, 51)]
    with workspace.engine.connect() as conn:
        q = conn.execute(select(ingest_quarantine).where(ingest_quarantine.c.batch_id == r.batch_id)
                         .order_by(ingest_quarantine.c.row_number)).all()
        log = conn.execute(select(ingest_log).where(ingest_log.c.batch_id == r.batch_id)).one()
    assert len(q) == 10
    # each quarantined row keeps the original raw values and says why, with its row number
    first = q[0]
    assert first.row_number == 51 and first.reasons == "security_code:UNKNOWN_REF"
    assert json.loads(first.raw_json)["security_code"] == "999999"
    assert q[-1].reasons == "row:MISSING_COLUMNS" and q[-1].line == 62
    assert (log.status, log.rows_in, log.loaded, log.quarantined, log.duplicates) == (
        "committed", 61, 50, 10, 1)
    assert log.source_sha256 == r.sha256 and len(r.sha256) == 64


def test_same_file_twice_and_overlapping_files_add_nothing_twice(
    workspace: Container, tmp_path: Path
) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    a = write(tmp_path / "trades_a.csv", trades_csv(range(1, 101)))
    b = write(tmp_path / "trades_b.csv", trades_csv(range(51, 151)))
    (first,) = ing.ingest("acme", [a])
    (again,) = ing.ingest("acme", [a])
    (overlap,) = ing.ingest("acme", [b])
    assert (first.inserted, first.duplicates) == (100, 0)
    assert (again.inserted, again.duplicates, again.quarantined) == (0, 100, 0)
    assert (overlap.inserted, overlap.duplicates) == (50, 50)
    ids = _lake_ids(workspace, "trades", "trade_id")
    assert len(ids) == len(set(ids)) == 150
    # the system of record behaves the same way
    customers = tmp_path / "ref" / "customers.csv"
    (re_customers,) = ing.ingest("acme", [customers])
    assert (re_customers.inserted, re_customers.duplicates) == (0, 5)
    assert _count(workspace, "customers") == 5


def test_changed_master_data_updates_and_changed_facts_are_conflicts(
    workspace: Container, tmp_path: Path
) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    moved = write(tmp_path / "customers_update.csv",
                  customers_csv(0, [customer_row(1, mobile="13912345678"), customer_row(2)]))
    (r,) = ing.ingest("acme", [moved])
    assert (r.inserted, r.updated, r.duplicates) == (0, 1, 1)
    with workspace.engine.connect() as conn:
        t = CONTRACT_TABLES["customers"]
        mobile = conn.execute(select(t.c.mobile).where(t.c.customer_id == "C00001")).scalar_one()
    assert mobile == "13912345678"
    ing.ingest("acme", [write(tmp_path / "trades.csv", trades_csv(range(1, 3)))])
    changed = write(tmp_path / "trades_fix.csv", trades_csv(range(0), [trade_row(1, fee="6.00")]))
    (fx,) = ing.ingest("acme", [changed])
    assert (fx.inserted, fx.quarantined) == (0, 1)
    assert fx.reasons == {"key:CONFLICT_WITH_STORED": 1}


def test_gbk_csv_with_broker_headers_and_value_maps(workspace: Container, tmp_path: Path) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref")[:2])
    src = tmp_path / "gbk"
    write(src / "sources.yaml", """
sources:
  - match: "khzl*.csv"
    table: customers
    encoding: gbk
    columns: {客户号: customer_id, 客户姓名: name, 客户类别: customer_type, 证件类型: id_type,
              证件号码: id_number, 性别: gender, 开户营业部: branch_id, 开户日期: opened_on,
              渠道: channel, 状态: status, 营销同意: marketing_consent}
    values:
      gender: {男: M, 女: F}
      customer_type: {个人: individual}
      id_type: {身份证: resident_id}
      marketing_consent: {是: true, 否: false}
""")
    body = ("客户号,客户姓名,客户类别,证件类型,证件号码,性别,开户营业部,开户日期,渠道,状态,营销同意\n"
            "K1,欧阳娜娜,个人,身份证,11010519491231002X,女,B01,20200301,app,normal,是\n"
            "K2,张三,个人,身份证,110105194912310021,男,B01,20200301,app,normal,否\n")
    path = write(src / "khzl_20251031.csv", body, "gbk")
    (r,) = ing.ingest("acme", [path])
    assert (r.rows_in, r.inserted, r.quarantined) == (2, 1, 1)
    assert r.reasons == {"id_number:ID_CHECKSUM": 1}
    with workspace.engine.connect() as conn:
        t = CONTRACT_TABLES["customers"]
        row = conn.execute(select(t).where(t.c.customer_id == "K1")).one()
    assert (row.name, row.gender, row.marketing_consent, str(row.opened_on)) == (
        "欧阳娜娜", "F", True, "2020-03-01")


def test_money_stays_exact(workspace: Container, tmp_path: Path) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref")[:2])
    write(tmp_path / "c" / "campaigns.csv",
          "campaign_id,name,channel,starts_on,spend\nX1,春季开户,mass_send,2025-03-01,9999999999999999.99\n"
          "X2,秋季,group,2025-09-01,0.10\n")
    (r,) = ing.ingest("acme", [tmp_path / "c" / "campaigns.csv"])
    assert r.inserted == 2
    with workspace.engine.connect() as conn:
        stored = ingest_repo.rows(conn, "acme", Ingest(workspace).contracts["campaigns"])
    assert stored is not None
    assert sorted(stored["spend"].to_pylist()) == [Decimal("0.10"), Decimal("9999999999999999.99")]


@pytest.mark.parametrize(
    ("content", "encoding", "spec", "error", "needle"),
    [
        ("branch_id,name\nB9,广州天河营业部\n", "gbk", "", EncodingError, "line 2"),
        ("branch_id,name\nB9,广州天河营业部\n", "utf-8", "encoding: gbk", EncodingError, "UTF-8"),
        ("branch_id,name,color\nB9,广州,red\n", "utf-8", "", SchemaMismatchError, "'color'"),
        ("branch_id\nB9\n", "utf-8", "", SchemaMismatchError, "name"),
        ("", "utf-8", "", UnreadableSourceError, "header"),
        ("", "gbk", "encoding: gbk", UnreadableSourceError, "header"),
    ],
    ids=["gbk-read-as-utf8", "utf8-declared-gbk", "unknown-column", "missing-required", "empty",
         "empty-gbk"],
)
def test_whole_file_problems_are_clear_errors(
    sqlite_workspace: Container, tmp_path: Path, content: str, encoding: str, spec: str,
    error: type[Exception], needle: str,
) -> None:
    if spec:
        write(tmp_path / "sources.yaml", f"sources:\n  - match: 'branches*'\n    table: branches\n    {spec}\n")
    path = write(tmp_path / "branches.csv", content, encoding)
    with pytest.raises(error) as exc:
        Ingest(sqlite_workspace).ingest("acme", [path])
    assert str(path) in str(exc.value) and needle in str(exc.value)
    with sqlite_workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ingest_log)).scalar_one() == 0


def test_parquet_and_jsonl_sources(workspace: Container, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    table = pa.table({
        "flow_id": ["F1", "F2", "F3"], "customer_id": ["C00001", "C00002", "C00003"],
        "fund_account": ["F00001", "F00002", "F00003"],
        "flow_time": pa.array([1_700_000_000_000_000] * 3, pa.timestamp("us")),
        "direction": ["in", "out", "sideways"],
        "amount": pa.array([Decimal("100.00"), Decimal("5.5"), Decimal("1.00")], pa.decimal128(20, 4)),
    })
    pq.write_table(table, tmp_path / "cash_flows.parquet")
    (r,) = ing.ingest("acme", [tmp_path / "cash_flows.parquet"])
    assert (r.inserted, r.quarantined, r.reasons) == (2, 1, {"direction:ENUM": 1})
    lines = [
        '{"msg_id": "m1", "advisor_id": "A01", "external_userid": "wmX1", "msg_time": "2025-05-06 01:02:03", "sender": "customer", "msg_type": "text", "content": "請問創業板怎麼開通？"}',
        '{"msg_id": "m2", "advisor_id": "A01", "external_userid": "wmX1", "msg_time": "2025-05-06 01:03:00", "sender": "advisor", "msg_type": "text", "content": "您好"',
        '["not", "an", "object"]',
    ]
    write(tmp_path / "chat_messages.jsonl", "\n".join(lines) + "\n")
    (m,) = ing.ingest("acme", [tmp_path / "chat_messages.jsonl"])
    assert (m.rows_in, m.inserted, m.quarantined) == (3, 1, 2)
    assert set(m.reasons) == {"row:JSON_SYNTAX", "row:JSON_NOT_OBJECT"}


def test_tenants_are_isolated(workspace: Container, tmp_path: Path) -> None:
    from caifu.services.platform.workspace import create_tenant

    create_tenant(workspace, "other", "丙丁证券")
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    ing.ingest("acme", [write(tmp_path / "trades.csv", trades_csv(range(1, 11)))])
    # the other tenant has no customers, so the same trades only quarantine there
    ing.ingest("other", seed_reference(tmp_path / "ref")[:2])
    (r,) = ing.ingest("other", [tmp_path / "trades.csv"])
    assert r.inserted == 0 and r.quarantined == 10
    assert _count(workspace, "customers", "other") == 0
    assert workspace.lake.count("other", "trades") == 0
    assert workspace.lake.count("acme", "trades") == 10
