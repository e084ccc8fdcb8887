"""Transitional: the ingest repository moved to ``repos.ingest`` (and the real-time read of a
few customers' rows to ``repos.profiles``). Kept only for ``services/ingest/load.py``, which
another change owns at the moment; delete this module once it imports ``repos.ingest``."""

from caifu.adapters.sor.repos.ingest import (
    add_quarantine,
    finish_log,
    insert_rows,
    keys,
    log_entries,
    pending_batches,
    quarantine_entries,
    record_timings,
    resolve_pending,
    rows,
    sqlite_values,
    start_log,
    update_rows,
)
from caifu.adapters.sor.repos.profiles import rows_of_customers

__all__ = ["add_quarantine", "finish_log", "insert_rows", "keys", "log_entries",
           "pending_batches", "quarantine_entries", "record_timings", "resolve_pending", "rows",
           "rows_of_customers", "sqlite_values", "start_log", "update_rows"]
