"""Per-source mapping configuration: which file goes to which table, and how.

A ``sources.yaml`` beside the files (or given with ``--mapping``) lists one entry per kind of
export::

    sources:
      - match: "khzl*.csv"          # glob on the file name
        table: customers
        encoding: gbk               # utf-8 (default), gbk or gb18030; CSV only
        columns: {客户号: customer_id, 客户姓名: name}
        values: {gender: {男: M, 女: F}}
        utc_offset_hours: 8         # timestamps in the file are local time

A file that matches no entry is ingested into the table its name starts with
(``trades_2025.parquet`` → ``trades``) with contract column names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from caifu.core.errors import ConfigError
from caifu.data.contracts import Registry, Table

Format = Literal["csv", "parquet", "jsonl"]
Encoding = Literal["utf-8", "gbk", "gb18030"]
_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


class SourceSpec(BaseModel):
    """How one kind of source file maps onto a contract table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = "*"
    table: str
    format: Format | None = None
    encoding: Encoding = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    utc_offset_hours: int = Field(default=0, ge=-12, le=14)

    @field_validator("encoding", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower().replace("_", "-") if isinstance(v, str) else v

    @field_validator("values", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        # YAML reads 是/否 maps to booleans and codes like 1 as ints; the file holds text.
        if isinstance(v, Mapping):
            return {
                str(col): {_text(k): _text(x) for k, x in (m or {}).items()}
                for col, m in v.items()
            }
        return v

    def format_of(self, path: Path) -> Format:
        if self.format:
            return self.format
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(
                f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                f"set format: csv|parquet|jsonl for it in sources.yaml"
            )
        return fmt

    def check_against(self, contracts: Registry) -> Table:
        contract = contracts[self.table]
        if not contract.ingestible:
            raise ConfigError(f"table {self.table!r} cannot be ingested from files")
        for src, dst in self.columns.items():
            if dst not in contract:
                raise ConfigError(
                    f"sources.yaml entry {self.match!r}: column {src!r} maps to {dst!r}, "
                    f"which is not a column of {self.table}"
                )
        for col in self.values:
            if col not in contract:
                raise ConfigError(
                    f"sources.yaml entry {self.match!r}: values for unknown column {col!r}"
                )
        return contract


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class SourceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[SourceSpec] = Field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> SourceMapping:
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{origin}: invalid mapping: {problems}") from None

    def spec_for(self, path: Path, contracts: Registry, table: str | None = None) -> SourceSpec:
        """The entry for ``path``: explicit ``table``, first glob match, or the name prefix."""
        for spec in self.sources:
            if fnmatch.fnmatch(path.name, spec.match) and (table is None or spec.table == table):
                return spec
        if table is not None:
            return SourceSpec(table=table)
        stem = path.name.split(".")[0].lower()
        names = sorted((t.name for t in contracts if t.ingestible), key=len, reverse=True)
        for name in names:
            if stem == name or stem.startswith(name + "_") or stem.startswith(name + "-"):
                return SourceSpec(table=name)
        raise ConfigError(
            f"{path}: no sources.yaml entry matches this file and its name does not start with "
            f"a table name; add an entry or pass --table"
        )
