"""A tenant's reference data for the company linker: aliases and party relations.

    load(c, p, "aliases" | "relations", file, replace_all=False)   CSV or JSON Lines → SoR
    rows(c, p, "aliases" | "relations")                            what is loaded

**Aliases** (``risk_aliases``): ``name`` (as news writes it), ``code`` (a listed company's
6-digit code), ``kind`` ``former`` (a former name, default) or ``alias`` (a nickname),
``valid_from`` / ``valid_to`` (ISO dates; a former name links in documents published in
that window), ``note``. **Relations** (``risk_relations``): ``party`` (an unlisted party:
controlling shareholder, bond issuer, subsidiary), ``code``, ``relation``
(``controlling_shareholder``, ``shareholder``, ``subsidiary``, ``bond_issuer``, ``parent``,
``affiliate``), ``note``. Codes must be in the shipped A-share list (what the linker knows).

A file is loaded whole or not at all: one bad row and nothing is written, every bad row is
reported with where it is (``line 3``, ``row 2 (line 3)``), the field, a reason code and a
message — a half-loaded alias table would change linking silently. Rows are upserted by
key (name + code; party + code); ``replace_all`` first removes the tenant's other rows. A
load is role-checked (``risk.reference.load``) and audited (``risk_reference``) before it
is written; reading needs ``risk.reference.read``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from caifu.adapters.sor.repos import risk as repo
from caifu.core import roles
from caifu.core.errors import ConfigError, PermissionDeniedError, SourceError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.text.company_master import CompanyMaster, compact

TABLES: Final = ("aliases", "relations")
KINDS: Final = ("former", "alias")
RELATIONS: Final = ("controlling_shareholder", "shareholder", "subsidiary", "bond_issuer",
                    "parent", "affiliate")
FIELDS: Final = {"aliases": ("name", "code", "kind", "valid_from", "valid_to", "note"),
                 "relations": ("party", "code", "relation", "note")}
LENGTHS: Final = {"name": 100, "party": 200, "note": 200}
MAX_ROWS: Final = 100_000
MAX_BYTES: Final = 20 * 2**20


@dataclass(frozen=True)
class BadRow:
    where: str
    field: str | None
    reason: str
    message: str
    value: str = ""


@dataclass
class LoadReport:
    table: str
    origin: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    loaded: bool = False
    rejected: list[BadRow] = field(default_factory=list)


@lru_cache(maxsize=1)
def _listed_codes() -> frozenset[str]:
    return frozenset(CompanyMaster.shipped().short_names)


def _records(data: bytes, suffix: str, origin: str) -> list[tuple[str, Any]]:
    """(where, record or a BadRow) per line / row of a CSV or JSON Lines file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"not UTF-8 (byte {e.start}); save it as UTF-8",
                          path=origin) from None
    out: list[tuple[str, Any]] = []
    if suffix == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            raise SourceError("the CSV file is empty: it needs a header row", path=origin)
        names = [h.strip() for h in header]
        for i, values in enumerate(reader, start=1):
            where = f"row {i} (line {reader.line_num})"
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(names):
                out.append((where, BadRow(where, None, "BAD_FIELD",
                                          f"{len(values)} values for {len(names)} columns")))
                continue
            out.append((where, dict(zip(names, values, strict=False))))
        return out
    if suffix not in (".jsonl", ".ndjson"):
        raise SourceError(f"unknown file type {suffix or '(none)'}: use .csv, .jsonl or "
                          ".ndjson", path=origin)
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {i}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            out.append((where, BadRow(where, None, "NOT_JSON", e.msg, line[:200])))
            continue
        if not isinstance(rec, dict):
            out.append((where, BadRow(where, None, "NOT_OBJECT", "a line must be one JSON "
                                      "object", line[:200])))
            continue
        out.append((where, rec))
    return out


def _text(rec: dict[str, Any], name: str, where: str, bad: list[BadRow]) -> str | None:
    v = rec.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if not isinstance(v, str):
        bad.append(BadRow(where, name, "BAD_FIELD", "must be text", str(v)[:200]))
        return None
    v = v.strip()
    if name in LENGTHS and len(v) > LENGTHS[name]:
        bad.append(BadRow(where, name, "TOO_LONG", f"longer than {LENGTHS[name]} characters",
                          v[:200]))
        return None
    return v


def _date(rec: dict[str, Any], name: str, where: str, bad: list[BadRow]) -> dt.date | None:
    v = _text(rec, name, where, bad)
    if v is None:
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        bad.append(BadRow(where, name, "BAD_DATE", "not a date YYYY-MM-DD", v))
        return None


def check_row(table: str, rec: dict[str, Any], where: str) -> tuple[dict[str, Any] | None,
                                                                  list[BadRow]]:
    """The row to store, or None and why not."""
    bad: list[BadRow] = []
    unknown = sorted(set(rec) - set(FIELDS[table]))
    for name in unknown:
        bad.append(BadRow(where, str(name), "UNKNOWN_FIELD",
                          f"not a field; fields: {', '.join(FIELDS[table])}"))
    key = "name" if table == "aliases" else "party"
    text = _text(rec, key, where, bad)
    if text is None and not any(b.field == key for b in bad):
        bad.append(BadRow(where, key, f"MISSING_{key.upper()}", f"{key} is required"))
    elif text is not None and len(compact(text)) < 2:
        bad.append(BadRow(where, key, "TOO_SHORT", "fewer than 2 characters once spaces and "
                          "width are folded: it would match everywhere", text))
    code = _text(rec, "code", where, bad)
    if code is None:
        if not any(b.field == "code" for b in bad):
            bad.append(BadRow(where, "code", "MISSING_CODE", "code is required"))
    elif not (len(code) == 6 and code.isascii() and code.isdigit()):
        bad.append(BadRow(where, "code", "BAD_CODE", "not a 6-digit code", code))
    elif code not in _listed_codes():
        bad.append(BadRow(where, "code", "UNKNOWN_CODE", "not in the A-share list", code))
    note = _text(rec, "note", where, bad)
    row: dict[str, Any] = {key: text, "code": code, "note": note}
    if table == "aliases":
        kind = _text(rec, "kind", where, bad) or "former"
        if kind not in KINDS:
            bad.append(BadRow(where, "kind", "BAD_KIND", f"one of {', '.join(KINDS)}", kind))
        since, until = _date(rec, "valid_from", where, bad), _date(rec, "valid_to", where, bad)
        if since and until and since > until:
            bad.append(BadRow(where, "valid_to", "DATES_REVERSED",
                              f"valid_to {until} is before valid_from {since}"))
        row.update(kind=kind, valid_from=since, valid_to=until)
    else:
        relation = _text(rec, "relation", where, bad)
        if relation is None and not any(b.field == "relation" for b in bad):
            bad.append(BadRow(where, "relation", "MISSING_RELATION", "relation is required"))
        elif relation is not None and relation not in RELATIONS:
            bad.append(BadRow(where, "relation", "BAD_RELATION",
                              f"one of {', '.join(RELATIONS)}", relation))
        row["relation"] = relation
    return (None, bad) if bad else (row, [])


def check_file(table: str, data: bytes, suffix: str, origin: str = "the file"
               ) -> tuple[int, list[dict[str, Any]], list[BadRow]]:
    """Every row checked: (rows read, good rows, problems — a row may have several). A key
    twice in one file is bad the second time (which one is meant?)."""
    if table not in TABLES:
        raise ConfigError(f"unknown reference table {table!r}; one of {', '.join(TABLES)}")
    if len(data) > MAX_BYTES:
        raise SourceError(f"over {MAX_BYTES // 2**20} MiB", path=origin)
    records = _records(data, suffix, origin)
    if len(records) > MAX_ROWS:
        raise SourceError(f"more than {MAX_ROWS:,} rows", path=origin)
    good: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    seen: dict[tuple[str, str], str] = {}
    key = "name" if table == "aliases" else "party"
    for where, rec in records:
        if isinstance(rec, BadRow):
            bad.append(rec)
            continue
        row, problems = check_row(table, rec, where)
        if row is None:
            bad += problems
            continue
        k = (compact(row[key]), row["code"])
        if k in seen:
            bad.append(BadRow(where, key, "DUPLICATE", f"{row[key]} → {row['code']} again "
                              f"(first at {seen[k]})", row[key]))
            continue
        seen[k] = where
        good.append(row)
    return len(records), good, bad


def _tenant(c: Container, p: Principal, action: str) -> str:
    roles.check(p.role, action)
    if p.tenant_id is None:
        raise PermissionDeniedError(f"a {p.role} has no tenant's reference data")
    get_tenant(c, p.tenant_id)
    return p.tenant_id


def load(c: Container, p: Principal, table: str, path: Path, *, replace_all: bool = False
         ) -> LoadReport:
    """Check ``path`` whole, then (if every row is good) audit and upsert it."""
    tenant = _tenant(c, p, "risk.reference.load")
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read it: {e.strerror}", path=str(path)) from None
    n, good, bad = check_file(table, data, path.suffix.lower(), str(path))
    report = LoadReport(table, str(path), rows=n, rejected=bad)
    if bad:
        return report
    from caifu.services.compliance import audit

    now = c.clock.now()
    stored = [{**r, "loaded_at": now, "loaded_by": p.subject} for r in good]
    with c.engine.connect() as conn:
        before = len(repo.reference_rows(conn, tenant, table))
    audit.append(c, tenant, p.subject, "risk_reference", fields=list(FIELDS[table]),
                 reason=f"{table}: {len(good)} rows from {path.name}"
                        + (" (replacing all)" if replace_all else ""))
    with c.engine.begin() as conn:
        report.added, report.updated = repo.replace_reference(conn, tenant, table, stored,
                                                              replace_all=replace_all)
    if replace_all:
        report.removed = before - report.updated
    report.loaded = True
    return report


def rows(c: Container, p: Principal, table: str) -> list[dict[str, Any]]:
    tenant = _tenant(c, p, "risk.reference.read")
    if table not in TABLES:
        raise ConfigError(f"unknown reference table {table!r}; one of {', '.join(TABLES)}")
    with c.engine.connect() as conn:
        return repo.reference_rows(conn, tenant, table)
