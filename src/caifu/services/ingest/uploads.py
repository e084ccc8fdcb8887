"""Files sent to the service for ingest, and what the API shows of batches and quarantine.

An upload is written to ``<workspace>/uploads/<tenant>/<upload_id>/<file>`` as it streams in
(never held in memory), bounded by ``Settings.max_upload_bytes``; only then is an ingest job
queued for it (``services/jobs``). A refused upload leaves no file behind.

An upload is personal data with no use once its ingest job has ended (its rows are in the
system of record and the lake, or refused): the job removes it. One still waiting is found
and removed by an erasure of a customer it names (``erase_uploads``).

Quarantined rows keep the source row as it came (``raw_json``) so that a data engineer can fix
it; through the API its values are masked like the customer master: a contract column at
level ≥ 3 with its own mask, and any column the contract does not know (a source's own
header) with the text mask — a raw row is personal data whatever its header says.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import and_, func, select

from caifu.adapters.sor.models import ingest_log, ingest_quarantine
from caifu.core.errors import ConfigError, PayloadTooLargeError
from caifu.core.levels import mask, must_mask
from caifu.data.contracts import registry
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.ingest.load import ingest_log as recent_batches
from caifu.services.platform.jobs import uploads_dir

FILE_NAME = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff.\-]{0,120}$")
SUFFIXES = (".csv", ".txt", ".parquet", ".jsonl", ".json")


def check_file_name(name: str) -> str:
    """A plain file name the ingest can recognise (no folders, a known suffix)."""
    if not FILE_NAME.match(name) or ".." in name:
        raise ConfigError("filename: letters, digits, Chinese, '.', '-' or '_' only, no "
                          "folders, at most 121 characters")
    if not name.lower().endswith(SUFFIXES):
        raise ConfigError(f"filename: must end with one of {', '.join(SUFFIXES)}")
    return name


async def save_upload(c: Container, tenant: str, name: str, chunks: AsyncIterator[bytes],
                      limit: int) -> tuple[str, int]:
    """Stream an upload to disk; its upload id and size. Over ``limit`` bytes or empty, the
    partial file is removed and the upload refused."""
    check_file_name(name)
    upload_id = uuid.uuid4().hex[:16]
    folder = uploads_dir(c, tenant) / upload_id
    folder.mkdir(parents=True)
    size = 0
    try:
        with (folder / name).open("wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"body: the upload is larger than {limit:,} bytes")
                f.write(chunk)
        if size == 0:
            raise ConfigError("body: the upload is empty")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload_id, size


def erase_uploads(c: Container, tenant: str, customer_id: str) -> list[str]:
    """Remove the tenant's waiting uploads that name the customer (his id as a value or a
    whole token); returns ``<upload id>/<file>`` of each. A queued job of one fails with
    "no such file" — the file held a customer who asked to be erased."""
    folder = uploads_dir(c, tenant)
    removed = []
    for file in sorted(folder.glob("*/*")) if folder.is_dir() else []:
        if file.is_file() and _names(file, customer_id):
            shutil.rmtree(file.parent, ignore_errors=True)
            removed.append(f"{file.parent.name}/{file.name}")
    return removed


def _names(path: Path, customer_id: str) -> bool:
    if path.suffix.lower() == ".parquet":
        try:
            return _parquet_names(path, customer_id)
        except (OSError, pa.ArrowException):
            pass  # not readable as Parquet: look at its bytes like any other file
    # ASCII ids read the same in UTF-8 and GBK; read in chunks, an upload can be large
    token = re.compile(rb"(?<![\w-])" + re.escape(customer_id.encode()) + rb"(?![\w-])")
    keep = len(customer_id.encode()) + 1
    tail = b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            if token.search(tail + chunk):
                return True
            tail = (tail + chunk)[-keep:]
    return False


def _parquet_names(path: Path, customer_id: str) -> bool:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 16):
        for col in batch.columns:
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                    or pa.types.is_integer(col.type)) and \
                    pc.any(pc.equal(col.cast(pa.string()), customer_id)).as_py():
                return True
    return False


def batches(c: Container, tenant: str, limit: int) -> list[dict[str, Any]]:
    """The tenant's newest ingest batches (file, counts, reasons) — no row data."""
    out = []
    for b in recent_batches(c, tenant, limit):
        b.pop("tenant_id", None)
        b["source_path"] = Path(b["source_path"]).name  # the server's folders are not the caller's business
        for k in ("reasons_json", "timings_json"):
            raw = b.pop(k)
            b[k.removesuffix("_json")] = json.loads(raw) if raw else {}
        b["started_at"] = b["started_at"].isoformat() + "Z" if b["started_at"] else None
        out.append(b)
    return out


def masked_raw(table: str, raw: str | None) -> Any:
    """A quarantined raw row as the API and the CLI show it: level-3 values masked."""
    if not raw:
        return raw
    try:
        row = json.loads(raw)
    except json.JSONDecodeError:
        return mask("text", raw)
    if not isinstance(row, dict):
        return mask("text", str(row))
    try:
        contract = registry()[table]
        known = {col.name: col for col in contract.columns}
    except ConfigError:
        known = {}
    out = {}
    for key, value in row.items():
        col = known.get(key)
        if value is None or value == "" or (col is not None and not must_mask(col.level)):
            out[key] = value
        else:
            out[key] = mask((col.mask if col is not None else None) or "text", str(value))
    return out


def quarantine(c: Container, tenant: str, batch: str | None, limit: int, offset: int,
               unmask_by: str | None = None, reason: str = "") -> dict[str, Any]:
    """Quarantined rows of committed batches, newest batch first, masked, a page.

    ``unmask_by`` (an actor, with a ``reason``): the raw rows in clear, once an ``unmask``
    audit record naming the rows' customers and columns is written."""
    q = ingest_quarantine
    where = [q.c.tenant_id == tenant, ingest_log.c.status == "committed"]
    if batch:
        where.append(q.c.batch_id.startswith(batch, autoescape=True))
    joined = q.join(ingest_log, and_(ingest_log.c.tenant_id == q.c.tenant_id,
                                     ingest_log.c.batch_id == q.c.batch_id))
    with c.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar()
        rows = conn.execute(select(q.c.batch_id, q.c.row_number, q.c.table_name,
                                   q.c.source_path, q.c.line, q.c.reasons, q.c.raw_json)
                            .select_from(joined).where(*where)
                            .order_by(ingest_log.c.started_at.desc(), q.c.row_number)
                            .limit(limit).offset(offset)).all()
    if unmask_by is not None:  # recorded first: nothing is shown in clear unaudited
        _audit_unmask(c, tenant, unmask_by, reason, rows)
    items = [{"batch_id": r.batch_id, "row_number": r.row_number, "table": r.table_name,
              "file": Path(r.source_path).name, "line": r.line,
              "reasons": [x for x in re.split(r"[;,\s]+", r.reasons or "") if x],
              "row": _raw(r.raw_json) if unmask_by is not None
              else masked_raw(r.table_name, r.raw_json)} for r in rows]
    return {"total": int(total or 0), "limit": limit, "offset": offset, "items": items}


def _raw(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else raw
    except json.JSONDecodeError:
        return raw


def _audit_unmask(c: Container, tenant: str, actor: str, reason: str,
                  rows: Sequence[Any]) -> None:
    ids: set[str] = set()
    fields: set[str] = set()
    for r in rows:
        row = _raw(r.raw_json)
        if isinstance(row, dict):
            if row.get("customer_id"):
                ids.add(str(row["customer_id"]))
            fields.update(row)
    audit.append(c, tenant, actor, "unmask", customer_ids=sorted(ids), fields=sorted(fields),
                 reason=reason)
