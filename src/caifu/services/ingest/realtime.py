"""The real-time path: chat messages and APP events in, features and tags updated in seconds.

    submit ──► event_inbox (SoR, durable, status pending | rejected)
                    │  micro-batch (``process``; the service runs it in a loop)
                    ▼
    claim a batch ─► append to the lake (idempotent by batch id) ─► recompute the affected
    customers with the build's own code ─► one SoR transaction: serving profiles, tag
    assignments and history, inbox rows applied

Every submitted event is accounted for: ``applied``, ``duplicate`` (its key is already in the
lake or earlier in the batch) or ``rejected`` with ``column:RULE`` reasons — the payload is
kept as received in every case. A crash at any point leaves claimed events pending under
their batch id; the next ``process`` finishes that batch first, and the lake append is
skipped if its commit already happened.

An incremental update recomputes the whole profile of each affected customer with
``Build.compute`` restricted to those customers, so it yields what a full rebuild yields for
them — a test compares the two on the demo broker.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import func, select, update

from caifu.adapters.lake.delta import LINEAGE_COLUMN
from caifu.adapters.sor.models import CONTRACT_TABLES, event_inbox
from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.core.errors import ConfigError
from caifu.data.contracts import Table, registry
from caifu.data.contracts.arrow import contract_schema
from caifu.data.contracts.rows import check_record
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles import tag_definitions
from caifu.services.profiles.build import (
    FEATURE_TABLE,
    TAG_TABLE,
    Build,
    BuildResult,
    tag_table,
    utc_offset_hours,
)

log = logging.getLogger(__name__)
KINDS = {"chat_message": "chat_messages", "app_event": "app_events"}
TIME_COLUMN = {"chat_messages": "msg_time", "app_events": "event_time"}
MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass
class Submitted:
    event_seq: int
    status: str  # pending | rejected
    reasons: list[str] = field(default_factory=list)


@dataclass
class Processed:
    batch_id: str | None = None
    applied: int = 0
    duplicates: int = 0
    customers: int = 0
    as_of: dt.date | None = None
    latencies: list[float] = field(default_factory=list)  # seconds, received → applied
    tags: BuildResult | None = None
    snapshot_merged: bool = False


class Events:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.build = Build(container)
        self._lock = threading.Lock()

    # --- intake ------------------------------------------------------------------------

    def submit(self, tenant: str, kind: str, payload: Mapping[str, Any] | str) -> Submitted:
        return self.submit_many(tenant, kind, [payload])[0]

    def submit_many(self, tenant: str, kind: str,
                    payloads: Sequence[Mapping[str, Any] | str]) -> list[Submitted]:
        """Check and store events; a bad one is stored as rejected, never dropped."""
        if kind not in KINDS:
            raise ConfigError(f"unknown event kind {kind!r}; use one of {', '.join(KINDS)}")
        contract = registry()[KINDS[kind]]
        tz = get_tenant(self.c, tenant).timezone
        now = self.c.clock.now()
        offset = dt.timedelta(hours=utc_offset_hours(tz, now.date()))
        checked = [self._check(contract, p, offset, now) for p in payloads]
        self._check_references(tenant, contract, checked)
        checked = self._drop_restricted(tenant, checked)
        out: list[Submitted] = []
        with self.c.engine.begin() as conn:
            for raw, _row, reasons in checked:
                status = "rejected" if reasons else "pending"
                seq = conn.execute(event_inbox.insert().values(
                    # a NUL kept visible, not stored: PostgreSQL text cannot hold one
                    tenant_id=tenant, kind=kind, payload_json=raw.replace("\x00", "\\u0000"),
                    received_at=now,
                    status=status, reasons=";".join(reasons) or None)).inserted_primary_key
                assert seq is not None
                out.append(Submitted(int(seq[0]), status, reasons))
        return out

    def _drop_restricted(self, tenant: str, checked: list[tuple[str, dict[str, Any], list[str]]]
                         ) -> list[tuple[str, dict[str, Any], list[str]]]:
        """An event of a storage-only customer (``services/privacy``) is refused and counted,
        and its content is not kept: he asked for his data to be erased."""
        from caifu.services.compliance.privacy import restricted_ids

        if not any(row.get("customer_id") for _, row, _ in checked):
            return checked
        restricted = restricted_ids(self.c, tenant)
        out = []
        for raw, row, reasons in checked:
            cid = row.get("customer_id")
            if cid is not None and cid in restricted:
                raw = json.dumps({"customer_id": cid, "content": "not kept: storage only"},
                                 ensure_ascii=False)
                reasons = [*reasons, "customer_id:PROCESSING_RESTRICTED"]
            out.append((raw, row, reasons))
        return out

    def _check(self, contract: Table, payload: Mapping[str, Any] | str, offset: dt.timedelta,
               now: dt.datetime) -> tuple[str, dict[str, Any], list[str]]:
        if isinstance(payload, str):
            raw = payload
            if len(raw.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
                return _storable(raw[:1000]), {}, [
                    f"payload:TOO_LARGE(>{MAX_PAYLOAD_BYTES} bytes)"]
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                return _storable(raw), {}, [f"payload:NOT_JSON({exc.msg} at char {exc.pos})"]
            if not isinstance(parsed, dict):
                return _storable(raw), {}, ["payload:NOT_AN_OBJECT"]
        else:
            parsed = dict(payload)
            raw = json.dumps(parsed, ensure_ascii=False, default=str)
            if len(raw.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
                return _storable(raw[:1000]), {}, [
                    f"payload:TOO_LARGE(>{MAX_PAYLOAD_BYTES} bytes)"]
        unicode = _lone_surrogates(parsed)
        if unicode:  # no UTF-8 text holds the value: rejected, kept as the same JSON
            return _storable(raw), {}, unicode
        row, reasons = check_record(contract, parsed, utc_offset=offset, now=now)
        return raw, row, reasons

    def _check_references(self, tenant: str, contract: Table,
                          checked: list[tuple[str, dict[str, Any], list[str]]]) -> None:
        for col, ref_table, ref_col in contract.refs:
            wanted = {row[col.name] for _, row, reasons in checked
                      if not reasons and row.get(col.name) is not None}
            if not wanted:
                continue
            t = CONTRACT_TABLES[ref_table]
            found: set[str] = set()
            values = sorted(wanted)
            with self.c.engine.connect() as conn:
                for i in range(0, len(values), 500):
                    found |= set(conn.execute(select(t.c[ref_col]).where(
                        t.c.tenant_id == tenant, t.c[ref_col].in_(values[i:i + 500]))).scalars())
            for _, row, reasons in checked:
                value = row.get(col.name)
                if not reasons and value is not None and value not in found:
                    reasons.append(f"{col.name}:UNKNOWN_REF")

    # --- micro-batches -----------------------------------------------------------------

    def pending(self, tenant: str) -> int:
        with self.c.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(event_inbox).where(
                event_inbox.c.tenant_id == tenant, event_inbox.c.status == "pending")).scalar()
                or 0)

    def _claim(self, tenant: str, limit: int) -> tuple[str | None, list[dict[str, Any]]]:
        """Events of an unfinished batch, else the oldest pending events under a new batch."""
        e = event_inbox
        cols = (e.c.event_seq, e.c.kind, e.c.payload_json, e.c.received_at, e.c.batch_id)
        with self.c.engine.begin() as conn:
            unfinished = conn.execute(select(*cols).where(
                e.c.tenant_id == tenant, e.c.status == "pending", e.c.batch_id.is_not(None))
                .order_by(e.c.event_seq)).all()
            if unfinished:
                batch = unfinished[0].batch_id
                return batch, [dict(r._mapping) for r in unfinished if r.batch_id == batch]
            rows = conn.execute(select(*cols).where(
                e.c.tenant_id == tenant, e.c.status == "pending")
                .order_by(e.c.event_seq).limit(limit)).all()
            if not rows:
                return None, []
            batch = f"rt-{rows[0].event_seq}-{rows[-1].event_seq}"
            seqs = [r.event_seq for r in rows]
            for i in range(0, len(seqs), 500):  # exactly the rows read, not a range
                conn.execute(update(e).where(e.c.tenant_id == tenant,
                                             e.c.event_seq.in_(seqs[i:i + 500]))
                             .values(batch_id=batch))
            return batch, [dict(r._mapping) for r in rows]

    def process(self, tenant: str, limit: int = 5000) -> Processed:
        """Apply one micro-batch of pending events (at most ``limit``).

        The tenant's ``serving`` lock (shared with builds, across processes) makes one
        micro-batch at a time the rule, so a claimed batch is never worked on twice.
        """
        with self._lock, self.c.lock(tenant, "serving"):
            batch, events = self._claim(tenant, limit)
            if batch is None:
                return Processed()
            return self._apply(tenant, batch, events)

    def _apply(self, tenant: str, batch: str, events: list[dict[str, Any]]) -> Processed:
        tz = get_tenant(self.c, tenant).timezone
        now = self.c.clock.now()
        offset = dt.timedelta(hours=utc_offset_hours(tz, now.date()))
        reg = registry()
        result = Processed(batch_id=batch)
        status: dict[int, str] = {}
        affected: set[str] = set()
        newest: dt.datetime | None = None
        for kind, table in KINDS.items():
            contract = reg[table]
            mine = [ev for ev in events if ev["kind"] == kind]
            if not mine:
                continue
            rows = [check_record(contract, json.loads(ev["payload_json"]), utc_offset=offset,
                                 now=ev["received_at"])[0] for ev in mine]
            key = contract.key[0]
            stored = self._stored_keys(tenant, table, [r[key] for r in rows], batch)
            fresh: list[dict[str, Any]] = []
            seen: set[str] = set()
            for ev, row in zip(mine, rows, strict=True):
                if row[key] in stored or row[key] in seen:
                    status[ev["event_seq"]] = "duplicate"
                    continue
                seen.add(row[key])
                fresh.append(row)
                status[ev["event_seq"]] = "applied"
                if row.get("customer_id"):
                    affected.add(row["customer_id"])
                ts = row[TIME_COLUMN[table]]
                newest = ts if newest is None or ts > newest else newest
            if fresh:
                with self.c.lock(tenant, table):  # the lock ingest takes for this table
                    if batch not in self.c.lake.committed_batches(tenant, table):
                        data = pa.Table.from_pylist(fresh, schema=contract_schema(contract))
                        data = data.append_column(LINEAGE_COLUMN,
                                                  pa.array([batch] * len(fresh)))
                        self.c.lake.append(tenant, contract, data, batch)
        result.applied = sum(s == "applied" for s in status.values())
        result.duplicates = sum(s == "duplicate" for s in status.values())
        customers = sorted(affected)
        result.customers = len(customers)
        tag_result = self._recompute(tenant, tz, customers, newest) if customers else None
        applied_at = self.c.clock.now()
        with self.c.engine.begin() as conn:
            if tag_result is not None:
                features, hits, definitions, as_of, build_result = tag_result
                self.build.write_serving(conn, tenant, as_of, features, hits, definitions,
                                         build_result, customers=customers)
                result.as_of, result.tags = as_of, build_result
            for seq, st in status.items():
                # the payload now lives in the lake (or did already, for a duplicate): the
                # inbox keeps no second copy of personal data
                conn.execute(update(event_inbox).where(event_inbox.c.tenant_id == tenant,
                                                       event_inbox.c.event_seq == seq)
                             .values(status=st, applied_at=applied_at, payload_json=""))
        if tag_result is not None:
            # the lake snapshots of that date follow; a crash here leaves them behind until
            # the next build, while the serving rows (the real-time truth) are committed
            features, hits, _, as_of, _ = tag_result
            meta = {"caifu.as_of": as_of.isoformat(), "caifu.batch": batch}
            result.snapshot_merged = self.c.lake.merge_snapshot(
                tenant, FEATURE_TABLE, features, ("customer_id", "as_of"), as_of.isoformat(),
                customers, meta)
            self.c.lake.merge_snapshot(tenant, TAG_TABLE, tag_table(as_of, hits),
                                       ("customer_id", "tag_id", "as_of"), as_of.isoformat(),
                                       customers, meta)
        result.latencies = [(applied_at - ev["received_at"]).total_seconds() for ev in events]
        return result

    def _stored_keys(self, tenant: str, table: str, keys: list[str], batch: str) -> set[str]:
        """Keys already in the lake from other batches (a resumed batch finds its own)."""
        files = self.c.lake.files(tenant, table)
        if not files or not keys:
            return set()
        key = registry()[table].key[0]
        with self.c.job_session("duckdb", "rt-keys") as s:
            t = s.read_parquet("facts", files)
            hit = s.to_arrow(t.filter(t[key].isin(sorted(set(keys)))
                                      & (t[LINEAGE_COLUMN] != batch)).select(key))
        return set(hit[key].to_pylist())

    def _recompute(self, tenant: str, tz: str, customers: list[str],
                   newest: dt.datetime | None) -> tuple[Any, ...]:
        definitions, source = tag_definitions.load_definitions(self.c, tenant)
        tag_definitions.register_versions(self.c, tenant, definitions, source)
        with self.c.engine.connect() as conn:
            served = profiles_repo.serving_as_of(conn, tenant)
        local_newest = None
        if newest is not None:
            local_newest = (newest + dt.timedelta(hours=utc_offset_hours(tz, newest.date()))
                            ).date()
        candidates = [d for d in (served, local_newest) if d is not None]
        as_of = max(candidates) if candidates else dt.datetime.now(ZoneInfo(tz)).date()
        offset = utc_offset_hours(tz, as_of)
        with self.c.job_session("duckdb", f"rt-{tenant}") as s:
            inputs = self.build.load_inputs(s, tenant, customers)
            features, hits, notes = self.build.compute(s, tenant, inputs, definitions,
                                                       as_of, offset, customers)
        result = BuildResult(tenant, as_of, "duckdb", customers=features.num_rows, notes=notes)
        return features, hits, definitions, as_of, result

    def pending_tenants(self) -> list[str]:
        with self.c.engine.connect() as conn:
            return sorted(conn.execute(select(event_inbox.c.tenant_id).where(
                event_inbox.c.status == "pending").distinct()).scalars())

    def run_worker(self, stop: threading.Event, tenant: str | None = None,
                   poll_seconds: float = 0.2, max_backoff: float = 30.0) -> None:
        """Process micro-batches until ``stop`` is set — of one tenant, or (``None``) of
        every tenant with pending events, in turn (the service runs this in a thread).

        A failing batch (a busy database, a configuration error) stays pending under its
        batch id and its tenant is retried with a growing pause; the others go on. The
        error is logged each time.
        """
        backoff: dict[str, float] = {}
        not_before: dict[str, float] = {}
        while not stop.is_set():
            busy = False
            try:
                tenants = [tenant] if tenant is not None else self.pending_tenants()
            except Exception:  # the database away for a moment: keep polling
                log.exception("real-time worker cannot list pending events")
                tenants = []
            for t in tenants:
                if stop.is_set() or time.monotonic() < not_before.get(t, 0.0):
                    continue
                try:
                    busy |= self.process(t).batch_id is not None
                    backoff.pop(t, None)
                except Exception:  # the worker must outlive one bad batch; it is logged
                    wait = backoff.get(t, poll_seconds)
                    log.exception("real-time batch for tenant %s failed; retrying in %.1f s",
                                  t, wait)
                    not_before[t] = time.monotonic() + wait
                    backoff[t] = min(wait * 2, max_backoff)
            if not busy:
                stop.wait(poll_seconds)


def _encodes(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lone_surrogates(parsed: Mapping[str, Any]) -> list[str]:
    """``field:INVALID_UNICODE`` for each field whose name or value holds a lone surrogate
    (JSON ``"\ud800"``): valid JSON, but no UTF-8 text — no database column takes it."""
    return [f"{_storable(str(k))}:INVALID_UNICODE(lone surrogate)"
            for k, v in parsed.items() if not (_encodes(k) and _encodes(v))]


def _storable(text: str) -> str:
    """``text`` with each lone surrogate as its JSON escape (``\ud800``): inside a JSON
    string that is the same value, and it is UTF-8 text."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def inbox_counts(c: Container, tenant: str) -> dict[str, int]:
    e = event_inbox
    with c.engine.connect() as conn:
        rows = conn.execute(select(e.c.status, func.count()).where(e.c.tenant_id == tenant)
                            .group_by(e.c.status)).all()
    return {r[0]: int(r[1]) for r in rows}


def rejected(c: Container, tenant: str, limit: int = 50) -> list[dict[str, Any]]:
    e = event_inbox
    with c.engine.connect() as conn:
        rows = conn.execute(select(e.c.event_seq, e.c.kind, e.c.reasons, e.c.payload_json,
                                   e.c.received_at)
                            .where(e.c.tenant_id == tenant, e.c.status == "rejected")
                            .order_by(e.c.event_seq.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]
