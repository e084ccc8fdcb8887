"""Reading data quality: per-batch history (counts, quarantine rate, nulls, dates),
freshness per table (newest business date and its lag behind the tenant's today), alerts,
and the status the console's quality page and ``caifu quality status`` show.

The quarantine rate over a period is the governed metric ``quarantine_rate``
(``caifu metrics query quarantine_rate --by ingest_table``); here it is per batch.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from caifu.adapters.sor.repos import quality as repo
from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.quality.checks import thresholds, today

STATUSES = ("open", "resolved", "all")


def _table(name: str | None) -> str | None:
    if name is not None and name not in registry():
        raise ConfigError(f"table: no such table {name!r}; tables: "
                          + ", ".join(t.name for t in registry()))
    return name


def history(c: Container, tenant: str, table: str | None = None,
            since: dt.date | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Committed batches, newest first: rows read, loaded, quarantined, duplicates, the
    quarantine rate, the profile's null rate per column and business date range (``None``
    for a batch loaded before profiles existed)."""
    get_tenant(c, tenant)
    if not 1 <= limit <= 10_000:
        raise ConfigError("limit: between 1 and 10000")
    start = dt.datetime.combine(since, dt.time()) if since is not None else None
    with c.engine.connect() as conn:
        rows = repo.history(conn, tenant, _table(table), start, limit)
    out = []
    for r in rows:
        loaded = r["rows_loaded"]
        nulls = json.loads(r["nulls_json"]) if r["nulls_json"] is not None else None
        out.append({
            "batch_id": r["batch_id"], "table": r["table_name"],
            "started_at": r["started_at"], "finished_at": r["finished_at"],
            "rows_in": int(r["rows_in"]), "loaded": int(r["loaded"]),
            "quarantined": int(r["quarantined"]), "duplicates": int(r["duplicates"]),
            "quarantine_rate": r["quarantined"] / r["rows_in"] if r["rows_in"] else 0.0,
            "profiled": loaded is not None,
            "null_counts": nulls,
            "null_rates": ({k: (v / loaded if loaded else 0.0) for k, v in nulls.items()}
                           if nulls is not None else None),
            "date_column": r["date_column"], "oldest_date": r["oldest_date"],
            "newest_date": r["newest_date"],
        })
    return out


def freshness(c: Container, tenant: str) -> list[dict[str, Any]]:
    """Per table loaded at least once: the newest business date written, its lag in
    calendar days behind the tenant's today, the threshold and whether the lag breaks it."""
    get_tenant(c, tenant)
    rules = thresholds(c, tenant)
    day = today(c, tenant)
    with c.engine.connect() as conn:
        seen = repo.newest_dates(conn, tenant)
    out = []
    for t in registry():
        if t.name not in seen:
            continue
        s, r = seen[t.name], rules.of(t.name)
        newest = s["newest_date"]
        lag = (day - newest).days if newest is not None else None
        out.append({"table": t.name, "date_column": r.date_column, "newest_date": newest,
                    "today": day, "lag_days": lag, "max_lag_days": r.max_lag_days,
                    "stale": lag is not None and r.max_lag_days is not None
                    and lag > r.max_lag_days,
                    "last_load": s["last_load"], "batches": s["batches"]})
    return out


def alerts(c: Container, tenant: str, status: str = "open",
           table: str | None = None) -> list[dict[str, Any]]:
    """The tenant's alerts, newest first (``status``: open, resolved or all)."""
    get_tenant(c, tenant)
    if status not in STATUSES:
        raise ConfigError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    with c.engine.connect() as conn:
        return repo.alerts(conn, tenant, None if status == "all" else status, _table(table))


def status(c: Container, tenant: str) -> list[dict[str, Any]]:
    """Per table loaded at least once: the last batch (rows, quarantine rate), the newest
    date and its lag, and the number of open alerts."""
    fresh = {f["table"]: f for f in freshness(c, tenant)}
    with c.engine.connect() as conn:
        open_alerts = repo.alerts(conn, tenant, "open")
        last = {t: repo.history(conn, tenant, t, limit=1) for t in fresh}
    out = []
    for t, f in fresh.items():
        b = last[t][0] if last[t] else None
        out.append({**f,
                    "last_batch": b["batch_id"] if b else None,
                    "last_loaded": int(b["loaded"]) if b else None,
                    "last_rows_in": int(b["rows_in"]) if b else None,
                    "last_quarantine_rate": (b["quarantined"] / b["rows_in"]
                                             if b and b["rows_in"] else 0.0),
                    "open_alerts": sum(1 for a in open_alerts if a["table_name"] == t)})
    return out
