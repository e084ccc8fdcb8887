"""Defects outside probes found in ingest (issue 13), each pinned by the file that showed it.

One SQLite workspace seeded with reference data serves the module: every test writes files
with fresh keys, so the tests do not see each other's rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import ingest_quarantine
from caifu.core.errors import EncodingError, UnreadableSourceError
from caifu.core.ids import resident_id_for
from caifu.services.container import Container
from caifu.services.ingest.load import BatchResult, Ingest
from tests.factories import (
    CUSTOMER_HEADER,
    TRADE_HEADER,
    customer_row,
    reference_workspace,
    trade_row,
)

_ids = itertools.count(1)
_files = itertools.count(1)
_TRADE_KEYS = TRADE_HEADER.split(",")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = reference_workspace(tmp_path_factory.mktemp("probes"))
    yield c
    c.close()


def _path(ws: Container, stem: str, ext: str) -> Path:
    folder = ws.root.parent / "files"
    folder.mkdir(exist_ok=True)
    return folder / f"{stem}_{next(_files):04d}.{ext}"


def _quarantine(ws: Container, result: BatchResult) -> dict[int, tuple[str, str]]:
    """line (or row number for typed rows) -> (reasons, raw JSON)."""
    with ws.engine.connect() as conn:
        rows = conn.execute(select(ingest_quarantine.c.row_number, ingest_quarantine.c.line,
                                   ingest_quarantine.c.reasons, ingest_quarantine.c.raw_json)
                            .where(ingest_quarantine.c.batch_id == result.batch_id)).all()
    return {int(r.line if r.line is not None else r.row_number): (r.reasons, r.raw_json)
            for r in rows}


# --- JSON Lines: a broken line is a bad row, wherever it is ----------------------------------


def _good_line(**override: object) -> str:
    obj: dict[str, object] = dict(zip(_TRADE_KEYS, trade_row(1).split(","), strict=True))
    obj["trade_id"] = f"JP{next(_ids):08d}"
    obj.update(override)
    return json.dumps(obj, ensure_ascii=False)


_BROKEN_LINES = {
    "truncated array": ("[1, 2", "row:JSON_SYNTAX"),
    "lone open bracket": ("[", "row:JSON_SYNTAX"),
    "truncated object": ('{"trade_id": "J1"', "row:JSON_SYNTAX"),
    "array of numbers": ("[1,2]", "row:JSON_NOT_OBJECT"),
    "number": ("3", "row:JSON_NOT_OBJECT"),
    "string": ('"x"', "row:JSON_NOT_OBJECT"),
    "null": ("null", "row:JSON_NOT_OBJECT"),
    "lone surrogate escape": (None, "row:JSON_LONE_SURROGATE"),  # built by _surrogate_line
}


def _surrogate_line() -> str:
    # json.dumps writes the escape as six ASCII characters; json.loads reads back a lone
    # surrogate, which no UTF-8 text (Arrow, the SoR) can hold.
    return json.dumps(json.loads(_good_line()) | {"channel": "\ud800"})


@pytest.mark.parametrize("position", ["first", "last"])  # the fuzz test puts them between
@pytest.mark.parametrize("kind", list(_BROKEN_LINES))
def test_jsonl_broken_line_is_a_quarantined_row_anywhere(ws: Container, kind: str,
                                                         position: str) -> None:
    text, reason = _BROKEN_LINES[kind]
    broken = _surrogate_line() if text is None else text
    lines = [_good_line(), _good_line()]
    at = {"first": 0, "last": 2}[position]
    lines.insert(at, broken)
    path = _path(ws, "trades", "jsonl")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (r,) = Ingest(ws).ingest("acme", [path])
    assert (r.rows_in, r.inserted, r.quarantined) == (3, 2, 1)
    assert r.reasons == {reason: 1}
    (line, (reasons, raw)), = _quarantine(ws, r).items()
    assert (line, reasons) == (at + 1, reason)
    assert json.loads(raw)["line"] == broken


def test_a_json_array_document_is_still_refused_whole(ws: Container) -> None:
    one_line = json.dumps([json.loads(_good_line()), json.loads(_good_line())])
    for text in (one_line, "[\n" + _good_line() + ",\n" + _good_line() + "\n]",
                 "[" + _good_line() + ",\n" + _good_line() + "]"):
        path = _path(ws, "trades", "jsonl")
        path.write_text(text + "\n", encoding="utf-8")
        with pytest.raises(UnreadableSourceError, match="JSON array, not JSON Lines"):
            Ingest(ws).ingest("acme", [path])


@pytest.mark.parametrize("line_no", [1, 3])
def test_jsonl_invalid_utf8_refuses_the_file_at_its_first_bad_byte(ws: Container,
                                                                   line_no: int) -> None:
    """Encoding is a property of the file, as for CSV: refused whole, never half-read."""
    lines = [_good_line().encode() for _ in range(3)]
    bad = lines[line_no - 1]
    cut = bad.index(b'"channel"') if b'"channel"' in bad else bad.index(b'"fee"')
    lines[line_no - 1] = bad[:cut] + b"\xff" + bad[cut:]
    offset = sum(len(x) + 1 for x in lines[: line_no - 1]) + cut
    path = _path(ws, "trades", "jsonl")
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(EncodingError, match=rf"line {line_no}: byte 0xff at offset {offset}"):
        Ingest(ws).ingest("acme", [path])


# --- CSV line endings and encodings ----------------------------------------------------------


def _branches(ws: Container, stem: str, data: bytes, encoding: str = "utf-8") -> Path:
    folder = ws.root.parent / f"{stem}_{next(_files):04d}"
    folder.mkdir()
    (folder / "sources.yaml").write_text(
        f"sources:\n  - match: 'yyb*'\n    table: branches\n    encoding: {encoding}\n",
        encoding="utf-8")
    path = folder / "yyb.csv"
    path.write_bytes(data)
    return path


def _branch_names(ws: Container, ids: list[str]) -> dict[str, str]:
    from caifu.adapters.sor.models import CONTRACT_TABLES

    t = CONTRACT_TABLES["branches"]
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t.c.branch_id, t.c.name).where(t.c.branch_id.in_(ids))).all()
    return dict(rows)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
@pytest.mark.parametrize(("name", "lines"), [
    ("CRLF header over LF rows", ["\r\n", "\n", "\n", "\n", "\n"]),
    ("one LF row in a CRLF file", ["\r\n", "\r\n", "\n", "\r\n", "\r\n"]),
    ("one CRLF row in an LF file", ["\n", "\n", "\r\n", "\n", "\n"]),
])
def test_csv_with_mixed_line_endings_loads_with_right_line_numbers(
        ws: Container, name: str, lines: list[str], encoding: str) -> None:
    n = next(_ids)
    ids = [f"M{n}a", f"M{n}b", f"M{n}c"]
    # (DuckDB numbers lines by record: the multi-line record comes after the bad row)
    records = ["branch_id,name", f"{ids[0]},北京", "short_row_with_no_name",
               f'{ids[1]},"上海\r\n浦东"', f"{ids[2]},广州"]
    data = "".join(r + eol for r, eol in zip(records, lines, strict=True)).encode(encoding)
    (r,) = Ingest(ws).ingest("acme", [_branches(ws, "eol", data, encoding)])
    assert (r.rows_in, r.inserted, r.reasons) == (4, 3, {"row:MISSING_COLUMNS": 1}), name
    ((line, (reason, _)),) = _quarantine(ws, r).items()
    assert (line, reason) == (3, "row:MISSING_COLUMNS")
    # a line break inside quotes is the value's own and is kept as it was
    assert _branch_names(ws, ids) == {ids[0]: "北京", ids[1]: "上海\r\n浦东", ids[2]: "广州"}


def test_utf8_declared_gbk_is_refused_when_its_first_chinese_is_past_64_kib(
        ws: Container) -> None:
    filler = [f"Z{i:06d},Branch number {i} with an ASCII name" for i in range(2000)]
    head = ("branch_id,name\n" + "\n".join(filler) + "\n").encode()
    assert len(head) > 1 << 16
    path = _branches(ws, "late", head + "Z999999,北京金融街营业部\n".encode(), "gbk")
    with pytest.raises(EncodingError, match=(
            rf"line 2002: declared gbk but the bytes are UTF-8 \(first non-ASCII byte at "
            rf"offset {len(head) + 8}\)")):
        Ingest(ws).ingest("acme", [path])
    assert _branch_names(ws, ["Z000001", "Z999999"]) == {}


def test_gb18030_declared_utf8_content_past_64_kib_is_refused_too(ws: Container) -> None:
    # GB18030 decodes almost any bytes, so only the UTF-8 rule can tell
    head = ("branch_id,name\n" + "".join(f"Y{i:06d},ascii\n" for i in range(5000))).encode()
    path = _branches(ws, "late18030", head + "Y999999,上海\n".encode(), "gb18030")
    with pytest.raises(EncodingError, match="declared gb18030 but the bytes are UTF-8"):
        Ingest(ws).ingest("acme", [path])


def test_gbk_with_a_few_utf8_valid_pairs_is_still_gbk(ws: Container) -> None:
    """The rule is the whole file: GBK text that happens to start UTF-8-valid loads."""
    n = next(_ids)
    # "说" in GBK is CB B5, a valid two-byte UTF-8 sequence; the name after it is not
    data = f"branch_id,name\nG{n}a,说\nG{n}b,北京金融街营业部\n".encode("gbk")
    (r,) = Ingest(ws).ingest("acme", [_branches(ws, "gbk", data, "gbk")])
    assert (r.inserted, r.quarantined) == (2, 0)
    assert _branch_names(ws, [f"G{n}a", f"G{n}b"]) == {f"G{n}a": "说", f"G{n}b": "北京金融街营业部"}


# --- text rules: blank required values, identifiers in full-width or lower case --------------


def _customers(ws: Container, rows: list[str]) -> BatchResult:
    path = _path(ws, "customers", "csv")
    path.write_text(CUSTOMER_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (r,) = Ingest(ws).ingest("acme", [path])
    return r


def _stored_customers(ws: Container, ids: list[str]) -> dict[str, tuple[str, str]]:
    from caifu.adapters.sor.models import CONTRACT_TABLES

    t = CONTRACT_TABLES["customers"]
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t.c.customer_id, t.c.name, t.c.id_number)
                            .where(t.c.customer_id.in_(ids))).all()
    return {r.customer_id: (r.name, r.id_number) for r in rows}


def test_a_name_of_tabs_or_full_width_spaces_is_missing(ws: Container) -> None:
    n = 1000 + next(_ids)
    r = _customers(ws, [customer_row(n, name="\t"), customer_row(n + 1, name="\u3000\u3000"),
                        customer_row(n + 2, name="\u3000张三")])
    assert (r.inserted, r.reasons) == (1, {"name:REQUIRED": 2})
    assert _stored_customers(ws, [f"C{n + 2:05d}"])[f"C{n + 2:05d}"][0] == "\u3000张三"


def _full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def test_full_width_customer_id_is_the_same_customer(ws: Container) -> None:
    n = 2000 + next(_ids)
    cid = f"C{n:05d}"
    first = _customers(ws, [customer_row(n)])
    assert first.inserted == 1
    again = _customers(ws, [customer_row(n, customer_id=_full_width(cid))])
    assert (again.inserted, again.duplicates, again.quarantined) == (0, 1, 0)
    assert list(_stored_customers(ws, [cid, _full_width(cid)])) == [cid]


def test_lower_case_x_in_a_resident_id_is_stored_upper_case(ws: Container) -> None:
    n = 3000 + next(_ids)
    number = resident_id_for("110105", dt.date(1985, 5, 5), 2)
    assert number.endswith("X")
    r = _customers(ws, [customer_row(n, id_number=number[:17] + "x")])
    assert (r.inserted, r.reasons) == (1, {})
    assert _stored_customers(ws, [f"C{n:05d}"])[f"C{n:05d}"][1] == number


def test_full_width_ids_in_a_trade_refer_to_the_stored_customer_and_account(
        ws: Container) -> None:
    tid = f"TFW{next(_ids):05d}"
    row = trade_row(1, trade_id=_full_width(tid), customer_id=_full_width("C00002"),
                    fund_account=_full_width("F00002"), security_code=_full_width("600000"))
    path = _path(ws, "trades", "csv")
    path.write_text(TRADE_HEADER + "\n" + row + "\n", encoding="utf-8")
    (r,) = Ingest(ws).ingest("acme", [path])
    assert (r.inserted, r.reasons) == (1, {})
    stored = duckdb.connect().execute(
        "SELECT trade_id, customer_id, fund_account, security_code FROM read_parquet(?) "
        "WHERE trade_id = ?", [ws.lake.files("acme", "trades"), tid]).fetchall()
    assert stored == [(tid, "C00002", "F00002", "600000")]


# --- references that agree: an account belongs to the customer the row names ----------------


def test_a_trade_on_another_customers_account_is_quarantined(ws: Container) -> None:
    n = 5000 + next(_ids)
    rows = [trade_row(n, customer_id="C00001", fund_account="F00001"),
            trade_row(n + 1, customer_id="C00001", fund_account="F00002"),  # C00002's
            trade_row(n + 2, customer_id="C00001", fund_account="F99999")]  # no such account
    path = _path(ws, "trades", "csv")
    path.write_text(TRADE_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (r,) = Ingest(ws).ingest("acme", [path])
    assert (r.inserted, r.quarantined) == (1, 2)
    assert r.reasons == {"fund_account:ACCOUNT_NOT_OWNED": 1, "fund_account:UNKNOWN_REF": 1}
    quarantined = _quarantine(ws, r)
    reasons, raw = quarantined[2]
    assert reasons == "fund_account:ACCOUNT_NOT_OWNED"
    # the rule is named, the account's owner is not: the row shows only its own values
    assert "C00002" not in reasons + raw
    assert quarantined[3][0] == "fund_account:UNKNOWN_REF"


def test_cash_flows_and_fund_transactions_check_the_owner_too() -> None:
    from caifu.data.contracts import registry

    owned = {t.name: t.agrees for t in registry() if t.agrees}
    assert owned == dict.fromkeys(("trades", "positions", "cash_flows", "fund_transactions"),
                                  (("fund_account", "customer_id", "ACCOUNT_NOT_OWNED"),))


def test_an_unknown_customer_is_not_also_told_the_account_is_not_his(ws: Container) -> None:
    row = trade_row(6000 + next(_ids), customer_id="C99999", fund_account="F00001")
    path = _path(ws, "trades", "csv")
    path.write_text(TRADE_HEADER + "\n" + row + "\n", encoding="utf-8")
    (r,) = Ingest(ws).ingest("acme", [path])
    assert r.reasons == {"customer_id:UNKNOWN_REF": 1}
