"""Ingest under hostile input: generated files never crash it and every batch balances.

Properties, for any file:

* ingest raises nothing but a ``CaifuError`` (whose message names the file), or returns
  batches with ``rows_in == loaded + quarantined + duplicates``;
* ``rows_in`` is the number of data records written (records, not lines);
* the batch's quarantine rows in the system of record number ``result.quarantined``, its log
  row says ``committed`` with the same counts, and the lake grew by ``result.inserted``.

One SQLite workspace (seeded with reference data) serves all examples of this module:
repeated ingests into the same tables are part of what is being tested.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES, ingest_log, ingest_quarantine
from caifu.core.errors import CaifuError, SchemaMismatchError
from caifu.services.container import Container
from caifu.services.ingest.load import BatchResult, Ingest
from tests.factories import (
    CUSTOMER_HEADER,
    TRADE_HEADER,
    customer_row,
    reference_workspace,
    trade_row,
)

# Each ingest compiles its staging expression (~0.3-1 s), so examples are few but varied.
_SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
             HealthCheck.data_too_large]


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=_SUPPRESS)
_files = itertools.count(1)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = reference_workspace(tmp_path_factory.mktemp("fuzz"))
    yield c
    c.close()


def _new_file(ws: Container, table: str, ext: str) -> Path:
    folder = ws.root.parent / "files"
    folder.mkdir(exist_ok=True)
    return folder / f"{table}_{next(_files):05d}.{ext}"


def _stored(ws: Container, table: str) -> int:
    if table == "trades":
        return ws.lake.count("acme", table)
    t = CONTRACT_TABLES[table]
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t)
                                .where(t.c.tenant_id == "acme")).scalar_one())


def ingest_checked(ws: Container, path: Path, table: str) -> BatchResult | None:
    """Ingest one file; the batch must balance and the SoR/lake must agree with it.

    Returns None when the file as a whole was refused with a ``CaifuError`` naming it.
    """
    before = _stored(ws, table)
    try:
        (result,) = Ingest(ws).ingest("acme", [path])
    except CaifuError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        assert _stored(ws, table) == before
        return None
    assert result.table == table
    assert result.balanced, result
    with ws.engine.connect() as conn:
        quarantined = conn.execute(select(func.count()).select_from(ingest_quarantine).where(
            ingest_quarantine.c.batch_id == result.batch_id)).scalar_one()
        log = conn.execute(select(ingest_log).where(
            ingest_log.c.batch_id == result.batch_id)).one()
    assert quarantined == result.quarantined
    assert log.status == "committed"
    assert (log.rows_in, log.loaded, log.quarantined, log.duplicates) == (
        result.rows_in, result.loaded, result.quarantined, result.duplicates)
    assert sum(result.reasons.values()) >= result.quarantined
    assert _stored(ws, table) == before + result.inserted
    return result


# --- (a) CSV rows mixing valid values and junk -----------------------------------------------

_SPECIAL = [
    "", " ", "  padded  ", '"', '""', "'", ",", ",,", "NULL", "null", "NaN", "inf", "-0", "+1",
    "1e309", "9" * 40, "-" + "9" * 19, "99999999999999999999.99", "0.001", "1,000", "１００",
    "2025-02-30", "20250230", "0000-00-00", "2999-01-01", "1900-01-01", "2025-3-3",
    "2025-03-03T02:15:00", "2025-03-03 25:61:00", "20250303021500", "\ufeff", "\x00", "\t",
    "张三,李四", '"quoted"', "说明：“引号”", "A" * 500, "B", "S", "b", "是", "否",
]
no_newline_text = st.text(st.characters(blacklist_categories=("Cs",),
                                        blacklist_characters="\r\n"), max_size=30)
junk_field = st.one_of(
    st.sampled_from(_SPECIAL),
    no_newline_text,
    st.text(alphabet="0123456789.-+eE", max_size=25),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.dates().map(lambda d: d.strftime("%Y%m%d")),
)
_VALID = {"trades": (TRADE_HEADER, trade_row), "customers": (CUSTOMER_HEADER, customer_row)}


@st.composite
def csv_records(draw: st.DrawFn, table: str, newlines: bool = False) -> list[list[str]]:
    header, make_row = _VALID[table]
    width = len(header.split(","))
    field = junk_field if not newlines else st.one_of(
        junk_field, st.text(alphabet="ab\n\r\",", min_size=1, max_size=8))
    records: list[list[str]] = []
    for _ in range(draw(st.integers(0, 25))):
        i = draw(st.one_of(st.integers(1, 30), st.integers(1, 10**6)))
        values = make_row(i).split(",")
        kind = draw(st.sampled_from(["clean", "clean", "junk", "junk", "junk", "short", "long"]))
        if kind == "junk":
            for j in range(width):
                if draw(st.integers(0, 4)) == 0:
                    values[j] = draw(field)
        elif kind == "short":
            values = values[: draw(st.integers(1, width - 1))]
        elif kind == "long":
            values = values + draw(st.lists(field, min_size=1, max_size=3))
        if values == [""]:
            values = ["", ""]  # a lone empty field would be written as a blank line
        records.append(values)
    return records


def _csv_field(value: str) -> str:
    # Quote what a CSV reader would otherwise split on: delimiter, quote, CR or LF.
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def render_csv(header: str, records: list[list[str]], *, bom: bool, final_newline: bool,
               crlf: bool) -> bytes:
    eol = "\r\n" if crlf else "\n"
    lines = [header] + [",".join(_csv_field(v) for v in r) for r in records]
    text = eol.join(lines) + (eol if final_newline or not records else "")
    return (("\ufeff" if bom else "") + text).encode("utf-8")


@fuzz(16)
@given(data=st.data(), table=st.sampled_from(["trades", "trades", "customers"]),
       bom=st.booleans(), final_newline=st.booleans(), crlf=st.booleans())
def test_csv_with_junk_values_balances(ws: Container, data: st.DataObject, table: str,
                                       bom: bool, final_newline: bool, crlf: bool) -> None:
    records = data.draw(csv_records(table))
    path = _new_file(ws, table, "csv")
    path.write_bytes(render_csv(_VALID[table][0], records, bom=bom,
                                final_newline=final_newline, crlf=crlf))
    result = ingest_checked(ws, path, table)
    assert result is not None, "a well-formed CSV with a valid header must not be refused"
    assert result.rows_in == len(records)
    short_or_long = sum(len(r) != len(_VALID[table][0].split(",")) for r in records)
    assert result.quarantined >= short_or_long


@fuzz(10)
@given(data=st.data())
def test_csv_with_quoted_newlines_balances(ws: Container, data: st.DataObject) -> None:
    """Quoted fields spanning lines: records, not lines, are counted."""
    records = data.draw(csv_records("trades", newlines=True))
    path = _new_file(ws, "trades", "csv")
    path.write_bytes(render_csv(TRADE_HEADER, records, bom=False, final_newline=True,
                                crlf=False))
    result = ingest_checked(ws, path, "trades")
    assert result is not None
    assert result.rows_in == len(records)


# --- (b) random bytes ------------------------------------------------------------------------

_HEADERS = {"csv": (TRADE_HEADER + "\n").encode(), "jsonl": b"", "parquet": b"PAR1"}


@fuzz(40)
@given(ext=st.sampled_from(["csv", "jsonl", "parquet"]), with_header=st.booleans(),
       blob=st.binary(max_size=600))
def test_random_bytes_fail_cleanly_or_balance(ws: Container, ext: str, with_header: bool,
                                              blob: bytes) -> None:
    path = _new_file(ws, "trades", ext)
    path.write_bytes((_HEADERS[ext] if with_header else b"") + blob)
    result = ingest_checked(ws, path, "trades")
    event("refused" if result is None else "balanced batch")


_ARROW_KINDS = {
    "string": (pa.string(), st.text(max_size=12)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "float64": (pa.float64(), st.floats()),
    "decimal": (pa.decimal128(20, 4), st.decimals(min_value=-(10**15), max_value=10**15,
                                                  places=4, allow_nan=False)),
    "date32": (pa.date32(), st.dates()),
    "timestamp": (pa.timestamp("us"), st.datetimes()),
    "bool": (pa.bool_(), st.booleans()),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
}


@fuzz(12)
@given(data=st.data(), n=st.integers(0, 6))
def test_parquet_with_any_column_types_fails_cleanly_or_balances(
        ws: Container, data: st.DataObject, n: int) -> None:
    columns = {}
    for name in TRADE_HEADER.split(","):
        kind = data.draw(st.sampled_from(["string", "string", *_ARROW_KINDS]), label=name)
        arrow_type, values = _ARROW_KINDS[kind]
        if kind == "string":  # mostly plausible text, so some rows get through
            values = st.one_of(st.sampled_from(trade_row(data.draw(st.integers(1, 10**6)))
                                               .split(",")), values)
        column = data.draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
        columns[name] = pa.array(column, arrow_type)
    path = _new_file(ws, "trades", "parquet")
    pq.write_table(pa.table(columns), path)
    result = ingest_checked(ws, path, "trades")
    event("refused" if result is None else "balanced batch")
    if result is not None:
        assert result.rows_in == n


# --- (c) JSON Lines with broken lines --------------------------------------------------------

_ids = itertools.count(1)
_TRADE_KEYS = TRADE_HEADER.split(",")


def _good_line(draw: st.DrawFn) -> str:
    values = trade_row(1).split(",")
    values[0] = f"J{next(_ids):09d}"
    obj: dict[str, object] = dict(zip(_TRADE_KEYS, values, strict=True))
    if draw(st.booleans()):
        obj["quantity"] = 100  # numbers as numbers are text after loading
    return json.dumps(obj, ensure_ascii=draw(st.booleans()))


_BROKEN = st.one_of(
    st.sampled_from(['{"trade_id": "J1"', "{", "}", "{'a': 1}", "[1, 2", "nul", "{,}",
                     '{"a": 1,}', '{"a": 01}', "张三", '"unterminated', "{\"a\": \"\\x\"}"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
            min_size=1, max_size=30),
)


@fuzz(10)
@given(data=st.data())
def test_jsonl_broken_lines_are_quarantined(ws: Container, data: st.DataObject) -> None:
    lines: list[tuple[str, str]] = []  # (kind, text)
    for _ in range(data.draw(st.integers(1, 15))):
        kind = data.draw(st.sampled_from(["good", "good", "broken", "array", "nested", "blank"]))
        if kind == "good":
            text = _good_line(data.draw)
        elif kind == "broken":
            text = data.draw(_BROKEN)
            try:
                json.loads(text)
            except ValueError:
                pass
            else:
                kind = "valid_json"
        elif kind == "array":
            text = "[1, 2, 3]"
        elif kind == "nested":
            obj = json.loads(_good_line(data.draw))
            obj["fee"] = {"amount": "5.00"}
            text = json.dumps(obj)
        else:
            text = data.draw(st.sampled_from(["", "   ", "\t"]))
        lines.append((kind, text))
    assume(not any(k == "valid_json" for k, _ in lines))  # e.g. "1" or '"x"': not interesting
    lines.append(("good", _good_line(data.draw)))  # one good line keeps the columns known
    path = _new_file(ws, "trades", "jsonl")
    path.write_text("\n".join(t for _, t in lines) + "\n", encoding="utf-8")

    result = ingest_checked(ws, path, "trades")
    assert result is not None
    # Blank as the loader sees it: ASCII whitespace only. A line of other characters that
    # str.strip() removes (e.g. \x1f, U+3000) is a broken record, quarantined, never dropped.
    records = [(n, k) for n, (k, t) in enumerate(lines, start=1) if t.encode().strip()]
    assert result.rows_in == len(records)
    expected_reason = {"broken": "row:JSON_SYNTAX", "array": "row:JSON_NOT_OBJECT",
                       "nested": "row:JSON_NESTED_VALUE"}
    with ws.engine.connect() as conn:
        rows = conn.execute(select(ingest_quarantine.c.line, ingest_quarantine.c.reasons)
                            .where(ingest_quarantine.c.batch_id == result.batch_id)).all()
    by_line = {int(line): reasons for line, reasons in rows if line is not None}
    for line_no, kind in records:
        if kind in expected_reason:
            assert by_line[line_no].startswith(expected_reason[kind]), (line_no, by_line)
        else:
            assert line_no not in by_line, (line_no, by_line[line_no])
    good = sum(k == "good" for _, k in records)
    assert result.inserted == good
    assert result.quarantined == len(records) - good


# --- edge cases the generators reach rarely --------------------------------------------------

_H = TRADE_HEADER + "\n"


@pytest.mark.parametrize(("name", "text", "rows_in", "reasons"), [
    ("blank lines are not records", _H + trade_row(9001) + "\n\n\n" + trade_row(9002) + "\n",
     2, {}),
    ("a blank-looking line is a record", _H + trade_row(9003) + "\n   \n", 2,
     {"row:MISSING_COLUMNS": 1}),
    ("an unterminated quote ends the file", _H + trade_row(9004) + '\nT9,"abc\n', 2,
     {"row:UNQUOTED_VALUE": 1}),
    ("multi-line records", _H + trade_row(9005, amount='"1\n2"') + '\nT9,"a\nb\nc",x\n'
     + trade_row(9006) + "\nx,y\n" + trade_row(9007) + "\n", 5,
     {"amount:NOT_DECIMAL": 1, "row:MISSING_COLUMNS": 2}),
])
def test_csv_record_edge_cases(ws: Container, name: str, text: str, rows_in: int,
                               reasons: dict[str, int]) -> None:
    path = _new_file(ws, "trades", "csv")
    path.write_bytes(text.encode("utf-8"))
    result = ingest_checked(ws, path, "trades")
    assert result is not None, name
    assert result.rows_in == rows_in
    assert result.reasons == reasons


# --- edge cases that once crashed or misreported --------------------------------------------


def test_cr_only_line_endings_fail_cleanly_or_balance(ws: Container) -> None:
    path = _new_file(ws, "trades", "csv")
    path.write_bytes((TRADE_HEADER + "\r" + trade_row(9101) + "\r").encode())
    ingest_checked(ws, path, "trades")


@pytest.mark.parametrize("row_values", [["abc"], ["1", "1"]], ids=["text", "repeated"])
def test_jsonl_key_named_row_is_not_trusted(ws: Container, row_values: list[str]) -> None:
    lines = []
    for value in row_values:
        obj = dict(zip(_TRADE_KEYS, trade_row(1).split(","), strict=True))
        obj.update(trade_id=f"J{next(_ids):09d}", side="X", _row=value)
        lines.append(json.dumps(obj))
    path = _new_file(ws, "trades", "jsonl")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # `_row` is the file's own (unknown) column: a clear whole-file error, never our numbering
    with pytest.raises(SchemaMismatchError, match="'_row'"):
        Ingest(ws).ingest("acme", [path])
    assert len(row_values) >= 1


@pytest.mark.parametrize("header", [TRADE_HEADER + ",trade_id", TRADE_HEADER + ","],
                         ids=["duplicate", "empty"])
def test_bad_header_names_are_a_schema_mismatch(ws: Container, header: str) -> None:
    path = _new_file(ws, "trades", "csv")
    path.write_bytes((header + "\n").encode())
    with pytest.raises(CaifuError) as caught:
        Ingest(ws).ingest("acme", [path])
    assert isinstance(caught.value, SchemaMismatchError), caught.value


@pytest.mark.parametrize(("table", "row"), [
    ("customers", customer_row(9201, birth_date="0000-06-15")),
    ("trades", trade_row(9202, trade_date="00000101")),
    ("trades", trade_row(9203, trade_time="0000-01-01 00:00:00")),
], ids=["customer-birth-date", "trade-date", "trade-time"])
def test_year_0000_is_not_a_date(ws: Container, table: str, row: str) -> None:
    path = _new_file(ws, table, "csv")
    path.write_bytes((_VALID[table][0] + "\n" + row + "\n").encode())
    result = ingest_checked(ws, path, table)
    assert result is not None and result.quarantined == 1, result
