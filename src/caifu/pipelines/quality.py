"""Data quality: the thresholds, a load's profile, and the rules that judge them.

Pure logic, no I/O: ``services/quality`` reads the files and the system of record, ingest
hands in the Arrow batches (or the Parquet footers' statistics) it already has.

    thresholds   ``data/quality/default.yaml`` with the tenant's ``quality/<tenant>.yaml``
                 laid over it: per table the business date column, the largest quarantine
                 rate of a batch, the largest rise of an optional column's null rate over
                 the previous load, and the largest freshness lag in calendar days
    profile      per load: rows loaded, nulls per column of those rows, and the oldest and
                 newest business date among them (a timestamp as the tenant's local date)
    rules        ``quarantine_rate`` (the table's latest batch), ``null_rate_rise`` (one per
                 optional column, latest load against the one before), ``freshness`` (the
                 table's newest date against the tenant's today); each check passes or is
                 breached, and a disabled rule passes
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from caifu.core.errors import ConfigError
from caifu.data.contracts import Registry, Table

RULES = ("quarantine_rate", "null_rate_rise", "freshness")
_SETTINGS = ("max_quarantine_rate", "max_null_rate_rise", "null_rate_min_rows", "max_lag_days")


# --- thresholds -----------------------------------------------------------------------------

class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)
    max_quarantine_rate: float | None = Field(default=None, ge=0, le=1)
    max_null_rate_rise: float | None = Field(default=None, ge=0, le=1)
    null_rate_min_rows: int = Field(default=1, ge=1)
    max_lag_days: int | None = Field(default=None, ge=0)


class _TableSettings(_Settings):
    date_column: str | None = None


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    defaults: _Settings = Field(default_factory=_Settings)
    tables: dict[str, _TableSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class TableRules:
    """One table's thresholds as they apply (``None``: the rule is off)."""

    date_column: str | None
    max_quarantine_rate: float | None
    max_null_rate_rise: float | None
    null_rate_min_rows: int
    max_lag_days: int | None


@dataclass(frozen=True)
class Thresholds:
    tables: Mapping[str, TableRules]
    sources: tuple[str, ...]  # the files they come from, packaged first

    def of(self, table: str) -> TableRules:
        return self.tables[table]


def _document(data: Any, source: str) -> _Document:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with version, defaults and tables")
    try:
        doc = _Document.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors()[:10]:
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            lines.append(f"  {loc}: {e['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"{source}: invalid data-quality thresholds\n"
                          + "\n".join(lines)) from None
    if doc.version != 1:
        raise ConfigError(f"{source}: version: format version {doc.version} is not supported "
                          "(this caifu reads version 1)")
    return doc


def parse_thresholds(packaged: Any, packaged_source: str, contracts: Registry,
                     tenant: Any = None, tenant_source: str = "") -> Thresholds:
    """The packaged thresholds with the tenant's file (its parsed YAML, or ``None``) over
    them: defaults, then the packaged table entry, then the tenant's defaults and table
    entry — a key set in a later one wins. ``ConfigError`` names the file and the field."""
    base = _document(packaged, packaged_source)
    over = _document(tenant, tenant_source) if tenant is not None else None
    for doc, source in ((base, packaged_source), (over, tenant_source)):
        if doc is None:
            continue
        for name, entry in doc.tables.items():
            if name not in contracts:
                raise ConfigError(f"{source}: tables.{name}: no such table; tables: "
                                  + ", ".join(t.name for t in contracts))
            if entry.date_column is not None:
                if doc is over:
                    raise ConfigError(f"{source}: tables.{name}.date_column: the business "
                                      "date of a table is caifu's, not a tenant setting; "
                                      "remove it")
                _check_date_column(contracts[name], entry.date_column, source)
    out: dict[str, TableRules] = {}
    for contract in contracts:
        merged: dict[str, Any] = {k: getattr(base.defaults, k) for k in _SETTINGS}
        layers: list[BaseModel | None] = [base.tables.get(contract.name)]
        if over is not None:
            layers = [over.defaults, *layers, over.tables.get(contract.name)]
        # a table's own entry beats any defaults: packaged defaults < tenant defaults <
        # packaged table entry < tenant table entry
        for layer in layers:
            if layer is not None:
                merged.update({k: getattr(layer, k) for k in layer.model_fields_set
                               if k in _SETTINGS})
        own = base.tables.get(contract.name)
        out[contract.name] = TableRules(date_column=own.date_column if own else None, **merged)
    sources = (packaged_source,) if over is None else (packaged_source, tenant_source)
    return Thresholds(out, sources)


def _check_date_column(contract: Table, column: str, source: str) -> None:
    if column not in contract or contract[column].kind not in ("date", "timestamp"):
        dated = [c.name for c in contract.columns if c.kind in ("date", "timestamp")]
        raise ConfigError(f"{source}: tables.{contract.name}.date_column: {column!r} is not a "
                          f"date or timestamp column of {contract.name} (those: "
                          f"{', '.join(dated) or 'none'})")


# --- a load's profile -------------------------------------------------------------------------

def local_date(value: dt.date | dt.datetime, tz: ZoneInfo) -> dt.date:
    """A date as it is; a naive-UTC timestamp as the date it was in ``tz``."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).astimezone(tz).date()
    return value


@dataclass
class LoadProfile:
    """What one batch wrote: rows, nulls per column, oldest and newest business date."""

    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    date_column: str | None = None
    oldest: dt.date | None = None
    newest: dt.date | None = None

    def null_rate(self, column: str) -> float | None:
        if not self.rows or column not in self.nulls:
            return None
        return self.nulls[column] / self.rows


class Profiler:
    """Accumulates a ``LoadProfile`` from the Arrow batches a load writes, as they pass.

    ``columns``: the columns whose nulls are counted (a batch missing one counts all its rows
    as null there); per batch, ``written`` narrows them to the columns it really writes (an
    update leaves a column the file lacks as stored: not a null written)."""

    def __init__(self, columns: list[str], date_column: str | None, tz: ZoneInfo) -> None:
        self.columns, self.tz = columns, tz
        self.profile = LoadProfile(nulls=dict.fromkeys(columns, 0), date_column=date_column)
        self._low: dt.date | dt.datetime | None = None
        self._high: dt.date | dt.datetime | None = None

    def add(self, batch: pa.RecordBatch | pa.Table, written: list[str] | None = None) -> None:
        n = batch.num_rows
        if n == 0:
            return
        p = self.profile
        p.rows += n
        names = set(batch.schema.names)
        for c in written if written is not None else self.columns:
            p.nulls[c] += batch.column(c).null_count if c in names else n
        d = p.date_column
        if d is not None and d in names:
            mm = pc.min_max(batch.column(d))
            low, high = mm["min"].as_py(), mm["max"].as_py()
            if low is not None:
                self._low = low if self._low is None else min(self._low, low)
                self._high = high if self._high is None else max(self._high, high)

    def result(self) -> LoadProfile:
        p = self.profile
        if self._low is not None and self._high is not None:
            p.oldest, p.newest = local_date(self._low, self.tz), local_date(self._high, self.tz)
        return p


def profile_from_stats(rows: int, nulls: Mapping[str, int], low: Any, high: Any,
                       date_column: str | None, tz: ZoneInfo) -> LoadProfile:
    """A profile from Parquet footer statistics (rows, null counts, min and max of the date
    column) — what a lake batch's data files say without reading their data."""
    p = LoadProfile(rows=rows, nulls=dict(nulls), date_column=date_column)
    if low is not None and high is not None:
        p.oldest, p.newest = local_date(low, tz), local_date(high, tz)
    return p


# --- rules ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """A committed batch as the rules see it: the ingest log's counts and its profile."""

    batch_id: str
    rows_in: int
    quarantined: int
    profile: LoadProfile | None


@dataclass(frozen=True)
class Check:
    """One rule judged once: ``breached`` raises (or keeps) an alert, a pass resolves it."""

    table: str
    rule: str
    subject: str  # the column of a null-rate check, else ""
    breached: bool
    observed: float | None
    threshold: float | None
    batch_id: str | None
    detail: str


def check_table(contract: Table, rules: TableRules, latest: Batch | None,
                previous: Batch | None, newest: dt.date | None, today: dt.date) -> list[Check]:
    """The checks of one table. A check that cannot be judged (no batch yet, loads too small
    to compare, no dates) is left out, so an open alert of it stays as it is."""
    t = contract.name
    out: list[Check] = []
    if latest is not None:
        rate = latest.quarantined / latest.rows_in if latest.rows_in else 0.0
        limit = rules.max_quarantine_rate
        out.append(Check(t, "quarantine_rate", "", limit is not None and rate > limit, rate,
                         limit, latest.batch_id,
                         f"{latest.quarantined} of {latest.rows_in} rows quarantined"))
        out.extend(_null_checks(contract, rules, latest, previous))
    lag_limit = rules.max_lag_days
    if lag_limit is None:
        out.append(Check(t, "freshness", "", False, None, None, None, "not checked"))
    elif newest is not None:
        lag = (today - newest).days
        out.append(Check(t, "freshness", "", lag > lag_limit, float(lag), float(lag_limit),
                         latest.batch_id if latest else None,
                         f"newest {rules.date_column} {newest.isoformat()}, {lag} days "
                         f"before {today.isoformat()}"))
    return out


def _null_checks(contract: Table, rules: TableRules, latest: Batch,
                 previous: Batch | None) -> list[Check]:
    t, limit = contract.name, rules.max_null_rate_rise
    optional = [c.name for c in contract.columns if not c.required]
    if limit is None:
        return [Check(t, "null_rate_rise", c, False, None, None, latest.batch_id,
                      "not checked") for c in optional]
    now = latest.profile
    before = previous.profile if previous is not None else None
    if (now is None or before is None or now.rows < rules.null_rate_min_rows
            or before.rows < rules.null_rate_min_rows):
        return []
    out = []
    for c in optional:
        r_now, r_before = now.null_rate(c), before.null_rate(c)
        if r_now is None or r_before is None:
            continue
        rise = r_now - r_before
        out.append(Check(t, "null_rate_rise", c, rise > limit, rise, limit, latest.batch_id,
                         f"{c} null in {r_now:.1%} of {now.rows} rows, "
                         f"{r_before:.1%} of {before.rows} the load before"))
    return out
