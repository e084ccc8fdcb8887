"""Ingest: broker export files into the system of record and the lake, trustworthily.

For every file (one batch): ``rows_in = loaded + quarantined + duplicates``, recorded in the
ingest log with the file's SHA-256 and timings. Re-ingesting a file, or overlapping files,
adds nothing twice (natural keys). A batch lands whole or not at all:

* system-of-record tables: rows, quarantine and log are one database transaction;
* lake tables: quarantine and a ``committing`` log row are written first, then one Delta
  commit tagged with the batch id, then the log is marked ``committed``. A process killed in
  between leaves a ``committing`` row; the tenant's next ingest settles it by looking for
  the batch id in the Delta history (committed → keep, absent → drop its quarantine), and
  until then the quarantine listing shows only committed batches.

Writers to one (tenant, table) are serialised with a file lock in the workspace (one per
table: ingests of other tables go on; one that must wait says for which batch). Each batch
works in its own scratch folder (``tmp/ingest-<tenant>.<table>-<batch>``), removed when it
ends. A process killed mid-batch (SIGKILL, power loss) leaves that folder, its uncommitted
Parquet files and a ``committing`` log row: whoever next holds the table's lock — the next
ingest of the table, or any ingest of the tenant finding the lock free — marks the batch
failed ("interrupted", loaded 0) and removes its files.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import yaml

from caifu.adapters.lake.delta import LINEAGE_COLUMN
from caifu.adapters.sor import store
from caifu.adapters.sor.repos import ingest as repo
from caifu.adapters.sor.repos import quality as quality_repo
from caifu.adapters.sources.files import MAPPED, RAW, RawSource, RejectedRecord, load_source
from caifu.core.errors import ConfigError, UnreadableSourceError
from caifu.data.contracts import Registry, Table, registry
from caifu.data.mapping import SourceMapping, SourceSpec
from caifu.pipelines.quality import LoadProfile, Profiler, Thresholds, profile_from_stats
from caifu.pipelines.staging import (
    FATE,
    REASONS,
    ROW,
    StagingOptions,
    check_references,
    check_rows,
    fate_overrides,
    typed_rows,
    with_fates,
)
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.quality import checks as quality

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]  # (file name, phase)
QuarantineRecord = tuple[int, int | None, str, str]  # row number, line, reasons, raw row JSON
CHECKED = "caifu_checked"
OVERRIDES = "caifu_fate_overrides"
CLASSIFIED = "caifu_classified"
INSERTS = "caifu_inserts"


@dataclass
class BatchResult:
    batch_id: str
    path: Path
    table: str
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    sha256: str = ""
    status: str = "loaded"  # loaded | failed (error says why) | skipped (not attempted)
    error: str = ""

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.loaded + self.quarantined + self.duplicates


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise UnreadableSourceError(f"cannot read: {exc.strerror}", path=str(path)) from None
    return h.hexdigest(), size


def load_mapping(path: Path | None) -> SourceMapping:
    if path is None:
        return SourceMapping()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read mapping: {exc}") from None
    return SourceMapping.from_dict(data, str(path))


def ingest_log(c: Container, tenant: str, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's most recent batches, newest first."""
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        return repo.log_entries(conn, tenant, limit)


def quarantined_rows(c: Container, tenant: str, batch: str | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
    """Quarantined rows of committed batches, newest batch first (``batch``: an id prefix)."""
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        return repo.quarantine_entries(conn, tenant, batch, limit)


class Ingest:
    def __init__(self, container: Container, contracts: Registry | None = None) -> None:
        self.c = container
        self.contracts = contracts or registry()

    # -- planning --------------------------------------------------------------------
    def plan(self, paths: Sequence[Path], mapping: Path | None = None,
             table: str | None = None) -> list[tuple[Path, SourceSpec, Table]]:
        """Expand directories, pick each file's spec, order by table dependencies."""
        files: list[Path] = []
        for p in paths:
            if p.is_dir():
                files.extend(sorted(f for f in p.iterdir() if f.is_file()
                                    and not f.name.startswith((".", "_"))
                                    and f.suffix.lower() not in (".yaml", ".yml", ".md")))
            elif p.is_file():
                files.append(p)
            else:
                raise UnreadableSourceError("no such file or folder", path=str(p))
        mappings: dict[Path, SourceMapping] = {}
        plan = []
        for f in files:
            mpath = mapping or _sibling_mapping(f)
            key = mpath or Path()
            if key not in mappings:
                mappings[key] = load_mapping(mpath)
            spec = mappings[key].spec_for(f, self.contracts, table)
            plan.append((f, spec, spec.check_against(self.contracts)))
        plan.sort(key=lambda item: (self.contracts.rank(item[2].name), str(item[0])))
        return plan

    def ingest(self, tenant: str, paths: Sequence[Path], *, mapping: Path | None = None,
               table: str | None = None, progress: Progress | None = None,
               outcomes: list[BatchResult] | None = None) -> list[BatchResult]:
        """Ingest files in dependency order; ``progress(file, phase)`` ends with "done".

        The first file that fails stops the run and its error is raised; ``outcomes``, when
        given, then holds every planned file: loaded, failed (``error``) or skipped.
        """
        get_tenant(self.c, tenant)
        plan = self.plan(paths, mapping, table)
        self.settle(tenant, wait=False)
        outcomes = [] if outcomes is None else outcomes
        results: list[BatchResult] = []
        failure: BaseException | None = None
        for f, spec, contract in plan:
            if failure is not None:
                outcomes.append(BatchResult("", f, contract.name, status="skipped",
                                            error="not attempted: an earlier file failed"))
                continue
            try:
                results.append(self.ingest_file(tenant, f, spec, contract, progress))
                outcomes.append(results[-1])
            except Exception as exc:
                failure = exc
                outcomes.append(BatchResult("", f, contract.name, status="failed",
                                            error=str(exc)))
        if failure is not None:
            raise failure
        return results

    def settle(self, tenant: str, wait: bool = True) -> None:
        """Settle batches of ``tenant`` a killed process left in any lake table (``wait``
        False: only tables no live writer holds — that writer settles its own)."""
        for contract in self.contracts:
            if contract.store == "lake":
                with writer_lock(self.c, tenant, contract.name, wait=wait) as held:
                    if held:
                        self._settle_pending(tenant, contract)

    # -- one batch -------------------------------------------------------------------
    def ingest_file(self, tenant: str, path: Path, spec: SourceSpec, contract: Table,
                    progress: Progress | None = None) -> BatchResult:
        tz = ZoneInfo(get_tenant(self.c, tenant).timezone)
        # read first: a broken thresholds file stops the batch before anything is written
        rules = quality.thresholds(self.c, tenant, self.contracts)
        result = BatchResult(uuid.uuid4().hex, path, contract.name)
        step = _Stopwatch(result.timings, path.name, progress)
        def waiting(why: str) -> None:
            if progress:
                progress(path.name, why)

        with writer_lock(self.c, tenant, contract.name, result.batch_id, waiting), \
                self.c.scratch(_scratch(tenant, contract.name, result.batch_id)) as scratch:
            with step("checksum"):
                result.sha256, size = file_digest(path)
                before = _stamp(path)
            self._settle_pending(tenant, contract, keep=result.batch_id)
            con = self.c.duckdb(scratch)
            try:
                with step("read"):
                    raw_source = load_source(con.con, spec, contract, path, scratch)
                with step("check"):
                    provided = self._classify(con, tenant, contract, spec, tz)
                    counts = dict(con.con.execute(
                        f"SELECT {FATE}, count(*) FROM {CLASSIFIED} GROUP BY ALL").fetchall())
                    # CLASSIFIED holds the rows that may not be plain inserts; every other parsed
                    # row is one. The write counts what it inserts and refuses a different number.
                    counts["insert"] = raw_source.rows - sum(
                        int(n) for fate, n in counts.items() if fate != "insert")
                    reasons = self._reason_counts(con, raw_source.rejected)
                    quarantine = self._quarantine_records(con, raw_source)
                if _stamp(path) != before:
                    raise UnreadableSourceError(
                        "the file changed while it was being ingested; ingest it again once "
                        "the export has finished writing", path=str(path))
                result.rows_in = raw_source.rows_in
                result.inserted = int(counts.get("insert", 0))
                result.updated = int(counts.get("update", 0))
                result.duplicates = int(counts.get("duplicate", 0))
                result.quarantined = int(counts.get("reject", 0)) + len(raw_source.rejected)
                result.reasons = reasons
                if not result.balanced:  # a bug in caifu, never a user error
                    raise AssertionError(f"ingest does not balance for {path}: {result}")
                date_column = rules.of(contract.name).date_column
                with step("write"):
                    if contract.store == "sor":
                        self._write_sor(con, tenant, contract, result, str(path), size,
                                        quarantine, provided, Profiler(
                                            list(contract.column_names), date_column, tz))
                    else:
                        self._write_lake(con, tenant, contract, result, str(path), size,
                                         quarantine, date_column, tz)
            finally:
                con.disconnect()
        self._check_quality(tenant, contract, result, rules, step)
        with self.c.engine.begin() as conn:  # now the write phase has its time too
            repo.record_timings(conn, tenant, result.batch_id, result.timings)
        if progress:
            progress(path.name, "done")
        return result

    def _check_quality(self, tenant: str, contract: Table, result: BatchResult,
                       rules: Thresholds, step: _Stopwatch) -> None:
        """The table's data-quality checks, after the batch has landed: a failure here is
        logged, never the batch's (``caifu quality check`` judges again)."""
        try:
            with step("quality"):
                quality.check(self.c, tenant, [contract.name], by=result.batch_id,
                              rules=rules, contracts=self.contracts)
        except Exception:
            log.exception("data-quality checks after batch %s of %s failed; run "
                          "`caifu quality check`", result.batch_id, contract.name)

    def _classify(self, con: ibis.BaseBackend, tenant: str, contract: Table,
                  spec: SourceSpec, tz: ZoneInfo) -> list[str]:
        """Classify the batch; return the columns the file provides.

        Only the rows whose fate may be other than a plain insert are materialised, with
        their fates, as ``CLASSIFIED``: rows that fail a check, and rows whose key comes more
        than once in the file or is already stored (a superset of the keys ``fate_overrides``
        looks at, so it sees every row it needs). ``INSERTS`` is a view of the other rows,
        typed again from the file, that the write streams out. Materialising all 20M checked
        trades took 2.5 GB and most of the spilling at a 3 GB memory limit.
        """
        now = dt.datetime.now(dt.UTC)
        opts = StagingOptions(today=now.astimezone(tz).date(), now_utc=now.replace(tzinfo=None),
                              utc_offset_hours=spec.utc_offset_hours)
        mapped = con.table(MAPPED)
        checked = check_rows(mapped, contract, opts)
        ref_keys = {}
        with self.c.engine.connect() as conn:
            refs = {col.name: ref_table for col, ref_table, _ in contract.refs}
            for ref_table in dict.fromkeys(refs.values()):
                # with the columns a row must agree on (a fund account's customer)
                also = [other for column, other, _ in contract.agrees
                        if refs[column] == ref_table]
                ref_keys[ref_table] = _arrow_table(
                    con, f"caifu_keys_{ref_table}",
                    repo.keys(conn, tenant, self.contracts[ref_table], also))
            stored_arrow = repo.rows(conn, tenant, contract) if contract.store == "sor" else None
        checked = check_references(checked, contract, ref_keys)
        if contract.store == "sor":
            stored = (_arrow_table(con, "caifu_stored", stored_arrow)
                      if stored_arrow is not None else None)
        else:
            lake = self.c.lake_table(con, tenant, contract.name)
            stored = lake.select(contract.column_names) if lake is not None else None
        typed = typed_rows(mapped, contract, opts)
        key = list(contract.key)
        repeated = (typed.group_by(key).aggregate(_n=typed.count())
                    .filter(lambda t: t["_n"] > 1).select(*key))
        marks = [repeated] if stored is None else [repeated, stored.select(*key)]
        checked = _temp_table(con, CHECKED, _maybe_not_inserts(checked, key, marks))
        # A column the file leaves out says nothing about stored values: compare (and later
        # update) only what the file provides.
        provided = [c for c in contract.column_names if c in mapped.columns]
        overrides = _temp_table(con, OVERRIDES,
                                fate_overrides(checked, contract, stored, provided))
        con.create_view(CLASSIFIED, with_fates(checked, overrides))
        not_inserted = con.table(CLASSIFIED).filter(lambda t: t[FATE] != "insert").select(ROW)
        con.create_view(INSERTS, typed.anti_join(not_inserted, ROW).select(*contract.column_names))
        return provided

    def _reason_counts(self, con: ibis.BaseBackend,
                       rejected: Sequence[RejectedRecord]) -> dict[str, int]:
        rows = con.con.execute(
            f"""SELECT r, count(*) FROM (
                    SELECT unnest(string_split(rtrim({REASONS}, ';'), ';')) AS r
                    FROM {CLASSIFIED} WHERE {FATE} = 'reject')
                GROUP BY r ORDER BY count(*) DESC, r""").fetchall()
        out = {str(r): int(n) for r, n in rows}
        for rec in rejected:
            out[rec.reason] = out.get(rec.reason, 0) + 1
        return out

    def _quarantine_records(self, con: ibis.BaseBackend,
                            source: RawSource) -> list[QuarantineRecord]:
        # The raw row as JSON built in SQL, so decimals keep their exact digits.
        pairs = ", ".join(f"{_sql_text(c)}, r.{_sql_name(c)}" for c in source.source_columns)
        raw_json = f"json_object({pairs})::VARCHAR" if pairs else "'{}'"
        rows = con.con.execute(
            f"""SELECT c.{ROW}, rtrim(c.{REASONS}, ';'), {raw_json}
                FROM {CLASSIFIED} c JOIN {RAW} r ON r.{ROW} = c.{ROW}
                WHERE c.{FATE} = 'reject' ORDER BY c.{ROW}""").fetchall()
        records: list[QuarantineRecord] = [
            (int(row), None, str(reasons), str(raw)) for row, reasons, raw in rows]
        records.extend((rec.row_number or 0, rec.line, rec.reason, rec.raw)
                       for rec in source.rejected)
        return records

    def _fate_rows(self, con: ibis.BaseBackend, contract: Table, fate: str) -> pa.Table:
        # No ORDER BY here or in the lake write: stored order means nothing, and sorting 20M
        # rows by _row cost 6 s and 3 GB of spill in the benchmark.
        cols = ", ".join(f'"{c}"' for c in contract.column_names)
        rows: pa.Table = con.con.sql(
            f"SELECT {cols} FROM {CLASSIFIED} WHERE {FATE} = '{fate}'").to_arrow_table()
        return rows

    def _write_sor(self, con: ibis.BaseBackend, tenant: str, contract: Table,
                   result: BatchResult, source: str, size: int,
                   quarantine: list[QuarantineRecord], provided: list[str],
                   profiler: Profiler) -> None:
        updates = self._fate_rows(con, contract, "update")
        cols = ", ".join(f'"{c}"' for c in contract.column_names)
        with store.bulk_transaction(self.c.engine) as conn:
            repo.start_log(conn, tenant, result.batch_id, contract.name, source,
                           result.sha256, size, "committing", _counts(result), result.reasons,
                           now=self.c.clock.now())
            repo.add_quarantine(conn, tenant, result.batch_id, contract.name, source, quarantine)
            inserts = con.con.sql(f"SELECT {cols} FROM {INSERTS}").to_arrow_reader(1 << 16)
            # the profile counts the rows as they stream to the database: no second read
            inserted = repo.insert_rows(conn, tenant, contract, _profiled(inserts, profiler))
            if inserted != result.inserted:  # a bug in caifu, never a user error
                raise AssertionError(f"{inserted} rows inserted, counted {result.inserted}")
            repo.update_rows(conn, tenant, contract, updates.to_pylist(), provided)
            # an update writes only the columns the file provides: the rest are not nulls
            profiler.add(updates, written=[c for c in contract.column_names if c in provided])
            _add_profile(conn, tenant, result.batch_id, contract.name, profiler.result(),
                         self.c.clock.now())
            repo.finish_log(conn, tenant, result.batch_id, status="committed",
                            counts=_counts(result), reasons=result.reasons, timings=result.timings,
                            now=self.c.clock.now())

    def _write_lake(self, con: ibis.BaseBackend, tenant: str, contract: Table,
                    result: BatchResult, source: str, size: int,
                    quarantine: list[QuarantineRecord], date_column: str | None,
                    tz: ZoneInfo) -> None:
        with self.c.engine.begin() as conn:
            repo.start_log(conn, tenant, result.batch_id, contract.name, source,
                           result.sha256, size, "committing", _counts(result), result.reasons,
                           now=self.c.clock.now())
            repo.add_quarantine(conn, tenant, result.batch_id, contract.name, source, quarantine)
        folder = None
        profile = LoadProfile(nulls=dict.fromkeys(contract.column_names, 0),
                              date_column=date_column)
        try:
            if result.inserted:
                # DuckDB's parallel Parquet writer, one file per thread, then one Delta commit
                # of those files: write_deltalake encoded on one core (≈ 8 s of 20M trades).
                folder = self.c.lake.data_folder(tenant, contract.name, result.batch_id)
                cols = ", ".join(f'CAST("{c.name}" AS {c.type_name}) AS "{c.name}"'
                                 for c in contract.columns)
                con.con.execute(
                    f"COPY (SELECT {cols}, '{result.batch_id}' AS {LINEAGE_COLUMN} "
                    f"FROM {INSERTS}) TO {_sql_text(str(folder))} "
                    "(FORMAT parquet, COMPRESSION snappy, PER_THREAD_OUTPUT true)")
                self.c.lake.append_files(tenant, contract, folder, result.batch_id,
                                         result.inserted)
                # the profile from the new files' Parquet footers: no data read again
                profile = self._lake_profile(tenant, contract, result.batch_id, date_column,
                                             tz)
        except BaseException:
            if folder is not None and result.batch_id not in self.c.lake.committed_batches(
                    tenant, contract.name):  # files no commit refers to
                shutil.rmtree(folder, ignore_errors=True)
            # Settle now rather than on the next ingest; a SIGKILL never reaches here and is
            # settled by _settle_pending instead.
            self._settle_pending(tenant, contract, keep=result.batch_id)
            raise
        with self.c.engine.begin() as conn:
            repo.finish_log(conn, tenant, result.batch_id, status="committed",
                            counts=_counts(result), reasons=result.reasons, timings=result.timings,
                            now=self.c.clock.now())
            _add_profile(conn, tenant, result.batch_id, contract.name, profile,
                         self.c.clock.now())

    def _lake_profile(self, tenant: str, contract: Table, batch_id: str,
                      date_column: str | None, tz: ZoneInfo) -> LoadProfile:
        rows, nulls, low, high = self.c.lake.batch_stats(tenant, contract.name, batch_id,
                                                         date_column)
        return profile_from_stats(rows, nulls, low, high, date_column, tz)

    def _settle_pending(self, tenant: str, contract: Table, keep: str = "") -> None:
        """With the table's lock held: what earlier, dead writers of it left — scratch
        folders, and batches still 'committing' (kept if their commit happened, else
        failed with their Parquet files removed). ``keep``: the caller's own batch."""
        for folder in (self.c.root / "tmp").glob(f"{_scratch(tenant, contract.name, '')}*"):
            if folder.name != _scratch(tenant, contract.name, keep):
                shutil.rmtree(folder, ignore_errors=True)
        with self.c.engine.begin() as conn:
            pending = [b for b in repo.pending_batches(conn, tenant, contract.name) if b != keep]
            if not pending:
                return
            committed = self.c.lake.committed_batches(tenant, contract.name)
            for batch_id in pending:
                repo.resolve_pending(conn, tenant, batch_id, batch_id in committed,
                                     now=self.c.clock.now())
                if batch_id in committed:  # the profile its writer did not live to record
                    tz = ZoneInfo(get_tenant(self.c, tenant).timezone)
                    date_column = quality.packaged(self.contracts).of(contract.name).date_column
                    _add_profile(conn, tenant, batch_id, contract.name, self._lake_profile(
                        tenant, contract, batch_id, date_column, tz), self.c.clock.now())
                if batch_id not in committed:  # nothing landed: drop its files
                    shutil.rmtree(self.c.lake.path(tenant, contract.name) / f"batch-{batch_id}",
                                  ignore_errors=True)



def _profiled(reader: pa.RecordBatchReader, profiler: Profiler) -> pa.RecordBatchReader:
    """``reader`` unchanged, each batch counted by ``profiler`` on its way through."""
    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            profiler.add(batch)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _add_profile(conn: Any, tenant: str, batch_id: str, table: str, p: LoadProfile,
                 now: dt.datetime) -> None:
    quality_repo.add_profile(conn, tenant, batch_id, table, rows=p.rows, nulls=p.nulls,
                             date_column=p.date_column, oldest=p.oldest, newest=p.newest,
                             now=now)


def _scratch(tenant: str, table: str, batch_id: str) -> str:
    return f"ingest-{tenant}.{table}-{batch_id}"


@contextmanager
def writer_lock(c: Container, tenant: str, table: str, batch_id: str = "",
                on_wait: Callable[[str], None] | None = None, wait: bool = True
                ) -> Iterator[bool]:
    """The (tenant, table) writers' lock — the file ``Container.lock`` takes too; yields
    whether it is held (always, when ``wait``). A writer that must wait is told for what
    (``on_wait``): the holder notes its batch and start beside the lock."""
    folder = c.root / "locks"
    folder.mkdir(exist_ok=True)
    holder = folder / f"{tenant}.{table}.holder"
    with (folder / f"{tenant}.{table}.lock").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if on_wait is not None:
                on_wait(_holder_text(holder, table))
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            if batch_id:
                holder.write_text(json.dumps({"batch_id": batch_id, "pid": os.getpid(),
                                              "started_at": dt.datetime.now(dt.UTC).isoformat(
                                                  timespec="seconds")}))
            yield True
        finally:
            if batch_id:
                holder.unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)


def _holder_text(holder: Path, table: str) -> str:
    try:
        h = json.loads(holder.read_text())
        return (f"waiting for the {table} ingest of batch {h['batch_id'][:12]} started "
                f"{h['started_at']} (pid {h['pid']})")
    except (OSError, ValueError, KeyError):
        return f"waiting for another writer of {table} (an ingest, an erasure or a job)"


def _temp_table(con: ibis.BaseBackend, name: str, expr: ir.Table) -> ir.Table:
    """``expr`` stored as the temporary table ``name``, with the columns and types Ibis gives
    it. ``con.create_table(name, expr, temp=True)`` copied the query's SQLGlot tree twice
    (for a check of a dozen columns, 40 KB of SQL: a tenth of a small batch's time); the
    query here is compiled once, and reads only tables of ``con`` (``_arrow_table``)."""
    con.create_table(name, schema=expr.schema(), temp=True)
    columns = ", ".join(_sql_name(c) for c in expr.columns)
    con.con.execute(f"INSERT INTO {_sql_name(name)} ({columns}) {con.compile(expr)}")
    return con.table(name)


def _arrow_table(con: ibis.BaseBackend, name: str, data: pa.Table) -> ir.Table:
    """``data`` as the table ``name`` of ``con`` (a view of the Arrow data, no copy)."""
    con.con.register(name, data)
    return con.table(name)


def _maybe_not_inserts(checked: ir.Table, key: list[str], marks: list[ir.Table]) -> ir.Table:
    """The checked rows that fail a check or whose key is in one of ``marks``."""
    j = checked
    names: list[str] = []
    for i, mark in enumerate(marks):
        name = f"_in_{i}"
        m = mark.select(*key).distinct().mutate(**{name: ibis.literal(True)})
        j = j.left_join(m, key)
        names.append(name)
        j = j.select(*checked.columns, *names)
    hit = reduce(lambda a, b: a | b, (j[n].notnull() for n in names), j[REASONS] != "")
    return j.filter(hit).select(*checked.columns)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _counts(r: BatchResult) -> dict[str, int]:
    return {"rows_in": r.rows_in, "loaded": r.loaded, "inserted": r.inserted,
            "updated": r.updated, "quarantined": r.quarantined, "duplicates": r.duplicates}


def _sibling_mapping(path: Path) -> Path | None:
    for name in ("sources.yaml", "sources.yml"):
        candidate = path.parent / name
        if candidate.is_file():
            return candidate
    return None


class _Stopwatch:
    def __init__(self, timings: dict[str, float], name: str, progress: Progress | None) -> None:
        self.timings, self.name, self.progress = timings, name, progress

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self.progress:
            self.progress(self.name, phase)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = round(self.timings.get(phase, 0.0) + time.perf_counter() - t0, 4)
