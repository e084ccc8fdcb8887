"""Data-subject requests (PIPL): export a customer's data; erase it, or keep it "storage only".

Where a customer's data lives is discovered, not listed: every SoR table with a
``customer_id`` column (read from the live database, so a table a migration adds is covered),
every lake table whose schema has one, and raw payloads naming him (real-time inbox, ingest
quarantine). Both requests are audited before anything is read or changed and recorded in
``dsr_requests`` (``completed_at`` empty while in progress).

Erasure decides by rule (docs/privacy.md): account and trade records are kept ≥ 20 years, so
a customer with an account, suitability assessment, trades, positions, cash flows or fund
transactions whose account is open or closed ≤ 20 years ago becomes **storage only** — those
records stay, he joins ``restricted_customers`` (hidden from all but compliance, skipped by
builds), everything else goes. Otherwise he is **deleted** everywhere. ``dsr_requests`` and the
append-only audit log stay. Uploads still waiting for their ingest job that name him are
removed. Lake rows go in a new Delta version and the log is cut back to a checkpoint, so old
commits' column statistics keep nothing of him; the data files the new version replaced stay
readable for readers that took their file list earlier and are deleted by the first
``retire_files`` at least ``Lake.retire_after`` (24 h) later — the request records when they
are due and when they were gone (``details.retirement``).

Each step is idempotent and the decision is stored before the first deletion: a crashed
erasure is completed by running the same request again — it resumes the unfinished request
with its decision (even once the accounts behind it are gone) and redoes every step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, MetaData, Table, and_, delete, func, insert, inspect, select
from sqlalchemy import update as sql_update

from caifu.adapters.sor.models import dsr_requests, event_inbox
from caifu.adapters.sor.models import restricted_customers as restricted_t
from caifu.adapters.sor.repos.risk import alert_view
from caifu.adapters.sor.schema import metadata
from caifu.core.errors import ConfigError, NotFoundError
from caifu.pipelines.profile import ProfileInputs
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.ingest.uploads import erase_uploads
from caifu.services.platform.workspace import get_tenant

RETENTION_YEARS = 20
LEGAL_BASIS = ("《证券法》《证券公司监督管理条例》：客户开户资料、委托记录、交易记录保存期限不少于20年；"
               "《证券期货投资者适当性管理办法》：适当性记录保存不少于20年（docs/privacy.md）")
# The regulated records storage-only keeps; every other table holding the customer is erased.
REGULATED = frozenset({"customers", "accounts", "suitability_assessments",  # system of record
                       "trades", "positions", "cash_flows", "fund_transactions"})  # lake
REQUEST_RECORDS = frozenset({"dsr_requests"})  # the proof the request was handled: never erased
PAYLOADS = {"event_inbox": "payload_json", "ingest_quarantine": "raw_json"}  # raw rows, no column
# a customer regulated-record check reads these; the lake ones with a predicate
_SOR_REGULATED = ("accounts", "suitability_assessments")
_LAKE_REGULATED = ("trades", "positions", "cash_flows", "fund_transactions")


@dataclasses.dataclass
class ErasureResult:
    request_id: str
    customer_id: str
    outcome: str  # deleted | storage_only
    rule: str
    deleted: dict[str, int]  # "sor.x" / "lake.x" -> rows erased, over every run of the request
    kept: dict[str, int]  # regulated rows kept (storage only)
    resumed: bool = False
    deferred: list[str] = dataclasses.field(default_factory=list)
    uploads_removed: list[str] = dataclasses.field(default_factory=list)
    old_files: int = 0  # lake files that held his rows, still there for running readers
    old_files_removed_by: str | None = None  # UTC: the first retirement from then removes them


# --- where a customer's data lives -----------------------------------------------------------

def sor_customer_tables(conn: Connection) -> list[str]:
    """System-of-record tables with ``tenant_id`` and ``customer_id`` columns, in the database."""
    insp = inspect(conn)
    return sorted(t for t in insp.get_table_names()
                  if {"tenant_id", "customer_id"} <= {c["name"] for c in insp.get_columns(t)})


def _table(conn: Connection, name: str) -> Table:
    # as the database has it, not as this process's models say: every column is read, one
    # a migration added included (money arrives as text on SQLite, exact either way)
    return Table(name, MetaData(), autoload_with=conn)


def _customer_rows(conn: Connection, tenant: str, name: str, customer_id: str) -> list[Any]:
    """The customer's rows of ``name`` as its readers see them: a risk alert with its
    evidence and message, which are stored once for many alerts (``alert_view``)."""
    t = _table(conn, name)
    source: Any = t
    columns: list[Any] = list(t.c)
    if name == "risk_alerts":
        source, columns = alert_view(t, _table(conn, "risk_alert_evidence"),
                                     _table(conn, "risk_alert_messages"))
    return list(conn.execute(select(*columns).select_from(source).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id)))


def lake_customer_tables(c: Container, tenant: str, with_data: bool = True) -> list[str]:
    """Lake tables of the tenant with a ``customer_id`` column (and, by default, data)."""
    return [t for t in c.lake.tables_with(tenant, "customer_id")
            if not with_data or c.lake.files(tenant, t)]


def restricted_ids(c: Container, tenant: str) -> set[str]:
    """Storage-only customers of the tenant: kept by law, no longer processed."""
    with c.engine.connect() as conn:
        return set(conn.execute(select(restricted_t.c.customer_id)
                                .where(restricted_t.c.tenant_id == tenant)).scalars())


def without_restricted(c: Container, tenant: str, inputs: ProfileInputs) -> ProfileInputs:
    """``inputs`` without storage-only customers' rows — what every build and job reads."""
    ids = sorted(restricted_ids(c, tenant))
    if not ids:
        return inputs

    def drop(t: Any) -> Any:
        return None if t is None else t.filter(~t.customer_id.isin(ids))

    owned = {f.name: drop(getattr(inputs, f.name)) for f in dataclasses.fields(inputs)
             if f.name not in ("securities", "fund_products", "market_positions",
                               "market_fund_transactions")}
    # snapshot dates and fund NAVs are market facts: they stay computed from every row
    return dataclasses.replace(
        inputs, **owned,
        market_positions=inputs.positions if inputs.market_positions is None
        else inputs.market_positions,
        market_fund_transactions=inputs.fund_transactions
        if inputs.market_fund_transactions is None else inputs.market_fund_transactions)


def _names(raw: str, customer_id: str) -> bool:
    """Whether a raw payload names the customer: a JSON value equal to his id, or (not JSON)
    his id as a whole token."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return re.search(rf"(?<![\w-]){re.escape(customer_id)}(?![\w-])", raw) is not None

    def walk(v: Any) -> bool:
        parts = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        return any(map(walk, parts)) if parts is not None else \
            isinstance(v, str | int) and str(v) == customer_id

    return walk(doc)


def _payload_rows(conn: Connection, tenant: str, table: Table, column: str,
                  customer_id: str) -> list[Any]:
    escaped = customer_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(select(table).where(
        table.c.tenant_id == tenant, table.c[column].like(f"%{escaped}%", escape="\\"))).all()
    return [r for r in rows if _names(r._mapping[column], customer_id)]


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dt.date | dt.datetime | dt.time):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _row(mapping: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in mapping.items() if k != "tenant_id"}


def _lake_rows(c: Container, con: Any, tenant: str, table: str, customer_id: str) -> list[Any]:
    t = c.lake_table(con, tenant, table)
    # a predicate DuckDB pushes into the Parquet row groups: trades are never read whole
    return [] if t is None else t.filter(t.customer_id == customer_id).to_pyarrow().to_pylist()


# --- export ----------------------------------------------------------------------------------

def export_customer(c: Container, tenant: str, customer_id: str, actor: str,
                    reason: str) -> dict[str, Any]:
    """Everything stored about the customer, unmasked (it is his own data), with a manifest."""
    get_tenant(c, tenant)
    _need_reason(reason)
    with c.engine.connect() as conn:
        sor_tables = sor_customer_tables(conn)
        if not _master(conn, tenant, customer_id):
            raise NotFoundError(f"no customer {customer_id!r}")
    lake_tables = lake_customer_tables(c, tenant)
    request_id, received = uuid.uuid4().hex, c.clock.now()
    fields = [f"sor.{t}" for t in (*sor_tables, *PAYLOADS, "audit_log")] + \
             [f"lake.{t}" for t in lake_tables]
    audit.append(c, tenant, actor, "export", customer_ids=[customer_id], fields=fields,
                 reason=reason, request_id=request_id)  # recorded first: no unaudited read
    _record(c, tenant, request_id, customer_id, "export", "exported", actor, reason, received,
            {"tables": fields})
    doc: dict[str, Any] = {"request_id": request_id, "tenant_id": tenant,
                           "customer_id": customer_id, "exported_at": received.isoformat(),
                           "sor": {}, "lake": {}}
    with c.engine.connect() as conn:
        for name in sor_tables:
            doc["sor"][name] = [_row(r._mapping)
                                for r in _customer_rows(conn, tenant, name, customer_id)]
        for name, column in PAYLOADS.items():
            t = _table(conn, name)
            doc["sor"][name] = [_row(r._mapping)
                                for r in _payload_rows(conn, tenant, t, column, customer_id)]
        # who read or changed his data, and why: the audit records naming him
        doc["sor"]["audit_log"] = [_row(r._mapping) for r in _payload_rows(
            conn, tenant, _table(conn, "audit_log"), "customer_ids_json", customer_id)]
    with c.scratch(f"dsr-{request_id}") as scratch:
        con = c.duckdb(scratch)
        try:
            for name in lake_tables:
                doc["lake"][name] = [{k: _plain(v) for k, v in r.items()}
                                     for r in _lake_rows(c, con, tenant, name, customer_id)]
        finally:
            con.disconnect()
    doc["manifest"] = {f"{store}.{name}": len(rows)
                       for store in ("sor", "lake") for name, rows in doc[store].items()}
    _finish(c, tenant, request_id, {"tables": fields, "manifest": doc["manifest"]})
    return doc


# --- erasure ---------------------------------------------------------------------------------

def erase_customer(c: Container, tenant: str, customer_id: str, actor: str, reason: str,
                   today: dt.date | None = None) -> ErasureResult:
    """Erase the customer, or make him storage only where the retention rule applies."""
    get_tenant(c, tenant)
    _need_reason(reason)
    today = today or dt.date.today()
    retire_files(c, tenant)  # earlier erasures' files whose readers are done
    with c.engine.connect() as conn:
        pending = conn.execute(select(dsr_requests).where(
            dsr_requests.c.tenant_id == tenant, dsr_requests.c.customer_id == customer_id,
            dsr_requests.c.kind == "erasure", dsr_requests.c.completed_at.is_(None))
            .order_by(dsr_requests.c.received_at)).first()
    resumed = pending is not None
    if pending is not None:  # finish what a crashed run began, with its decision
        request_id, details = pending.request_id, json.loads(pending.details_json)
    else:
        request_id, details = uuid.uuid4().hex, _decide(c, tenant, customer_id, today)
    audit.append(c, tenant, actor, "delete_request", customer_ids=[customer_id],
                 fields=[details["outcome"]], reason=reason, request_id=request_id)
    if pending is None:
        _record(c, tenant, request_id, customer_id, "erasure", details["outcome"], actor,
                reason, c.clock.now(), details)
    storage_only = details["outcome"] == "storage_only"
    with c.lock(tenant, "serving"):  # no build or micro-batch between deciding and erasing
        with c.engine.begin() as conn:
            if storage_only and not conn.execute(select(restricted_t.c.customer_id).where(
                    restricted_t.c.tenant_id == tenant,
                    restricted_t.c.customer_id == customer_id)).first():
                conn.execute(insert(restricted_t).values(
                    tenant_id=tenant, customer_id=customer_id, since=c.clock.now(),
                    request_id=request_id, legal_basis=LEGAL_BASIS))
            counts = _erase_sor(conn, tenant, customer_id, storage_only)
            details = _add_counts(conn, tenant, request_id, counts)
        removed = erase_uploads(c, tenant, customer_id)
        details["uploads_removed"] = sorted({*details.get("uploads_removed", []), *removed})
        _finish(c, tenant, request_id, details, complete=False)  # stored: the lake steps reread
        deferred = []
        with c.scratch(f"dsr-{request_id}") as scratch:
            con = c.duckdb(scratch)
            # tables without data too: a crash may have left one emptied but not vacuumed
            for name in lake_customer_tables(c, tenant, with_data=False):
                if storage_only and name in REGULATED:
                    continue
                with c.lock(tenant, name):  # the lock the table's writers take
                    gone = _erase_lake(c, con, tenant, name, customer_id, clean=resumed)
                    c.lake.mark_unreferenced(tenant, name, request_id)
                    with c.engine.begin() as conn:
                        details = _add_counts(conn, tenant, request_id, {f"lake.{name}": gone})
                        stuck = bool(gone or resumed) and _in_flight(conn, tenant, name)
                    if stuck:  # the request stays open; running it again finishes the job
                        deferred.append(name)
                    elif gone or resumed:
                        c.lake.drop_history(tenant, name)
            con.disconnect()
    details["deferred"] = deferred
    details["retirement"] = _retirement(c, tenant, request_id)
    _finish(c, tenant, request_id, details, complete=not deferred)
    return ErasureResult(request_id, customer_id, details["outcome"], details["rule"],
                         details["deleted"], details["kept"], resumed, deferred,
                         details["uploads_removed"], details["retirement"]["files"],
                         details["retirement"]["due_at"])


def _retirement(c: Container, tenant: str, request_id: str) -> dict[str, Any]:
    """The request's lake files waiting for retirement: how many, and when they are due."""
    since = [dt.datetime.fromisoformat(e["since"]) for name in c.lake.retiring(tenant)
             for e in c.lake.ledger(tenant, name) if e["request"] == request_id]
    if not since:
        return {"files": 0, "due_at": None, "removed_at": c.clock.now().isoformat()}
    return {"files": len(since), "due_at": (max(since) + c.lake.retire_after).isoformat(),
            "removed_at": None}


def retire_files(c: Container, tenant: str, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete the lake files erasures (and rewrites) replaced once ``Lake.retire_after`` has
    passed, and note on each erasure request whose files are all gone when that was.
    Run by every erasure and by ``caifu privacy retire`` (schedule it daily)."""
    now = now or c.clock.now()
    removed, waiting_for = 0, set[str]()
    for name in c.lake.retiring(tenant):
        with c.lock(tenant, name):  # no writer adds to the ledger meanwhile
            done, waiting = c.lake.retire(tenant, name, now)
        removed += len(done)
        waiting_for.update(e["request"] for e in waiting)
    waiting_n = sum(len(c.lake.ledger(tenant, n)) for n in c.lake.retiring(tenant))
    with c.engine.begin() as conn:
        for r in conn.execute(select(dsr_requests.c.request_id, dsr_requests.c.details_json)
                              .where(dsr_requests.c.tenant_id == tenant,
                                     dsr_requests.c.kind == "erasure")).all():
            details = json.loads(r.details_json)
            step = details.get("retirement")
            if step and step["removed_at"] is None and r.request_id not in waiting_for:
                step["removed_at"] = now.isoformat()
                conn.execute(sql_update(dsr_requests).where(
                    dsr_requests.c.tenant_id == tenant,
                    dsr_requests.c.request_id == r.request_id).values(
                    details_json=json.dumps(details, ensure_ascii=False)))
    return {"removed": removed, "waiting": waiting_n}


def _decide(c: Container, tenant: str, customer_id: str, today: dt.date) -> dict[str, Any]:
    kept: dict[str, int] = {}
    with c.engine.connect() as conn:
        master = _master(conn, tenant, customer_id)
        for name in _SOR_REGULATED:
            t = metadata.tables[name]
            kept[f"sor.{name}"] = conn.execute(select(func.count()).select_from(t).where(
                t.c.tenant_id == tenant, t.c.customer_id == customer_id)).scalar_one()
        anything = master is not None or any(_count_sor(conn, tenant, n, customer_id)
                                              for n in sor_customer_tables(conn)
                                              if n not in REQUEST_RECORDS)
        erased_before = conn.execute(select(dsr_requests.c.request_id).where(
            dsr_requests.c.tenant_id == tenant, dsr_requests.c.customer_id == customer_id,
            dsr_requests.c.kind == "erasure", dsr_requests.c.outcome == "deleted")).first()
    lake = lake_customer_tables(c, tenant)
    with c.scratch(f"dsr-decide-{uuid.uuid4().hex}") as scratch:
        con = c.duckdb(scratch)
        try:
            counts = {n: int(t.filter(t.customer_id == customer_id).count().execute())
                      for n in lake if (t := c.lake_table(con, tenant, n)) is not None}
        finally:
            con.disconnect()
    kept.update({f"lake.{n}": counts.get(n, 0) for n in _LAKE_REGULATED})
    if not anything and not any(counts.values()):
        if erased_before is None:
            raise NotFoundError(f"no customer {customer_id!r}")
        # asked again after a completed deletion: recorded, and nothing is left to do
        return {"outcome": "deleted", "rule": "deleted: nothing left, erased by request "
                f"{erased_before.request_id}", "closed_on": None, "retained_until": None,
                "kept": {}, "deleted": {}}
    closed = master.closed_on if master is not None else None
    until = _years_after(closed, RETENTION_YEARS) if closed else None
    regulated = {k: n for k, n in kept.items() if n}
    kept["sor.customers"] = 1 if master is not None else 0
    if regulated and (until is None or today <= until):
        rule = (f"storage_only: regulated records {regulated}; "
                + (f"closed on {closed}, kept until {until}" if until else "account open")
                + f" — {LEGAL_BASIS}")
        outcome = "storage_only"
    else:
        outcome, kept = "deleted", {}
        rule = (f"deleted: closed on {closed}, more than {RETENTION_YEARS} years before {today}"
                if regulated else "deleted: no account or trade records under retention")
    return {"outcome": outcome, "rule": rule, "closed_on": _plain(closed),
            "retained_until": _plain(until), "kept": kept, "deleted": {}}


def _erase_sor(conn: Connection, tenant: str, customer_id: str,
               storage_only: bool) -> dict[str, int]:
    counts = {}
    for name in sor_customer_tables(conn):
        if name in REQUEST_RECORDS or (storage_only and name in REGULATED | {"restricted_customers"}):
            continue
        t = _table(conn, name)
        counts[f"sor.{name}"] = conn.execute(delete(t).where(
            t.c.tenant_id == tenant, t.c.customer_id == customer_id)).rowcount
    for name, column in PAYLOADS.items():
        t = _table(conn, name)
        rows = _payload_rows(conn, tenant, t, column, customer_id)
        keys = [c for c in t.primary_key.columns if c.name != "tenant_id"]
        for r in rows:
            conn.execute(delete(t).where(t.c.tenant_id == tenant,
                                         *(k == r._mapping[k.name] for k in keys)))
        counts[f"sor.{name}"] = len(rows)
    return counts


def _erase_lake(c: Container, con: Any, tenant: str, name: str, customer_id: str,
                clean: bool) -> int:  # noqa: ARG001
    """His rows out of one lake table (a new version; the caller retires the old files);
    how many there were. ``clean`` (a resumed run) needs nothing more here now: the caller
    puts whatever a crashed run replaced on the retirement ledger either way."""
    t = c.lake_table(con, tenant, name)
    gone = 0 if t is None else int(t.filter(t.customer_id == customer_id).count().execute())
    if gone:
        c.lake.erase_rows(tenant, name, "customer_id", customer_id)
    return gone


def _in_flight(conn: Connection, tenant: str, table: str) -> bool:
    """An ingest or a micro-batch that crashed before knowing whether its commit happened
    learns it from the Delta history: cutting the log then would make it append twice."""
    ingest_log = metadata.tables["ingest_log"]
    kinds = {"chat_messages": "chat_message", "app_events": "app_event"}
    stuck = conn.execute(select(func.count()).select_from(ingest_log).where(
        ingest_log.c.tenant_id == tenant, ingest_log.c.table_name == table,
        ingest_log.c.status == "committing")).scalar_one()
    if table in kinds:
        stuck += conn.execute(select(func.count()).select_from(event_inbox).where(
            event_inbox.c.tenant_id == tenant, event_inbox.c.kind == kinds[table],
            event_inbox.c.status == "pending", event_inbox.c.batch_id.is_not(None))).scalar_one()
    return bool(stuck)


# --- the request records ---------------------------------------------------------------------

def _need_reason(reason: str) -> None:
    if not reason.strip():
        raise ConfigError("a data-subject request needs a reason (audited)")


def _master(conn: Connection, tenant: str, customer_id: str) -> Any:
    t = metadata.tables["customers"]
    return conn.execute(select(t.c.customer_id, t.c.closed_on).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id)).first()


def _count_sor(conn: Connection, tenant: str, name: str, customer_id: str) -> int:
    t = _table(conn, name)
    return int(conn.execute(select(func.count()).select_from(t).where(
        t.c.tenant_id == tenant, t.c.customer_id == customer_id)).scalar_one())


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February: the longer of the two readings, 1 March
        return dt.date(day.year + years, 3, 1)


def _record(c: Container, tenant: str, request_id: str, customer_id: str, kind: str,
            outcome: str, actor: str, reason: str, received: dt.datetime,
            details: dict[str, Any]) -> None:
    with c.engine.begin() as conn:
        conn.execute(insert(dsr_requests).values(
            tenant_id=tenant, request_id=request_id, customer_id=customer_id, kind=kind,
            outcome=outcome, requested_by=actor, reason=reason.strip(), received_at=received,
            details_json=json.dumps(details, ensure_ascii=False)))


def _add_counts(conn: Connection, tenant: str, request_id: str,
                counts: dict[str, int]) -> dict[str, Any]:
    key = and_(dsr_requests.c.tenant_id == tenant, dsr_requests.c.request_id == request_id)
    details = json.loads(conn.execute(select(dsr_requests.c.details_json).where(key)).scalar_one())
    for name, n in counts.items():
        details["deleted"][name] = details["deleted"].get(name, 0) + n
    conn.execute(sql_update(dsr_requests).where(key).values(
        details_json=json.dumps(details, ensure_ascii=False)))
    return details  # type: ignore[no-any-return]


def _finish(c: Container, tenant: str, request_id: str, details: dict[str, Any],
            complete: bool = True) -> None:
    with c.engine.begin() as conn:
        conn.execute(sql_update(dsr_requests).where(
            dsr_requests.c.tenant_id == tenant, dsr_requests.c.request_id == request_id)
            .values(details_json=json.dumps(details, ensure_ascii=False),
                    completed_at=c.clock.now() if complete else None))


def list_requests(c: Container, tenant: str, limit: int, offset: int) -> dict[str, Any]:
    """The tenant's data-subject requests, newest first, a page at a time."""
    where = dsr_requests.c.tenant_id == tenant
    with c.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(dsr_requests).where(where)
                             ).scalar_one()
        rows = conn.execute(select(dsr_requests).where(where).order_by(
            dsr_requests.c.received_at.desc(), dsr_requests.c.request_id)
            .limit(limit).offset(offset)).all()
    items = [{**_row(r._mapping), "details": json.loads(r.details_json)} for r in rows]
    for item in items:
        item.pop("details_json")
    return {"total": total, "limit": limit, "offset": offset, "items": items}
