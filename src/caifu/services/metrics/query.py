"""One metric, answered for one caller: the one query path of the CLI, the API and reports.

    answer(c, principal, "aum", by=("branch",), grain="month", start=..., end=...)

- **Scope**: the caller's customers only (an advisor's AUM is his customers'); storage-only
  customers count for nobody. A figure that names no customer (ingest batches, group members)
  is tenant-wide: a caller scoped to some customers is refused it.
- **Levels**: a metric's level is the highest JR/T 0158 level among the columns it reads. A
  level-3 figure is shown only for rows behind at least ``min_group_size`` distinct
  customers; a smaller group's value is withheld (``suppressed``) unless a role that may unmask
  asks for it with a reason — recorded in the audit log before the query runs.
- Every answer carries the metric's version, its definition hash and the catalog version.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa

from caifu.adapters.engines.session import DuckDBSession, EngineSession
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.adapters.sor.repos import metrics as metrics_repo
from caifu.core.errors import ConfigError, PermissionDeniedError
from caifu.core.identity import SCOPE, Principal
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.pipelines.metrics import compile as mc
from caifu.pipelines.metrics.spec import Catalog, Metric
from caifu.services.compliance import audit, privacy
from caifu.services.container import Container
from caifu.services.metrics.catalog import catalog as catalog_of
from caifu.services.platform.access import scope_of, tenant_of, visible_ids
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.build import utc_offset_hours

MIN_GROUP_SIZE = 10
DEFAULT_SPAN = {"day": 30, "week": 84, "month": 365, "quarter": 730, "year": 1095, "all": 365}


@dataclass
class Answer:
    metric: Metric
    catalog: Catalog
    query: mc.Query
    engine: str
    scope: str
    level: int
    min_group_size: int
    unmasked: bool
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def suppressed(self) -> int:
        return sum(1 for r in self.rows if r["suppressed"])

    def cited(self) -> dict[str, Any]:
        """What identifies this answer's figures: the metric, its version, definition hash."""
        return {"metric": self.metric.name, "version": self.metric.version,
                "definition_hash": self.catalog.definition_hash(self.metric.name)}

    def plain(self) -> dict[str, Any]:
        m = self.metric
        return {
            **self.cited(),
            "catalog_version": self.catalog.version, "kind": m.kind, "format": m.format,
            "label": dict(m.label), "description": dict(m.description), "owner": m.owner,
            "level": self.level, "grain": self.query.grain,
            "from": self.query.start.isoformat(), "to": self.query.end.isoformat(),
            "by": list(self.query.by), "where": self.query.where, "scope": self.scope,
            "engine": self.engine,
            "min_group_size": self.min_group_size, "unmasked": self.unmasked,
            "suppressed": self.suppressed,
            "rows": [{k: _json(v) for k, v in r.items()} for r in self.rows],
        }


def cited(found: Iterable[Answer]) -> list[dict[str, Any]]:
    """Each metric the answers used, once, in order: id, version and definition hash."""
    out: dict[str, dict[str, Any]] = {}
    for a in found:
        out.setdefault(a.metric.name, a.cited())
    return list(out.values())


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


class Tables(Mapping[str, ir.Table]):
    """The tenant's tables on the engine, read when a query first needs them."""

    def __init__(self, c: Container, s: EngineSession, tenant: str, catalog: Catalog) -> None:
        self.c, self.s, self.tenant, self.catalog = c, s, tenant, catalog
        self._sources = {ds.source: ds for ds in catalog.datasets.values() if ds.base is None}
        self._loaded: dict[str, ir.Table] = {}
        self.used: set[str] = set()  # the sources read since the caller last cleared it

    def __getitem__(self, source: str) -> ir.Table:
        self.used.add(source)
        if source not in self._loaded:
            self._loaded[source] = self._load(source)
        return self._loaded[source]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def _load(self, source: str) -> ir.Table:
        ds = self._sources.get(source)
        if ds is None:
            raise KeyError(source)
        name = f"m_{self.tenant}_{source.replace(':', '_')}"
        if source.startswith("sor:"):
            with self.c.engine.connect() as conn:
                data = metrics_repo.table_rows(conn, self.tenant, ds.table,
                                               {n: col.kind for n, col in ds.columns.items()})
            return self.s.from_arrow(name, data)
        if source.startswith("lake:"):  # a derived lake table (the value runs)
            files = self.c.lake.files(self.tenant, ds.table)
            if files:
                return self.s.read_parquet(name, files).select(*ds.columns)
            return self.s.from_arrow(name, pa.schema(
                [(n, metrics_repo.ARROW_TYPES[col.kind]) for n, col in ds.columns.items()]
            ).empty_table())
        contract = registry()[source]
        if contract.store == "lake":
            files = self.c.lake.files(self.tenant, source)
            if files:
                return self.s.read_parquet(name, files)
            return self.s.from_arrow(name, contract_schema(contract).empty_table())
        with self.c.engine.connect() as conn:
            data = ingest_repo.rows(conn, self.tenant, contract)
        return self.s.from_arrow(name, data if data is not None
                                 else contract_schema(contract).empty_table())


def listing(cat: Catalog) -> dict[str, Any]:
    """The catalog as plain data: what ``caifu metrics list --json`` and the API show."""
    return {"catalog_version": cat.version, "metrics": [
        {"name": m.name, "version": m.version, "kind": m.kind, "format": m.format,
         "owner": m.owner, "level": cat.level(m), "label": dict(m.label),
         "description": dict(m.description), "definition_hash": cat.definition_hash(m.name),
         "dimensions": cat.dimensions_of(m)} for m in cat.metrics.values()]}


def catalog_listing(c: Container, p: Principal) -> dict[str, Any]:
    return listing(catalog_of(c, tenant_of(p)))


def default_range(today: dt.date, grain: str, start: dt.date | None, end: dt.date | None
                  ) -> tuple[dt.date, dt.date]:
    """``end`` defaults to today; ``start`` to a span before it (a year of months, 30 days,
    12 weeks, 8 quarters, 3 years), from the first day of that period."""
    end = end or today
    if start is None:
        start = mc.period_start(end - dt.timedelta(days=DEFAULT_SPAN[grain] - 1),
                                "day" if grain == "all" else grain, end)
    return start, end


def answer(c: Container, p: Principal, metric: str, *, by: tuple[str, ...] = (),
           grain: str = "month", start: dt.date | None = None, end: dt.date | None = None,
           engine: str = "duckdb", unmask: bool = False, reason: str = "",
           min_group_size: int = MIN_GROUP_SIZE, where: str | None = None) -> Answer:
    """One metric for ``p`` (see the module's docstring)."""
    [one] = answers(c, p, [metric], by=by, grain=grain, start=start, end=end, engine=engine,
                    unmask=unmask, reason=reason, min_group_size=min_group_size, where=where)
    return one


def answers(c: Container, p: Principal, metrics: list[str], *, by: tuple[str, ...] = (),
            grain: str = "month", start: dt.date | None = None, end: dt.date | None = None,
            engine: str = "duckdb", unmask: bool = False, reason: str = "",
            min_group_size: int = MIN_GROUP_SIZE, where: str | None = None) -> list[Answer]:
    """Several metrics of one cut and range in one engine session: each table is read once
    (the value report's headline figures, a console page)."""
    tenant = tenant_of(p)
    tenant_row = get_tenant(c, tenant)
    cat = catalog_of(c, tenant)
    today = c.clock.now().date()
    start, end = default_range(today, grain, start, end)
    offset = utc_offset_hours(tenant_row.timezone, start)
    kind = SCOPE[p.role]
    scope_label = {"tenant": "tenant", "branch": f"branch {p.branch_id}",
                   "own_customers": f"advisor {p.advisor_id}"}.get(kind, kind)
    out: list[Answer] = []
    for name in metrics:
        m = cat.metric(name)
        q = mc.Query(m.name, start, end, tuple(by), grain, offset, where or None)
        q.check(cat)
        why = refusal(cat, m, p)
        if why:
            raise PermissionDeniedError(why)
        out.append(Answer(m, cat, q, engine, scope_label, cat.level(m), min_group_size, unmask))
    if unmask:
        if not p.can_unmask:
            raise PermissionDeniedError(f"a {p.role} may not see small groups' level-3 figures")
        if not reason.strip():
            raise ConfigError("--unmask needs a reason (it goes to the audit log)")
        audit.append(c, tenant, p.subject, "unmask",
                     fields=[f"metric:{a.metric.name}" for a in out], reason=reason)
    with c.job_session(engine, f"metric-{tenant}") as s:
        scope = _scope(c, s, p, tenant)
        tables = Tables(c, s, tenant, cat)
        for a in out:
            data = _run(s, cat, a.query, tables, scope, tenant)
            a.rows = _rows(data, a.query, a.level, min_group_size, unmask)
    return out


@dataclass(frozen=True)
class _Compiled:
    catalog: Catalog  # held, so its id cannot be another catalog's while this entry lives
    sql: str
    sources: tuple[tuple[str, Any], ...]  # the tables it reads, with their schemas
    memtables: tuple[tuple[str, pa.Table], ...]
    schema: pa.Schema


# Compiled SQL per question. Ibis takes 0.1–0.5 s to build and compile one metric's expression
# (a derived metric compiles its parts again), DuckDB milliseconds to run it on a small tenant;
# a console page or an API client asks the same questions again. The SQL names only the
# session's tables, whose names are the tenant's and the source's (``Tables``), the scope's
# (``_scope``) and the periods' in-memory table (kept with the SQL), so it is valid in the
# next session. The key is everything else the SQL depends on: the catalog object (a changed
# metric file is a new catalog), the query and the kind of scope; the tables' schemas are
# checked on each use (a lake table without files is its contract's columns, with files also
# the batch columns). DuckDB only: a Spark job's views carry the job's prefix.
_COMPILED: OrderedDict[tuple[Any, ...], _Compiled] = OrderedDict()
_COMPILED_MAX = 512
_COMPILED_LOCK = threading.Lock()


def _run(s: EngineSession, cat: Catalog, q: mc.Query, tables: Tables, scope: mc.Scope | None,
         tenant: str) -> pa.Table:
    if not isinstance(s, DuckDBSession):
        return s.to_arrow(mc.query(cat, q, tables, scope).order_by("period", *q.by))
    shape = None if scope is None else (scope.keep is not None, scope.drop is not None)
    key = (id(cat), tenant, q, shape)
    with _COMPILED_LOCK:
        hit = _COMPILED.get(key)
        if hit is not None and hit.catalog is cat:
            _COMPILED.move_to_end(key)
        else:
            hit = None
    # the tables the SQL reads, registered in this session, must be as they were
    if hit is not None and any(tables[name].schema() != schema for name, schema in hit.sources):
        hit = None
    if hit is None:
        tables.used.clear()
        expr = mc.query(cat, q, tables, scope).order_by("period", *q.by)
        sql, memtables = s.compile(expr)
        hit = _Compiled(cat, sql, tuple((n, tables[n].schema()) for n in sorted(tables.used)),
                        memtables, expr.schema().to_pyarrow())
        with _COMPILED_LOCK:
            _COMPILED[key] = hit
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
    return s.run_sql(hit.sql, hit.memtables, hit.schema)


def refusal(cat: Catalog, m: Metric, p: Principal) -> str | None:
    """Why ``p`` may not see ``m`` at all, or None: a figure that names no customer is
    tenant-wide, refused to a caller scoped to some customers (an advisor, a branch manager)."""
    if SCOPE[p.role] == "tenant":
        return None
    wide = [d for d in cat.base_datasets(m) if cat.datasets[d].customer is None]
    if not wide:
        return None
    return (f"{m.name} is a tenant-wide figure ({', '.join(wide)} names no customer); "
            f"a {p.role.replace('_', ' ')} sees figures of the customers in his scope")


def _scope(c: Container, s: EngineSession, p: Principal, tenant: str) -> mc.Scope | None:
    sc = scope_of(p)
    if sc.kind == "tenant":
        if sc.include_restricted:
            return None
        dropped = sorted(privacy.restricted_ids(c, tenant))
        if not dropped:
            return None
        return mc.Scope(drop=s.from_arrow(f"m_{tenant}_dropped",
                                          pa.table({"customer_id": dropped})))
    ids = sorted(visible_ids(c, p) or ())
    return mc.Scope(keep=s.from_arrow(f"m_{tenant}_scope",
                                      pa.table({"customer_id": pa.array(ids, pa.string())})))


def _rows(data: pa.Table, q: mc.Query, level: int, k: int, unmasked: bool
          ) -> list[dict[str, Any]]:
    out = []
    for r in data.to_pylist():
        n = r["customers"]
        small = level >= 3 and n is not None and n < k
        value = r["value"]
        if isinstance(value, float) and value != value:  # NaN: no value
            value = None
        row = {"period": r["period"], **{d: r[d] for d in q.by},
               "value": None if small and not unmasked else value,
               "customers": n, "suppressed": small and not unmasked}
        out.append(row)
    return out
