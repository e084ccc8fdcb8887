"""Load one source file into a DuckDB temp table, with the rows that could not be parsed.

The loaded table ``raw`` holds the file's columns as read plus ``_row``, the 1-based data row
in the file; the view ``mapped`` renames them to contract columns and applies value maps. Rows that are not rows at all
(wrong field count, broken JSON) come back as ``RejectedRecord`` for the quarantine; problems
with the file as a whole (unreadable, wrong encoding, unknown or missing columns) raise a
``SourceError`` naming file, line and column.

DuckDB reads UTF-8 CSV, Parquet and JSON natively; a GBK/GB18030 file (the usual encoding of
broker exports) is first transcoded to UTF-8 by ``caifu.adapters.sources.encoding``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.sqltypes import VARCHAR

from caifu.adapters.sources.encoding import (
    Utf8Watch,
    decode_line,
    is_ascii,
    mixed_line_endings,
    to_lf,
    transcode,
)
from caifu.adapters.sources.jsonl import json_array_document, json_record
from caifu.core.errors import (
    EncodingError,
    SchemaMismatchError,
    UnreadableSourceError,
)
from caifu.data.contracts import Table
from caifu.data.mapping import SourceSpec

RAW = "raw"  # the file's rows as read: its own column names and values, plus _row
MAPPED = "mapped"  # the same rows with contract column names and value maps applied
_JSONL_ROW = "__caifu_row__"  # the loader's row numbers; a file may not use this key
_CSV_ROWS = "caifu_csv_rows"  # a CSV's parsed rows in file order; ``raw`` numbers them
_MAX_INLINE_REJECTS = 1024  # up to this many rejected lines, rows are numbered in a view


@dataclass(frozen=True)
class RejectedRecord:
    row_number: int | None
    line: int | None
    reason: str
    raw: str


@dataclass
class RawSource:
    path: Path
    format: str
    rows: int  # rows in ``raw``
    rejected: list[RejectedRecord] = field(default_factory=list)
    source_columns: list[str] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return self.rows + len(self.rejected)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"



class _Loader:
    def __init__(self, con: duckdb.DuckDBPyConnection, spec: SourceSpec, contract: Table,
                 path: Path, workdir: Path) -> None:
        self.con = con
        self.spec = spec
        self.contract = contract
        self.path = path
        self.workdir = workdir

    # -- columns -------------------------------------------------------------------------
    def _mapping(self, source_columns: list[str]) -> dict[str, str]:
        """source column -> contract column, with clear errors for unknown/missing/doubled."""
        seen: set[str] = set()
        mapping: dict[str, str] = {}
        for col in source_columns:
            if col in seen:
                raise SchemaMismatchError("column appears twice in the header",
                                          path=str(self.path), line=self._header_line, column=col)
            seen.add(col)
            target = self.spec.columns.get(col, col if col in self.contract else None)
            if target is None:
                raise SchemaMismatchError(
                    f"unknown column for table {self.contract.name}; map it in sources.yaml "
                    f"(columns: {{{col}: <contract column>}}) or remove it",
                    path=str(self.path), line=self._header_line, column=col)
            if target in mapping.values():
                raise SchemaMismatchError(f"two source columns map to {target!r}",
                                          path=str(self.path), line=self._header_line, column=col)
            mapping[col] = target
        missing = [c.name for c in self.contract.columns
                   if c.required and c.name not in mapping.values()]
        if missing:
            raise SchemaMismatchError(
                f"required column(s) {', '.join(missing)} of {self.contract.name} are missing",
                path=str(self.path), line=self._header_line)
        return mapping

    def _select_list(self, relation: str, row_expr: str | None,
                     internal: str | None = None) -> str:
        """``_row`` plus the file's columns as they are, after checking them against the contract.

        ``internal`` names the loader's own row-number column in ``relation``; every other
        column is the file's, so a file's own ``_row`` is just an unknown column. The mapping
        (renames and value maps) becomes the view ``mapped`` over ``raw``, so the quarantine
        can keep each rejected row exactly as the file had it.
        """
        described = self.con.execute(f"DESCRIBE {relation}").fetchall()
        types = {r[0]: str(r[1]) for r in described}
        mapping = self._mapping([c for c in types if c != internal])
        parts = []
        for src, dst in mapping.items():
            expr = _q(src)
            values = self.spec.values.get(dst)
            if values:
                cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in values.items())
                expr = (f"CASE trim(CAST({expr} AS VARCHAR)) {cases} "
                        f"ELSE CAST({expr} AS VARCHAR) END")
            mode = self.contract[dst].normalise
            if mode and (values or types[src] == "VARCHAR"):
                expr = _normalised(self.con, expr, upper=mode == "nfkc_upper")
            parts.append(f"{expr} AS {_q(dst)}")
        self._mapped_select = ", ".join(["_row", *parts])
        self._source_columns = list(mapping)
        row = [] if row_expr is None else [f"{row_expr} AS _row"]  # None: numbered later
        return ", ".join([*row, *(_q(c) for c in mapping)])

    # -- formats -------------------------------------------------------------------------
    def load(self) -> RawSource:
        if not self.path.is_file():
            raise UnreadableSourceError("file does not exist or is not a regular file",
                                        path=str(self.path))
        fmt = self.spec.format_of(self.path)
        self._header_line = 1 if fmt == "csv" else None
        # DuckDB treats * ? [ ] in a path as a glob; read through a plain-named link so a file
        # called securities_[1].csv can never pull in securities_1.csv.
        self.readable = self.workdir / f"source.{fmt}"
        self.readable.unlink(missing_ok=True)
        self.readable.symlink_to(self.path.resolve())
        loader = {"csv": self._csv, "parquet": self._parquet, "jsonl": self._jsonl}[fmt]
        rows, rejected = loader()
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {MAPPED} AS "
                         f"SELECT {self._mapped_select} FROM {RAW}")
        return RawSource(self.path, fmt, rows, rejected, self._source_columns)

    def _csv(self) -> tuple[int, list[RejectedRecord]]:
        path = self.readable
        # Encodings are utf-8, gbk or gb18030, all ASCII-compatible: an all-ASCII file (a
        # trades export often is) is read as it is, without a transcoded copy.
        if self.spec.encoding != "utf-8" and not is_ascii(self.path):
            path = self.workdir / "transcoded.csv"
            transcode(self.path, self.spec.encoding, path)
        rejects, failed = self._read_csv(path)
        # DuckDB takes the header's line ending for the whole file: a CRLF header over LF
        # rows, or one LF row in a CRLF file, fails its parser or turns good rows into
        # rejects. Only a file that failed or has rejects is looked at, so a clean file costs
        # nothing; a mixed one is read again with LF endings (same lines, same numbers).
        if (failed is not None or rejects) and mixed_line_endings(path):
            lf = self.workdir / "lf.csv"
            to_lf(path, lf)
            rejects, failed = self._read_csv(lf)
        if failed is not None:
            raise UnreadableSourceError(f"cannot parse as CSV: {_first_line(failed)}",
                                        path=str(self.path))
        for line, etype, _msg, text in rejects:
            if etype == "INVALID ENCODING":
                raise EncodingError(
                    "not valid UTF-8; is the file GBK? (set encoding: gbk in sources.yaml)",
                    path=str(self.path), line=int(line))
            if etype == "UNTERMINATED QUOTE" or (
                etype == "UNQUOTED VALUE" and "\n" in str(text).rstrip("\r\n")
            ):
                # An open quote swallows the rest of the file into one "row": stop instead.
                raise UnreadableSourceError(
                    "a quoted value is never closed; fix the quote or the quoting of the export",
                    path=str(self.path), line=int(line))
        # Data rows are numbered in file order; parsed rows get their number from rowid plus
        # the rejected lines before them (exact unless a quoted field spans lines).
        reject_lines = sorted({int(r[0]) for r in rejects})
        rows = self._number_rows(reject_lines)
        rejected: dict[int, RejectedRecord] = {}
        for line, etype, msg, text in rejects:
            line = int(line)
            if line in rejected:
                continue
            rejected[line] = RejectedRecord(
                row_number=line - 1, line=line,
                reason=f"row:{str(etype).replace(' ', '_')}", raw=json.dumps(
                    {"line": text, "error": msg}, ensure_ascii=False))
        return rows, list(rejected.values())

    def _read_csv(self, path: Path) -> tuple[list[tuple[Any, ...]], duckdb.Error | None]:
        """Parse ``path`` into ``_CSV_ROWS``: (DuckDB's rejected lines, None) or ([], error)."""
        self.con.execute("DROP TABLE IF EXISTS caifu_rejects")
        self.con.execute("DROP TABLE IF EXISTS caifu_reject_scans")
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM read_csv({_lit(str(path))}, "
                f"all_varchar=true, header=true, delim={_lit(self.spec.delimiter)}, "
                f"quote='\"', escape='\"', strict_mode=true, store_rejects=true, "
                f"rejects_table='caifu_rejects', rejects_scan='caifu_reject_scans', "
                f"sample_size=-1, auto_detect=false, columns=" + self._header_columns(path) + ")"
            )
            select = self._select_list("src", None)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_CSV_ROWS} AS SELECT {select} FROM src")
        except duckdb.Error as exc:
            return [], exc
        return self.con.execute(
            "SELECT line, error_type, error_message, csv_line FROM caifu_rejects ORDER BY line"
        ).fetchall(), None

    def _header_columns(self, path: Path) -> str:
        """Read the header ourselves so every column is VARCHAR and none is renamed."""
        with path.open("rb") as f:
            first = f.readline()
        try:
            header = first.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            raise EncodingError("header is not valid UTF-8; is the file GBK? "
                                "(set encoding: gbk in sources.yaml)",
                                path=str(self.path), line=1) from None
        if "\r" in header:
            raise UnreadableSourceError("lines end with a bare CR (old Mac line endings); "
                                        "convert the file to LF or CRLF line endings",
                                        path=str(self.path), line=1)
        try:
            names = next(csv.reader([header], delimiter=self.spec.delimiter), [])
        except csv.Error as exc:
            raise UnreadableSourceError(f"cannot parse the header: {exc}",
                                        path=str(self.path), line=1) from None
        names = [n.strip() for n in names]
        if not any(names):
            raise UnreadableSourceError("the file has no header line", path=str(self.path), line=1)
        seen: set[str] = set()
        for i, name in enumerate(names, start=1):
            if not name:
                raise SchemaMismatchError(
                    f"header field {i} has no name (a trailing delimiter?); name or remove it",
                    path=str(self.path), line=1)
            if name in seen:
                raise SchemaMismatchError("column appears twice in the header",
                                          path=str(self.path), line=1, column=name)
            seen.add(name)
        return "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in names) + "}"

    def _number_rows(self, reject_lines: list[int]) -> int:
        """Make ``raw`` the parsed rows with ``_row``, their data row number in the file.

        The j-th rejected line (0-based; the header is line 1) comes after line - 2 - j parsed
        rows, so parsed row ``rowid`` is number rowid + 1 + (rejects after at most rowid
        parsed rows). ``raw`` is a view computing that from ``rowid``: numbering by UPDATE
        rewrote 20M rows, 7.9 s with a correlated count once the file had a rejected line.
        """
        after = [line - 2 - j for j, line in enumerate(reject_lines)]
        if len(after) <= _MAX_INLINE_REJECTS:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {RAW} AS SELECT "
                             f"rowid + 1 + {_count_at_most('rowid', after)} AS _row, * "
                             f"FROM {_CSV_ROWS}")
            return _count(self.con)
        # A file this broken is rare: one correlated count per row, in a table of its own.
        self.con.register("caifu_reject_after", pa.table({"n": pa.array(after, pa.int64())}))
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {RAW} AS SELECT rowid + 1 + "
                f"(SELECT count(*) FROM caifu_reject_after r WHERE r.n <= c.rowid) AS _row, * "
                f"FROM {_CSV_ROWS} c")
        finally:
            self.con.unregister("caifu_reject_after")
        self.con.execute(f"DROP TABLE {_CSV_ROWS}")
        return _count(self.con)

    def _parquet(self) -> tuple[int, list[RejectedRecord]]:
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM "
                f"read_parquet({_lit(str(self.readable))}, file_row_number=true)"
            )
            select = self._select_list("src", "file_row_number + 1", "file_row_number")
            # A view, not a copy: Parquet is cheap to scan again, and a 20M-row copy would
            # push DuckDB past its memory limit into spilling.
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {RAW} AS SELECT {select} FROM src")
        except duckdb.Error as exc:
            raise UnreadableSourceError(f"cannot read as Parquet: {_first_line(exc)}",
                                        path=str(self.path)) from None
        return _count(self.con), []

    def _jsonl(self) -> tuple[int, list[RejectedRecord]]:
        """JSON Lines parsed line by line, so one broken line is quarantined, not fatal.

        Any line that is not one flat JSON object is a bad row, wherever it is: broken JSON
        (``[1, 2``), another JSON value (``[1,2]``, ``3``, ``null``), nested values, a lone
        surrogate escape. Only what concerns the file as a whole refuses it: bytes that are not
        in its encoding (as for CSV) and a JSON array document (``json_array_document``).
        """
        rejected: list[RejectedRecord] = []
        rows: list[dict[str, str | None]] = []
        numbers: list[int] = []
        keys: dict[str, None] = {}
        encoding = "utf-8-sig" if self.spec.encoding == "utf-8" else self.spec.encoding
        utf8 = None if self.spec.encoding == "utf-8" else Utf8Watch(self.path, encoding)
        row_number = 0
        offset = 0
        first: tuple[int, str] | None = None
        last: tuple[int, str] = (0, "")
        with self.path.open("rb") as f:
            for line_no, raw_line in enumerate(f, start=1):
                start, offset = offset, offset + len(raw_line)
                if utf8 is not None and not raw_line.isascii():
                    utf8.feed(raw_line, start, line_no - 1, final=True)
                if not raw_line.strip():
                    continue
                row_number += 1
                text = decode_line(raw_line, encoding, self.spec.encoding, path=self.path,
                                   line=line_no, start=start, utf8=utf8)
                first = first or (line_no, text)
                last = (line_no, text)
                reason, detail, obj = json_record(text)
                if reason or obj is None:
                    raw = {"line": text.rstrip(), **({"error": detail} if detail else {})}
                    rejected.append(RejectedRecord(row_number, line_no, reason or "",
                                                   json.dumps(raw, ensure_ascii=False)))
                    continue
                if _JSONL_ROW in obj:
                    raise SchemaMismatchError("reserved key name", path=str(self.path),
                                              line=line_no, column=_JSONL_ROW)
                for k in obj:
                    keys.setdefault(k, None)
                rows.append(obj)
                numbers.append(row_number)
        if utf8 is not None:
            utf8.refuse_if_utf8()
        if first is not None and json_array_document(first[1], last[1], row_number):
            raise UnreadableSourceError(
                "this is a JSON array, not JSON Lines (one object per line)",
                path=str(self.path), line=first[0])
        if not rows:  # nothing parsed: every line is in the quarantine, no columns to check
            keys = dict.fromkeys(c.name for c in self.contract.columns)
        columns = {k: pa.array([r.get(k) for r in rows], pa.string()) for k in keys}
        table = pa.table({_JSONL_ROW: pa.array(numbers, pa.int64()), **columns})
        self.con.register("caifu_jsonl", table)
        try:
            select = self._select_list("caifu_jsonl", _JSONL_ROW, _JSONL_ROW)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {RAW} AS SELECT {select} FROM caifu_jsonl")
        finally:
            self.con.unregister("caifu_jsonl")
        return len(rows), rejected


_NFKC = "caifu_nfkc"


def _nfkc(values: pa.Array) -> pa.Array:
    return pc.utf8_normalize(values, form="NFKC")


def _normalised(con: duckdb.DuckDBPyConnection, expr: str, *, upper: bool) -> str:
    """SQL for ``caifu.core.ids.normalise_code`` of the VARCHAR ``expr``.

    DuckDB has NFC but no NFKC, so Arrow's runs as a vectorised function, and only for
    values with a non-ASCII character (more bytes than characters; NFKC leaves ASCII
    alone): nearly all identifiers pass at the cost of two length counts.
    """
    try:  # a probe of the name: listing duckdb_functions() took 30 ms a column
        con.execute(f"SELECT {_NFKC}(NULL::VARCHAR)").fetchall()
    except duckdb.CatalogException:
        con.create_function(_NFKC, _nfkc, [VARCHAR], VARCHAR, type="arrow")
    out = f"CASE WHEN strlen({expr}) = length({expr}) THEN {expr} ELSE {_NFKC}({expr}) END"
    return f"upper({out})" if upper else out


def _count_at_most(x: str, sorted_values: list[int]) -> str:
    """SQL for how many of ``sorted_values`` are <= ``x``: a CASE tree, O(log n) per row."""
    def tree(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        return (f"CASE WHEN {x} >= {sorted_values[mid]} THEN {tree(mid + 1, hi)} "
                f"ELSE {tree(lo, mid)} END")
    return tree(0, len(sorted_values))



def _first_line(exc: Exception) -> str:
    """DuckDB's message without the SQL context it appends."""
    return str(exc).strip().splitlines()[0]


def _count(con: duckdb.DuckDBPyConnection) -> int:
    # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses other work.
    return int(con.execute(f"SELECT count(*) FROM {RAW}").fetchall()[0][0])



def load_source(con: duckdb.DuckDBPyConnection, spec: SourceSpec, contract: Table,
                path: Path, workdir: Path) -> RawSource:
    """Load ``path`` as ``raw`` (and the view ``mapped``) on ``con``.

    ``workdir`` is the batch's private scratch folder; ``raw`` may read from it until the
    caller is done with ``con``.
    """
    return _Loader(con, spec, contract, path, workdir).load()
