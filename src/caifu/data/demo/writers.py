"""How the demo broker's tables leave the building: file formats of real broker exports.

A :class:`SourceSpec` describes one family of files the way ``sources.yaml`` does (glob, table,
encoding, source headers, value maps). :class:`Sinks` appends chunks of a table to files,
converting contract-typed Arrow tables to the export form first: GBK CSV with Chinese headers
and Chinese enum values, UTF-8 CSV, Parquet with native types, or JSON Lines.

Conversions are vectorised (Arrow kernels and lookup tables) because the bench writes
tens of millions of rows through here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

Format = Literal["csv", "parquet", "jsonl"]
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class SourceSpec:
    match: str
    table: str
    fmt: Format
    encoding: str = "utf-8"
    file: str | None = None  # the file written; default: ``match`` itself
    # contract column -> source header, in file column order; None: contract names as they are
    headers: Mapping[str, str] | None = None
    # contract column -> {contract value: source value}; sources.yaml gets the inverse
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # set column (contract ``members``) -> {member: source name}: the file joins the names
    # with "、", which the contract reads itself, so sources.yaml maps nothing
    sets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    date_format: str = "%Y-%m-%d"
    identity_columns: bool = False  # spell out contract -> contract in sources.yaml

    @property
    def file_name(self) -> str:
        return self.file or self.match

    def yaml_entry(self, columns: list[str]) -> dict[str, object]:
        entry: dict[str, object] = {"match": self.match, "table": self.table}
        if self.fmt == "csv":
            entry["encoding"] = self.encoding
        if self.headers is not None:
            entry["columns"] = {src: col for col, src in self.headers.items()}
        elif self.identity_columns:
            entry["columns"] = {c: c for c in columns}
        if self.values:
            entry["values"] = {col: {src: val for val, src in m.items()}
                               for col, m in self.values.items()}
        return entry


# --- exact decimals and fast text formatting ------------------------------------------------


def decimals(units: np.ndarray, scale: int = 2, precision: int = 18,
             valid: np.ndarray | None = None) -> pa.Array:
    """Decimal array from integers counted in 10**-scale (fen for money): exact, no floats."""
    v = np.ascontiguousarray(units, dtype=np.int64)
    buf = np.empty((len(v), 2), dtype=np.int64)
    buf[:, 0] = v
    buf[:, 1] = np.where(v < 0, -1, 0)
    nulls = 0 if valid is None else int(len(v) - np.count_nonzero(valid))
    bitmap = None
    if nulls:
        bitmap = pa.py_buffer(np.packbits(np.asarray(valid, dtype=np.uint8),
                                          bitorder="little").tobytes())
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(v),
                                 [bitmap, pa.py_buffer(buf.tobytes())], null_count=nulls)


def dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """date32 from integer days since 1970-01-01 (``valid`` False -> null)."""
    arr = pa.array(np.asarray(days, dtype=np.int32), mask=None if valid is None else ~valid)
    return arr.cast(pa.date32())


def timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(micros, dtype=np.int64)).cast(pa.timestamp("us"))


def pick(values: np.ndarray | pa.Array | list, idx: np.ndarray,
         valid: np.ndarray | None = None) -> pa.Array:
    """``values[idx]`` as an Arrow array (null where ``valid`` is False), without building
    a NumPy string array first: much faster for millions of rows."""
    vocab = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    indices = pa.array(np.asarray(idx, dtype=np.int64), mask=None if valid is None else ~valid)
    return vocab.take(indices)


def sequence_ids(prefix: str, chunk: int, n: int) -> pa.Array:
    """``{prefix}{chunk:04d}{i:08d}`` for i in 0..n-1, vectorised."""
    nums = pa.array(np.arange(n, dtype=np.int64) + chunk * 10**8).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(nums, 12, "0"), "")


def fixed_point_text(units: np.ndarray, scale: int) -> pa.Array:
    """Non-negative integers counted in 10**-scale as text with exactly ``scale`` decimals."""
    v = np.asarray(units, dtype=np.int64)
    whole = pa.array(v // 10**scale).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(v % 10**scale).cast(pa.string()), scale, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _date_strings(arr: pa.Array, fmt: str) -> pa.Array:
    days = pc.fill_null(pc.cast(arr.cast(pa.date32()), pa.int32()), 0).to_numpy(
        zero_copy_only=False).astype(np.int64)
    valid = ~np.asarray(pc.is_null(arr))
    if not valid.any():
        return pa.nulls(len(arr), pa.string())
    lo, hi = int(days[valid].min()), int(days[valid].max())
    table = pc.strftime(dates(np.arange(lo, hi + 1)), format=fmt)
    idx = np.where(valid, days - lo, 0)
    return pc.if_else(pa.array(valid), table.take(pa.array(idx)), pa.scalar(None, pa.string()))


_TIME_OF_DAY = None


def _timestamp_strings(arr: pa.Array) -> pa.Array:
    global _TIME_OF_DAY
    if _TIME_OF_DAY is None:
        s = np.arange(86400)
        _TIME_OF_DAY = pa.array([f" {h:02d}:{m:02d}:{x:02d}" for h, m, x in
                                 zip(s // 3600, s // 60 % 60, s % 60, strict=True)])
    secs = pc.fill_null(pc.cast(pc.cast(arr, pa.timestamp("s"), safe=False), pa.int64()),
                        0).to_numpy(
        zero_copy_only=False)
    day_part = _date_strings(dates(secs // 86400), "%Y-%m-%d")
    tod = _TIME_OF_DAY.take(pa.array(secs % 86400))
    out = pc.binary_join_element_wise(day_part, tod, "")
    return pc.if_else(pc.is_null(arr), pa.scalar(None, pa.string()), out)


def as_text(arr: pa.ChunkedArray | pa.Array, date_format: str) -> pa.Array:
    """The text a CSV export shows for a contract-typed column."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_date(t):
        return _date_strings(arr, date_format)
    if pa.types.is_timestamp(t):
        return _timestamp_strings(arr)
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    return arr.cast(pa.string())


def map_values(arr: pa.Array, mapping: Mapping[str, str]) -> pa.Array:
    """Replace contract values by source values; anything unmapped passes through."""
    keys = pa.array(list(mapping))
    idx = pc.index_in(arr, value_set=keys)
    mapped = pa.array(list(mapping.values())).take(pc.fill_null(idx, 0))
    return pc.if_else(pc.is_null(idx), arr, mapped)


def name_members(arr: pa.Array, names: Mapping[str, str]) -> pa.Array:
    """A set column's stored values ("cash,equity") as a source writes them ("现金管理、权益")."""
    distinct = [v for v in pc.unique(arr).to_pylist() if v is not None]  # at most 2**members
    return map_values(arr, {v: "、".join(names[m] for m in v.split(",")) for v in distinct})


def export_form(table: pa.Table, spec: SourceSpec) -> pa.Table:
    """Contract-typed table -> the columns, names and values the source file carries."""
    if spec.fmt == "parquet":
        return table
    cols, names = [], []
    for name in (spec.headers or {c: c for c in table.column_names}):
        arr = as_text(table[name], spec.date_format)
        if name in spec.values:
            arr = map_values(arr, spec.values[name])
        if name in spec.sets:
            arr = name_members(arr, spec.sets[name])
        cols.append(arr)
        names.append(spec.headers[name] if spec.headers else name)
    return pa.table(cols, names=names)


# --- sinks --------------------------------------------------------------------------------------


class Sinks:
    """Open output files, appended to chunk by chunk; byte-identical for identical input."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows: dict[str, int] = {}
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._text: dict[str, io.BufferedWriter] = {}

    def append(self, name: str, spec: SourceSpec, table: pa.Table) -> None:
        """Append an export-form table (see :func:`export_form`) to file ``name``."""
        first = name not in self.rows
        self.rows[name] = self.rows.get(name, 0) + table.num_rows
        if spec.fmt == "parquet":
            if first:
                self._parquet[name] = pq.ParquetWriter(
                    self.out_dir / name, table.schema, compression="zstd",
                    write_statistics=True, store_schema=False)
            self._parquet[name].write_table(table, row_group_size=1 << 20)
            return
        if first:
            self._text[name] = open(self.out_dir / name, "wb")  # noqa: SIM115 - closed in close()
        fh = self._text[name]
        if spec.fmt == "csv":
            # Unquoted, like most core-system exports; Arrow refuses a value that would
            # need quotes, so a stray comma cannot silently shift columns.
            buf = io.BytesIO()
            if first:
                buf.write((",".join(table.column_names) + "\n").encode("utf-8"))
            pacsv.write_csv(table, buf, pacsv.WriteOptions(
                include_header=False, quoting_style="none", delimiter=","))
            data = buf.getvalue()
            if spec.encoding != "utf-8":
                data = data.decode("utf-8").encode(spec.encoding)
            fh.write(data)
        else:
            fh.write(jsonl_bytes(table))

    def close(self) -> None:
        for w in self._parquet.values():
            w.close()
        for fh in self._text.values():
            fh.close()
        self._parquet.clear()
        self._text.clear()


def jsonl_bytes(table: pa.Table) -> bytes:
    """One JSON object per row, UTF-8, keys in column order; dates and times as text."""
    cols = {}
    for name in table.column_names:
        arr = table[name]
        if not pa.types.is_string(arr.type):
            arr = as_text(arr, "%Y-%m-%d")
        cols[name] = arr.to_pylist() if isinstance(arr, pa.Array) else arr.to_pylist()
    names = table.column_names
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    lines = [dumps(dict(zip(names, row, strict=True))) for row in zip(*cols.values(), strict=True)]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def write_sources_yaml(path: Path, entries: list[dict[str, object]]) -> None:
    header = (
        "# Demo broker exports: file name glob -> table, encoding, column and value maps.\n"
        "# Generated by caifu.data.demo; _ground_truth/ is for tests and is not a source.\n"
    )
    body = yaml.safe_dump({"sources": entries}, allow_unicode=True, sort_keys=False, width=120)
    path.write_text(header + body, encoding="utf-8")
