"""Background jobs: ingest an uploaded file, build profiles, score, value, lifecycle,
redemption — submitted through the API, run one at a time by the service process.

    queued ──claim──▶ running ──▶ succeeded (result_json) | failed (error)

A job is a row in the system of record before anything runs, so nothing submitted is lost:
a job the service was running when it stopped is marked failed on the next start with the
reason ("interrupted …; submit it again") — the services it calls are atomic per batch or
snapshot, so a rerun is safe. Claiming is a conditional UPDATE, so two workers (or two
service processes by mistake) never run the same job.

The worker runs the same services as the CLI, as the database owner: a job is tenant-bound
by its parameters, not by row-level security (``adapters/sor/rls``), which guards requests.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import func, insert, select, update

from caifu.adapters.sor.models import jobs
from caifu.core.errors import CaifuError, ConfigError, NotFoundError
from caifu.core.tracebacks import frames
from caifu.services.container import Container

log = logging.getLogger("caifu.jobs")

Runner = Callable[[Container, str, dict[str, Any]], dict[str, Any]]


def _as_of(params: dict[str, Any]) -> dt.date | None:
    value = params.get("as_of")
    return dt.date.fromisoformat(value) if value else None


def plain(value: Any, rows: int = 200) -> Any:
    """A service result as JSON: dataclasses → objects, Arrow tables → their first ``rows``
    rows, dates → ISO text."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v, rows) for k, v in asdict(value).items()}
    if isinstance(value, pa.Table):
        return [plain(r, rows) for r in value.slice(0, rows).to_pylist()]
    if isinstance(value, dict):
        return {str(k): plain(v, rows) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v, rows) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return value.name
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)  # Decimal and the like


def _ingest(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    from caifu.services.ingest.load import Ingest

    folder = uploads_dir(c, tenant) / params["upload_id"]
    try:
        results = Ingest(c).ingest(tenant, [folder / params["file"]], table=params.get("table"))
    finally:  # its rows are stored or refused now: personal data no erasure would reach
        shutil.rmtree(folder, ignore_errors=True)
    return {"batches": [{"batch_id": r.batch_id, "table": r.table, "file": r.path.name,
                         "rows_in": r.rows_in, "inserted": r.inserted, "updated": r.updated,
                         "quarantined": r.quarantined, "duplicates": r.duplicates,
                         "reasons": r.reasons} for r in results]}


def _build(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    from caifu.services.profiles.build import Build

    r = Build(c).build(tenant, as_of=_as_of(params))
    return {k: plain(v) for k, v in asdict(r).items()}


def _score(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    from caifu.services.value.scoring import Scoring

    r = Scoring(c).run(tenant, as_of=_as_of(params))
    return {"as_of": r.as_of.isoformat(), "cutoffs": r.cutoffs, "notes": r.notes,
            "targets": [plain(t) for t in r.targets]}


def _value(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    from caifu.services.value.customer_value import CustomerValue

    r = CustomerValue(c).run(tenant, as_of=_as_of(params))
    return {"as_of": r.as_of.isoformat(), "customers": r.customers, "clv": r.clv,
            "efficiency": r.efficiency, "totals": r.totals, "notes": r.notes,
            "unattributed_spend": r.unattributed_spend}


def _lifecycle(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    from caifu.services.profiles.lifecycle import Lifecycle

    r = Lifecycle(c).run(tenant, as_of=_as_of(params))
    return {"as_of": r.as_of.isoformat(), "counts": r.counts, "notes": r.notes,
            "transitions": r.transitions.num_rows}


def _redemption(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    """The four answers, aggregates only (no customer ids: those are the reassurance list,
    served per caller's scope from the advisor tasks the job writes)."""
    from caifu.services.value.redemption import RedemptionAnalysis

    start = dt.date.fromisoformat(params["from"]) if params.get("from") else None
    end = dt.date.fromisoformat(params["to"]) if params.get("to") else None
    analysis = RedemptionAnalysis(c)
    r = analysis.run(tenant, start, end)
    tasks = analysis.write_tasks(r)
    return {"period": plain(r.period), "funds": plain(r.funds, 50),
            "comparison": plain(r.comparison), "holding_summary": plain(r.holding_summary),
            "waves": plain(r.waves), "reassurance_tasks": tasks.num_rows, "notes": r.notes}


def _cards(c: Container, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
    from caifu.services.profiles.cards import Cards

    return dict(Cards(c).build(tenant, as_of=_as_of(params)).plain())


RUNNERS: dict[str, Runner] = {"ingest": _ingest, "build": _build, "score": _score,
                              "value": _value, "lifecycle": _lifecycle,
                              "redemption": _redemption, "cards": _cards}


DATE_PARAMS = ("as_of", "from", "to")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s/,'\"]+)+/([^\s/,'\"]+)")
_QUOTED = re.compile(r"'([^']*)'")
_LONG_RUN = re.compile(r"[^\s'…]{61,}")  # a raw value repeated unquoted (a mapping hint)
EXCERPT_CHARS = 40
ERROR_CHARS = 500


def check_params(params: dict[str, Any]) -> None:
    """Dates as ISO ``YYYY-MM-DD`` text and a period that does not end before it starts —
    checked when the job is submitted, not found when it runs."""
    dates: dict[str, dt.date] = {}
    for name in DATE_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise ConfigError(f"{name}: a date as YYYY-MM-DD text, not {str(value)[:20]!r}")
        try:
            dates[name] = dt.date.fromisoformat(value)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None
    if "from" in dates and "to" in dates and dates["to"] < dates["from"]:
        raise ConfigError(f"to: the period ends ({dates['to']}) before it starts "
                          f"({dates['from']})")


def public_error(message: str, root: Path | None = None) -> str:
    """A job's error as ops may see it: no server paths (a file is named by its name), each
    quoted value (a header cell, say) and any long unbroken run an escaped excerpt of at most
    ``EXCERPT_CHARS``, no control characters, at most ``ERROR_CHARS`` in all."""
    if root is not None:
        message = message.replace(str(root.resolve()), "").replace(str(root), "")
    message = _ABSOLUTE_PATH.sub(lambda m: m.group(1), message)
    message = message.lstrip("/")

    def excerpt(m: re.Match[str]) -> str:
        text = m.group(1)
        if len(text) <= EXCERPT_CHARS:
            return m.group(0)
        return f"'{text[:EXCERPT_CHARS]}…' ({len(text):,} characters)"

    message = _QUOTED.sub(excerpt, message)
    message = _LONG_RUN.sub(lambda m: f"{m.group(0)[:EXCERPT_CHARS]}…", message)
    message = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                      for ch in message)
    return message if len(message) <= ERROR_CHARS else message[:ERROR_CHARS - 1] + "…"


def uploads_dir(c: Container, tenant: str) -> Path:
    return c.root / "uploads" / tenant


def _row(r: Any) -> dict[str, Any]:
    m = dict(r._mapping)
    for k in ("params", "result"):
        raw = m.pop(f"{k}_json")
        m[k] = json.loads(raw) if raw else None
    for k in ("submitted_at", "started_at", "finished_at"):
        m[k] = m[k].isoformat() + "Z" if m[k] else None
    m.pop("tenant_id", None)
    return m


class Jobs:
    def __init__(self, container: Container) -> None:
        self.c = container

    def submit(self, tenant: str, kind: str, params: dict[str, Any], actor: str
               ) -> dict[str, Any]:
        if kind not in RUNNERS:
            raise ConfigError(f"unknown job kind {kind!r}; one of {', '.join(sorted(RUNNERS))}")
        check_params(params)
        job_id = uuid.uuid4().hex[:16]
        with self.c.engine.begin() as conn:
            conn.execute(insert(jobs).values(
                job_id=job_id, tenant_id=tenant, kind=kind,
                params_json=json.dumps(params, ensure_ascii=False), status="queued",
                submitted_by=actor, submitted_at=self.c.clock.now()))
        return self.get(tenant, job_id)

    def get(self, tenant: str, job_id: str) -> dict[str, Any]:
        with self.c.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.tenant_id == tenant,
                                                  jobs.c.job_id == job_id)).first()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return _row(row)

    def list(self, tenant: str, *, kind: str | None = None, status: str | None = None,
             limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        where = [jobs.c.tenant_id == tenant]
        if kind:
            where.append(jobs.c.kind == kind)
        if status:
            where.append(jobs.c.status == status)
        with self.c.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(jobs).where(*where)).scalar()
            rows = conn.execute(select(jobs).where(*where)
                                .order_by(jobs.c.submitted_at.desc(), jobs.c.job_id)
                                .limit(limit).offset(offset)).all()
        return int(total or 0), [_row(r) for r in rows]

    def latest_result(self, tenant: str, kind: str) -> dict[str, Any] | None:
        """The newest succeeded job of ``kind`` (its params, result and finish time)."""
        total, rows = self.list(tenant, kind=kind, status="succeeded", limit=1)
        return rows[0] if total else None

    def recover(self) -> int:
        """Mark jobs left running by a stopped service as failed; returns how many."""
        with self.c.engine.begin() as conn:
            return conn.execute(update(jobs).where(jobs.c.status == "running").values(
                status="failed", finished_at=self.c.clock.now(),
                error="interrupted: the service stopped while the job ran; submit it again "
                      "(the job's writes are atomic, a rerun is safe)")).rowcount

    def _claim(self) -> tuple[str, str, str, dict[str, Any]] | None:
        with self.c.engine.begin() as conn:
            row = conn.execute(select(jobs.c.job_id, jobs.c.tenant_id, jobs.c.kind,
                                      jobs.c.params_json).where(jobs.c.status == "queued")
                               .order_by(jobs.c.submitted_at, jobs.c.job_id).limit(1)).first()
            if row is None:
                return None
            took = conn.execute(update(jobs).where(jobs.c.job_id == row.job_id,
                                                   jobs.c.status == "queued")
                                .values(status="running", started_at=self.c.clock.now())).rowcount
        return (row.job_id, row.tenant_id, row.kind, json.loads(row.params_json)) if took \
            else None

    def run_next(self) -> str | None:
        """Run the oldest queued job to its end; its id, or None when none is queued."""
        claimed = self._claim()
        if claimed is None:
            return None
        job_id, tenant, kind, params = claimed
        values: dict[str, Any]
        try:
            result = RUNNERS[kind](self.c, tenant, params)
            values = {"status": "succeeded",
                      "result_json": json.dumps(plain(result), ensure_ascii=False)}
        except CaifuError as exc:  # the user's to fix: say what, without the server's paths
            values = {"status": "failed", "error": public_error(str(exc), self.c.root)}
        except Exception as exc:  # a bug: the job fails, the worker goes on
            log.error("job failed", extra={"job_id": job_id, "kind": kind,
                                           "error_type": type(exc).__name__,
                                           # frames only: a message may quote data
                                           "trace": frames(exc.__traceback__)})
            values = {"status": "failed",
                      "error": f"internal error ({type(exc).__name__}); the service log "
                               f"has the details under job_id {job_id}"}
        with self.c.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == job_id)
                         .values(finished_at=self.c.clock.now(), **values))
        log.info("job finished", extra={"job_id": job_id, "kind": kind,
                                        "status": values["status"]})
        return job_id

    def run_worker(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        """Run queued jobs until ``stop`` is set (the service's worker thread)."""
        while not stop.is_set():
            try:
                ran = self.run_next()
            except Exception:  # the database away for a moment: keep polling
                log.exception("job worker could not claim a job")
                ran = None
            if ran is None:
                stop.wait(poll_seconds)
