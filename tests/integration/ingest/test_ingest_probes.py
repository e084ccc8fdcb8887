"""Defects outside probes found in ingest (issue 13), each pinned by the file that showed it.

One SQLite workspace seeded with reference data serves the module: every test writes files
with fresh keys, so the tests do not see each other's rows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import ingest_quarantine
from caifu.core.errors import EncodingError, UnreadableSourceError
from caifu.services.container import Container
from caifu.services.ingest.load import BatchResult, Ingest
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings
from tests.factories import TRADE_HEADER, seed_reference, trade_row

_ids = itertools.count(1)
_files = itertools.count(1)
_TRADE_KEYS = TRADE_HEADER.split(",")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("probes")
    c = init_workspace(root / "ws", Settings(duckdb_memory_limit="1GB", duckdb_threads=2))
    create_tenant(c, "acme", "甲乙证券")
    for r in Ingest(c).ingest("acme", seed_reference(root / "ref")):
        assert r.quarantined == 0, r.reasons
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
