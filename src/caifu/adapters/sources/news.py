"""News and announcement files (JSON Lines, a JSON array, CSV) and request bodies, read into
records: one per line, item or row, each with where it was and the text as received.

A record that cannot be read (bytes not in the encoding, a line that is not JSON) comes back
with its problem, to be stored as a rejected document — never skipped. Only what stops the
whole file raises a ``SourceError``: an unknown format, an array that does not parse, a CSV
header without the required columns.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caifu.core.errors import EncodingError, SchemaMismatchError, UnreadableSourceError

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
REQUIRED = {"title": ("title",), "url": ("url", "link"),
            "published": ("published", "published_at")}


@dataclass(frozen=True)
class Record:
    where: str  # "line 3", "item 2", "row 4 (line 5)"
    raw: str  # the record as received; undecodable bytes as \x escapes
    value: Any = None  # the decoded object, when there is no problem
    problem: tuple[str, str | None, str] | None = None  # reason, field, message


def _visible(data: bytes, encoding: str = "utf-8") -> str:
    return data.decode(encoding, "backslashreplace")


def _bad_bytes(exc: UnicodeDecodeError) -> str:
    return (f"bytes {exc.object[exc.start:exc.end]!r} at byte {exc.start + 1} are not "
            f"{exc.encoding}")


def json_lines(data: bytes, encoding: str = "utf-8") -> list[Record]:
    """One record per non-blank line."""
    out = []
    for n, line in enumerate(data.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if n == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as exc:
            out.append(Record(where, _visible(line), problem=("BAD_ENCODING", None,
                                                               _bad_bytes(exc))))
            continue
        try:
            out.append(Record(where, text, json.loads(text)))
        except json.JSONDecodeError as exc:
            out.append(Record(where, text, problem=(
                "NOT_JSON", None, f"not JSON at column {exc.colno}: {exc.msg}")))
    return out


def json_array(data: bytes, name: str, encoding: str = "utf-8") -> list[Record]:
    """One record per item of a JSON array (an object alone is one item)."""
    try:
        text = data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise EncodingError(_bad_bytes(exc), path=name) from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableSourceError(f"not a JSON array: {exc.msg} at column {exc.colno}",
                                    path=name, line=exc.lineno) from None
    if not isinstance(items, list):
        items = [items]
    return [Record(f"item {i}", json.dumps(item, ensure_ascii=False), item)
            for i, item in enumerate(items, 1)]


def body_records(data: bytes, name: str = "request") -> list[Record]:
    """A request body: a JSON array when it starts with ``[``, else JSON Lines."""
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        return json_array(data, name)
    return json_lines(data)


def csv_rows(data: bytes, name: str, encoding: str = "utf-8") -> list[Record]:
    """One record per row; the header names the fields (``FIELDS`` of ``risk.documents``)."""
    text = data.decode(encoding, "surrogateescape").lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if any("\udc80" <= ch <= "\udcff" for h in header for ch in h):
        raise EncodingError(f"the header is not {encoding} (a GBK export? give its encoding, "
                            "e.g. --encoding gbk)", path=name, line=1)
    missing = [f for f, names in REQUIRED.items() if not set(names) & set(header)]
    if missing:
        raise SchemaMismatchError(f"the header has no {', '.join(missing)} column (it has: "
                                  f"{', '.join(header) or 'nothing'})", path=name, line=1)
    reader.fieldnames = header
    out, line = [], reader.line_num + 1
    for n, row in enumerate(reader, 1):
        where = f"row {n} (line {line})"
        line = reader.line_num + 1
        extra = row.pop(None, None)
        raw = json.dumps(row, ensure_ascii=False)
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        bad = [k for k, v in row.items() if v and any("\udc80" <= ch <= "\udcff" for ch in v)]
        if bad:
            out.append(Record(where, raw, problem=("BAD_ENCODING", bad[0],
                                                   f"bytes that are not {encoding}")))
        elif extra:
            out.append(Record(where, raw, problem=(
                "BAD_FIELD", None, f"{len(extra)} more value(s) than the header has columns")))
        else:
            out.append(Record(where, raw, {k: v for k, v in row.items() if v is not None}))
    return out


def read_file(path: Path, encoding: str = "utf-8") -> tuple[bytes, list[Record]]:
    """The file's bytes and its records, by its suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnreadableSourceError(f"unknown format {suffix or '(no suffix)'!r}; use "
                                    + ", ".join(SUFFIXES), path=path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableSourceError(f"cannot read: {exc.strerror}", path=path.name) from None
    if suffix == ".csv":
        return data, csv_rows(data, path.name, encoding)
    if suffix == ".json":
        return data, body_records(data, path.name) if encoding == "utf-8" else \
            json_array(data, path.name, encoding)
    return data, json_lines(data, encoding)
