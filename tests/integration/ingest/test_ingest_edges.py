"""Edge cases a review found: each once lost, altered or misattributed data."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import CONTRACT_TABLES, ingest_quarantine
from caifu.core.errors import EncodingError, UnreadableSourceError
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from tests.factories import CUSTOMER_HEADER, SECURITIES, customer_row, seed_reference, write


def _quarantine(c: Container, batch_id: str) -> list[tuple[str, dict]]:
    with c.engine.connect() as conn:
        rows = conn.execute(select(ingest_quarantine.c.reasons, ingest_quarantine.c.raw_json)
                            .where(ingest_quarantine.c.batch_id == batch_id)).all()
    return [(r.reasons, json.loads(r.raw_json, parse_float=Decimal)) for r in rows]


def test_glob_characters_in_a_file_name_read_that_file_only(
    sqlite_workspace: Container, tmp_path: Path
) -> None:
    write(tmp_path / "securities_1.csv", SECURITIES)
    odd = write(tmp_path / "securities_[1].csv",
                "security_code,exchange,short_name,security_type\n000001,SZ,平安银行,stock\n")
    (r,) = Ingest(sqlite_workspace).ingest("acme", [odd])
    assert (r.rows_in, r.inserted) == (1, 1)


@pytest.mark.dialect
def test_a_file_without_an_optional_column_leaves_stored_values_alone(
    workspace: Container, tmp_path: Path
) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    header = CUSTOMER_HEADER.replace(",advisor_id", "")
    row = customer_row(1, mobile="13912345678").split(",")
    del row[9]  # advisor_id
    (r,) = ing.ingest("acme", [write(tmp_path / "customers_partial.csv",
                                     header + "\n" + ",".join(row) + "\n")])
    assert (r.updated, r.duplicates) == (1, 0)
    t = CONTRACT_TABLES["customers"]
    with workspace.engine.connect() as conn:
        got = conn.execute(select(t.c.mobile, t.c.advisor_id).where(t.c.customer_id == "C00001")).one()
    assert tuple(got) == ("13912345678", "A01")


def test_parquet_values_are_never_rounded_silently(sqlite_workspace: Container, tmp_path: Path) -> None:
    ing = Ingest(sqlite_workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    table = pa.table({
        "trade_id": ["P1", "P2"], "customer_id": ["C00001"] * 2, "fund_account": ["F00001"] * 2,
        "trade_date": ["2025-03-03"] * 2, "trade_time": ["2025-03-03 02:00:00"] * 2,
        "security_code": ["600000"] * 2, "side": ["B"] * 2,
        "quantity": [100.0, 100.6],
        "price": ["10.500"] * 2,
        "amount": pa.array([Decimal("1234567890123456.78"), Decimal("1.00")], pa.decimal128(18, 2)),
        "fee": pa.array([Decimal("5.00")] * 2, pa.decimal128(18, 2)),
    })
    pq.write_table(table, tmp_path / "trades.parquet")
    (r,) = ing.ingest("acme", [tmp_path / "trades.parquet"])
    assert (r.inserted, r.quarantined, r.reasons) == (1, 1, {"quantity:NOT_INTEGER": 1})
    ((_, raw),) = _quarantine(sqlite_workspace, r.batch_id)
    assert raw["quantity"] == Decimal("100.6") and raw["amount"] == Decimal("1.00")


def test_jsonl_numbers_keep_every_digit(sqlite_workspace: Container, tmp_path: Path) -> None:
    ing = Ingest(sqlite_workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    line = {"flow_id": "J1", "customer_id": "C00001", "fund_account": "F00001",
            "flow_time": "2025-01-02 03:04:05", "direction": "in"}
    text = (json.dumps(line)[:-1] + ', "amount": 1234567890123456.78}\n'
            + json.dumps({**line, "flow_id": "J2"})[:-1] + ', "amount": 12.345}\n')
    (r,) = ing.ingest("acme", [write(tmp_path / "cash_flows.jsonl", text)])
    assert (r.inserted, r.reasons) == (1, {"amount:DECIMAL_SCALE": 1})
    import duckdb
    (amount,) = duckdb.connect().execute(
        "SELECT amount FROM read_parquet(?)", [sqlite_workspace.lake.files("acme", "cash_flows")]
    ).fetchone()
    assert amount == Decimal("1234567890123456.78")


def test_value_maps_apply_to_typed_columns(sqlite_workspace: Container, tmp_path: Path) -> None:
    ing = Ingest(sqlite_workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    write(tmp_path / "p" / "sources.yaml",
          "sources:\n  - match: 'cjmx*'\n    table: trades\n    values: {side: {1: B, 2: S}}\n")
    table = pa.table({
        "trade_id": ["V1", "V2", "V3"], "customer_id": ["C00001"] * 3,
        "fund_account": ["F00001"] * 3, "trade_date": ["20250303"] * 3,
        "trade_time": ["20250303020000"] * 3, "security_code": ["600000"] * 3,
        "side": [1, 2, 3], "quantity": [100] * 3, "price": ["10.5"] * 3,
        "amount": ["1050"] * 3, "fee": ["5"] * 3,
    })
    pq.write_table(table, tmp_path / "p" / "cjmx_20250303.parquet")
    (r,) = ing.ingest("acme", [tmp_path / "p" / "cjmx_20250303.parquet"])
    assert (r.inserted, r.reasons) == (2, {"side:ENUM": 1})


def test_gbk_file_cut_inside_a_character(sqlite_workspace: Container, tmp_path: Path) -> None:
    write(tmp_path / "sources.yaml", "sources:\n  - match: 'yyb*'\n    table: branches\n    encoding: gbk\n")
    path = tmp_path / "yyb.csv"
    path.write_bytes("branch_id,name\nB1,北京\nB2,".encode("gbk") + "上".encode("gbk")[:1])
    with pytest.raises(EncodingError, match=r"line 3: byte 0x[0-9a-f]{2} at offset 26"):
        Ingest(sqlite_workspace).ingest("acme", [path])


def test_an_unclosed_quote_stops_the_file(sqlite_workspace: Container, tmp_path: Path) -> None:
    path = write(tmp_path / "branches.csv",
                 'branch_id,name\nB1,北京\nB2,"上海\nB3,广州\nB4,深圳\n')
    with pytest.raises(UnreadableSourceError, match="line 3: a quoted value is never closed"):
        Ingest(sqlite_workspace).ingest("acme", [path])


def test_a_json_array_is_not_json_lines(sqlite_workspace: Container, tmp_path: Path) -> None:
    path = write(tmp_path / "branches.json", '[\n{"branch_id": "B1", "name": "北京"}\n]\n')
    with pytest.raises(UnreadableSourceError, match="JSON array, not JSON Lines"):
        Ingest(sqlite_workspace).ingest("acme", [path])


def test_an_all_ascii_file_declared_gbk(sqlite_workspace: Container, tmp_path: Path) -> None:
    # read as it is, without transcoding: ASCII is the same in GBK and UTF-8
    write(tmp_path / "sources.yaml", "sources:\n  - match: 'yyb*'\n    table: branches\n    encoding: gbk\n")
    path = tmp_path / "yyb.csv"
    path.write_bytes(b"branch_id,name\nB1,Beijing\nB2,Shanghai\nB3\n")
    (r,) = Ingest(sqlite_workspace).ingest("acme", [path])
    assert (r.rows_in, r.inserted, r.reasons) == (3, 2, {"row:MISSING_COLUMNS": 1})
    t = CONTRACT_TABLES["branches"]
    with sqlite_workspace.engine.connect() as conn:
        assert sorted(conn.execute(select(t.c.branch_id, t.c.name)).all()) == [
            ("B1", "Beijing"), ("B2", "Shanghai")]
