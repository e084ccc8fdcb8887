"""Delta Lake tables for facts, one folder per tenant.

Each ingest batch is one Delta commit carrying ``caifu.batch_id`` in its commit metadata, so
a batch is either wholly visible or not at all, and a crashed ingest can later tell whether its
commit happened. Readers get the current file list (``file_uris``) to hand to DuckDB's
``read_parquet`` — never DuckDB's ``delta`` extension, which would need a download.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions

from caifu.core.tenancy import check_tenant_id
from caifu.data.contracts import Table
from caifu.data.contracts.arrow import contract_schema

BATCH_KEY = "caifu.batch_id"
RETIRED = "_caifu_retired.json"
# How long a file a new version no longer refers to stays readable: longer than any reader
# (a build, an export, an API query) keeps a file list. Regulators are told this bound.
RETIRE_AFTER = dt.timedelta(hours=24)
LINEAGE_COLUMN = "_batch_id"


def arrow_schema(contract: Table) -> pa.Schema:
    """The lake schema of a contract: its columns plus the batch that wrote each row."""
    return contract_schema(contract).append(pa.field(LINEAGE_COLUMN, pa.string(), nullable=False))


def _conform(data: pa.RecordBatchReader | pa.Table, schema: pa.Schema) -> pa.RecordBatchReader:
    """Stream ``data`` cast to the lake schema (e.g. DuckDB's DECIMAL widths, nullability)."""
    reader = data.to_reader() if isinstance(data, pa.Table) else data

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [batch.column(f.name).cast(f.type) for f in schema], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


class Lake:
    """The lake under ``root``: ``root/<tenant>/<table>`` is a Delta table."""

    def __init__(self, root: Path, retire_after: dt.timedelta = RETIRE_AFTER) -> None:
        self.root = root
        self.retire_after = retire_after

    def path(self, tenant: str, table: str) -> Path:
        return self.root / check_tenant_id(tenant) / table

    def _open(self, tenant: str, table: str) -> DeltaTable | None:
        path = self.path(tenant, table)
        if not (path / "_delta_log").exists():
            return None
        try:
            return DeltaTable(str(path))
        except TableNotFoundError:
            return None

    def files(self, tenant: str, table: str) -> list[str]:
        """Parquet files of the current version (empty if the table does not exist yet)."""
        dt = self._open(tenant, table)
        return [] if dt is None else list(dt.file_uris())

    def append(
        self,
        tenant: str,
        contract: Table,
        data: pa.RecordBatchReader | pa.Table,
        batch_id: str,
    ) -> None:
        """Append ``data`` (the contract's columns, then ``_batch_id``) as one atomic commit."""
        path = self.path(tenant, contract.name)
        path.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            str(path),
            _conform(data, arrow_schema(contract)),
            mode="append",
            commit_properties=CommitProperties(custom_metadata={BATCH_KEY: batch_id}),
        )

    def data_folder(self, tenant: str, table: str, batch_id: str) -> Path:
        """A new, empty folder inside the table for a batch's data files (``append_files``)."""
        folder = self.path(tenant, table) / f"batch-{batch_id}"
        folder.mkdir(parents=True)
        return folder

    def append_files(self, tenant: str, contract: Table, folder: Path, batch_id: str,
                     expected_rows: int) -> int:
        """Commit the Parquet files in ``folder`` (from ``data_folder``) as one append.

        The files are written by another engine (DuckDB's parallel writer uses both cores,
        ``write_deltalake`` mostly one); until this commit no reader sees them. Their
        schema must be the lake schema, and their rows number ``expected_rows``: otherwise
        nothing is committed. Returns the number of rows committed.
        """
        root = self.path(tenant, contract.name)
        schema = arrow_schema(contract)
        actions: list[AddAction] = []
        rows = 0
        for file in sorted(folder.glob("*.parquet")):
            meta = pq.read_metadata(file)
            got = meta.schema.to_arrow_schema()
            if [(f.name, f.type) for f in got] != [(f.name, f.type) for f in schema]:
                raise AssertionError(f"{file}: schema {got} is not the lake schema {schema}")
            rows += meta.num_rows
            st = file.stat()
            actions.append(AddAction(
                path=file.relative_to(root).as_posix(), size=st.st_size, partition_values={},
                modification_time=st.st_mtime_ns // 1_000_000, data_change=True,
                stats=json.dumps(_file_stats(meta, schema))))
        if rows != expected_rows:  # a bug in caifu, never a user error
            raise AssertionError(f"{rows} rows in the files for the lake, counted {expected_rows}")
        commit = CommitProperties(custom_metadata={BATCH_KEY: batch_id})
        table = self._open(tenant, contract.name)
        if table is None:
            create_table_with_add_actions(str(root), DeltaSchema.from_arrow(schema), actions,
                                          mode="append", commit_properties=commit)
        else:
            table.create_write_transaction(actions, mode="append", schema=schema,
                                           commit_properties=commit)
        return rows

    def batch_stats(self, tenant: str, table: str, batch_id: str, date_column: str | None
                    ) -> tuple[int, dict[str, int], Any, Any]:
        """What the footers of a batch's data files say, without reading their data: rows,
        null count per column (a column some row group has none for is left out), and the
        minimum and maximum of ``date_column`` (``None`` when no footer has them)."""
        rows, low, high = 0, None, None
        nulls: dict[str, int] = {}
        unknown: set[str] = set()
        for file in sorted((self.path(tenant, table) / f"batch-{batch_id}").glob("*.parquet")):
            meta = pq.read_metadata(file)
            rows += meta.num_rows
            names = meta.schema.to_arrow_schema().names
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for i, name in enumerate(names):
                    st = group.column(i).statistics
                    if st is None or not st.has_null_count:
                        unknown.add(name)
                        continue
                    nulls[name] = nulls.get(name, 0) + st.null_count
                    if name == date_column and st.has_min_max:
                        low = st.min if low is None else min(low, st.min)
                        high = st.max if high is None else max(high, st.max)
        return rows, {k: v for k, v in nulls.items()
                      if k not in unknown and k != LINEAGE_COLUMN}, low, high

    def committed_batches(self, tenant: str, table: str) -> set[str]:
        dt = self._open(tenant, table)
        if dt is None:
            return set()
        return {str(h[BATCH_KEY]) for h in dt.history() if BATCH_KEY in h}

    def count(self, tenant: str, table: str) -> int:
        dt = self._open(tenant, table)
        if dt is None:
            return 0
        actions = pa.table(dt.get_add_actions(flatten=True))
        return sum(int(n) for n in actions["num_records"].to_pylist())

    # --- derived tables (features, scores): one snapshot per business date --------------------

    def write_snapshot(self, tenant: str, table: str, data: pa.Table, as_of: str,
                       metadata: dict[str, str]) -> int:
        """Replace the rows of ``table`` whose ``as_of`` equals ``as_of`` in one commit.

        Other dates' rows stay, so the table holds one snapshot per business date and every
        rebuild is a new Delta version (time travel shows what a date looked like before).
        Returns the new version.
        """
        path = self.path(tenant, table)
        path.mkdir(parents=True, exist_ok=True)
        exists = (path / "_delta_log").exists()
        write_deltalake(
            str(path), data, mode="overwrite",
            predicate=f"as_of = '{as_of}'" if exists else None,
            commit_properties=CommitProperties(custom_metadata=metadata),
        )
        dt = self._open(tenant, table)
        assert dt is not None
        return int(dt.version())

    def snapshot_dates(self, tenant: str, table: str) -> list[str]:
        """The as-of dates a derived table holds (reads only the ``as_of`` column)."""
        dt = self._open(tenant, table)
        if dt is None:
            return []
        dates = ds.dataset(dt.file_uris(), format="parquet").to_table(columns=["as_of"])
        return sorted({str(d) for d in dates["as_of"].unique().to_pylist()})

    def latest_snapshot(self, tenant: str, table: str) -> pa.Table | None:
        """The rows of the newest as-of date a derived table holds, or None when empty."""
        dates = self.snapshot_dates(tenant, table)
        if not dates:
            return None
        data = ds.dataset(self.files(tenant, table), format="parquet")
        return data.to_table(filter=ds.field("as_of") == pa.scalar(dates[-1]).cast(pa.date32()))

    def merge_snapshot(self, tenant: str, table: str, data: pa.Table, keys: tuple[str, ...],
                       as_of: str, customers: list[str], metadata: dict[str, str]) -> bool:
        """Make ``customers``' rows of the ``as_of`` snapshot equal ``data``, in one commit.

        Rows matching on ``keys`` are updated, new ones inserted, and these customers' other
        rows of that date deleted (a tag they lost). Only dates the table already holds are
        touched — a partial snapshot of a new date would look like a whole one; returns
        whether anything was merged.
        """
        dt = self._open(tenant, table)
        if dt is None or not customers or as_of not in self.snapshot_dates(tenant, table):
            return False
        quoted = ", ".join("'" + c.replace("'", "''") + "'" for c in customers)
        (
            dt.merge(source=data, source_alias="s", target_alias="t",
                     predicate=" AND ".join(f"t.{k} = s.{k}" for k in keys),
                     commit_properties=CommitProperties(custom_metadata=metadata))
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(
                predicate=f"t.as_of = '{as_of}' AND t.customer_id IN ({quoted})")
            .execute()
        )
        return True


    # --- erasure (data-subject requests, services/privacy) ---------------------------------

    def tables_with(self, tenant: str, column: str) -> list[str]:
        """The tenant's tables whose schema has ``column`` (with or without data)."""
        folder = self.path(tenant, "_").parent
        found = []
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if (path / "_delta_log").is_dir() and \
                    column in DeltaTable(str(path)).schema().to_arrow().names:
                found.append(path.name)
        return found

    def retiring(self, tenant: str) -> list[str]:
        """The tenant's tables with files waiting on the retirement ledger."""
        folder = self.path(tenant, "_").parent
        return sorted(p.parent.name for p in folder.glob(f"*/{RETIRED}"))

    def erase_rows(self, tenant: str, table: str, column: str, value: str,
                   rewrite: bool = True) -> None:
        """Remove the rows where ``column = value`` in a new version.

        The files that held them are not deleted here: a reader that took the file list
        before this commit may still be reading them. The caller puts them on the
        retirement ledger (``mark_unreferenced``); ``retire`` deletes them later.
        An overwrite with a predicate, not ``DeltaTable.delete``: deltalake ≥ 1.4 writes a
        delete's files with ``string_view`` columns, which PyArrow cannot filter
        (delta-io/delta-rs#4579), and the services read lake tables with PyArrow too.
        """
        path = str(self.path(tenant, table))
        if rewrite:
            quoted = value.replace("'", "''")
            write_deltalake(path, pa.schema(DeltaTable(path).schema().to_arrow()).empty_table(),
                            mode="overwrite", predicate=f"{column} = '{quoted}'")

    # --- retiring files no version refers to any more ---------------------------------------
    # The ledger lives beside the table (a name starting with "_" is no data file to Delta):
    # [{"path": relative file, "since": ISO UTC time, "request": who retired it}]

    def ledger(self, tenant: str, table: str) -> list[dict[str, str]]:
        path = self.path(tenant, table) / RETIRED
        entries: list[dict[str, str]] = json.loads(path.read_text()) if path.is_file() else []
        return entries

    def _save_ledger(self, tenant: str, table: str, entries: list[dict[str, str]]) -> None:
        path = self.path(tenant, table) / RETIRED
        if not entries:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=0))
        tmp.replace(path)

    def _current(self, tenant: str, table: str) -> set[str]:
        """The current version's data files, relative to the table's folder."""
        root = self.path(tenant, table).resolve()
        return {Path(f.removeprefix("file://")).resolve().relative_to(root).as_posix()
                for f in self.files(tenant, table)}

    def _unreferenced(self, tenant: str, table: str) -> list[str]:
        root = self.path(tenant, table)
        current = self._current(tenant, table)
        return sorted(rel for f in root.rglob("*.parquet")
                      if not (rel := f.relative_to(root).as_posix()).startswith("_delta_log/")
                      and rel not in current)

    def mark_unreferenced(self, tenant: str, table: str, request: str = "",
                          now: dt.datetime | None = None) -> int:
        """Put every data file the current version no longer refers to on the ledger (files
        a crashed writer left included); returns how many were new to it. Call with the
        table's writer lock held."""
        entries = self.ledger(tenant, table)
        known = {e["path"] for e in entries}
        since = (now or _utcnow()).isoformat()
        new = [{"path": p, "since": since, "request": request}
               for p in self._unreferenced(tenant, table) if p not in known]
        self._save_ledger(tenant, table, entries + new)
        return len(new)

    def retire(self, tenant: str, table: str, now: dt.datetime | None = None
               ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """Delete the ledger's files retired at least ``retire_after`` ago — every reader
        that began before they were retired has finished by then. Returns (deleted, still
        waiting). Call with the table's writer lock held."""
        now = now or _utcnow()
        current = self._current(tenant, table)
        root = self.path(tenant, table)
        done, waiting = [], []
        for e in self.ledger(tenant, table):
            if e["path"] in current:  # referenced again (never expected): not ours to delete
                continue
            if dt.datetime.fromisoformat(e["since"]) + self.retire_after > now:
                waiting.append(e)
                continue
            file = root / e["path"]
            file.unlink(missing_ok=True)
            if file.parent != root and not any(file.parent.iterdir()):
                file.parent.rmdir()  # an ingest batch's folder
            done.append(e)
        self._save_ledger(tenant, table, waiting)
        return done, waiting

    def drop_history(self, tenant: str, table: str) -> None:
        """Checkpoint and drop the older commits: their file statistics (minima and maxima
        of every column) and a delete's predicate would otherwise keep erased values."""
        dt_ = DeltaTable(str(self.path(tenant, table)))
        keep = dt_.metadata().configuration.get("delta.logRetentionDuration", "interval 30 days")
        dt_.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 days"})
        dt_.create_checkpoint()
        dt_.cleanup_metadata()
        dt_.alter.set_table_properties({"delta.logRetentionDuration": keep})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _file_stats(meta: pq.FileMetaData, schema: pa.Schema) -> dict[str, Any]:
    """Delta file statistics from a Parquet footer: rows, null counts, exact minima/maxima.

    Minima and maxima only for integers, dates and strings whose footer values are exact;
    a column without them is read, never skipped, so leaving one out is always safe.
    """
    nulls: dict[str, int] = {}
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    for i, field in enumerate(schema):
        chunks = [meta.row_group(g).column(i).statistics for g in range(meta.num_row_groups)]
        if not chunks or any(c is None or not c.has_null_count for c in chunks):
            continue
        nulls[field.name] = sum(c.null_count for c in chunks)
        ranged = [c for c in chunks if c.has_min_max]
        kind_ok = (pa.types.is_integer(field.type) or pa.types.is_date32(field.type)
                   or pa.types.is_string(field.type))
        if not kind_ok or not ranged or any(
                not (getattr(c, "is_min_value_exact", True) and getattr(c, "is_max_value_exact", True))
                for c in ranged):
            continue
        low, high = min(c.min for c in ranged), max(c.max for c in ranged)
        lows[field.name] = low.isoformat() if pa.types.is_date32(field.type) else low
        highs[field.name] = high.isoformat() if pa.types.is_date32(field.type) else high
    return {"numRecords": meta.num_rows, "minValues": lows, "maxValues": highs,
            "nullCount": nulls}
