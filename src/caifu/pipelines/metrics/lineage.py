"""Column lineage of every metric, read from the SQL its query compiles to.

Each metric is compiled exactly as ``services.metrics.query`` runs it (``compile.query``, no
cut, month grain) over unbound tables named after the datasets' sources, and traced with
``pipelines.lineage``: the result names, per output column (``period``, ``value``,
``customers``), the contract columns (or ``sor:<table>`` columns) it reads.

**Levels.** A metric's level is the highest JR/T 0158 level of the columns its SQL reads, and
it reads personal data when one of them is PII. Every metric aggregates; the rule for showing
an aggregate is the one ``services.metrics.query`` applies, not a new one: a level-3 (or 4)
figure is shown only for rows behind at least ``min_group_size`` distinct customers, smaller
groups are withheld. A metric whose data names no customer (``customers`` is not counted)
has no group size, so nothing is withheld by that rule: the caller's role decides (a scoped
caller is refused a tenant-wide figure).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from caifu.data.contracts import Registry
from caifu.pipelines import lineage as ln
from caifu.pipelines.metrics import compile as mc
from caifu.pipelines.metrics import sqlexpr
from caifu.pipelines.metrics.spec import Catalog, Metric

SQL_TYPES = {"string": "VARCHAR", "int": "BIGINT", "decimal": "DECIMAL(18,2)",
             "float": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP", "bool": "BOOLEAN"}
# the range compiled: any range gives the same columns (dates are constants in the SQL)
START, END = dt.date(2025, 1, 1), dt.date(2025, 12, 31)


@dataclass(frozen=True)
class ColumnFacts:
    level: int
    pii: bool
    kind: str
    desc: str


@dataclass(frozen=True)
class MetricLineage:
    metric: str
    traced: ln.Traced
    level: int
    pii: bool
    counts_customers: bool  # the rows carry a distinct-customer count
    min_group_size: int

    @property
    def rule(self) -> str:
        """How the figure is shown (the rule of ``services.metrics.query``)."""
        if self.level < 3:
            return f"level {self.level}: shown at any group size"
        if not self.counts_customers:
            return (f"level {self.level}, aggregated; its data names no customer, so no group "
                    "size: shown to tenant-wide callers only")
        return (f"level {self.level}, aggregated: shown only for rows behind at least "
                f"{self.min_group_size} distinct customers, smaller groups withheld")

    def plain(self) -> dict[str, object]:
        return {
            "metric": self.metric, "level": self.level, "pii": self.pii,
            "aggregated": True, "min_group_size": self.min_group_size if self.level >= 3
            and self.counts_customers else None, "rule": self.rule,
            "sources": sorted(str(s) for s in self.traced.sources),
            "columns": {name: [{"source": str(e.source), "type": e.type, "subtype": e.subtype}
                                for e in sorted(c.edges)]
                        for name, c in self.traced.columns.items()},
        }


def source_schemas(catalog: Catalog) -> dict[str, dict[str, str]]:
    """SQL types of the columns of every table a dataset reads (grouped datasets read their
    base's table)."""
    out: dict[str, dict[str, str]] = {}
    for ds in catalog.datasets.values():
        if ds.base is None:
            out.setdefault(ds.source, {}).update(
                {c.name: SQL_TYPES[c.kind] for c in ds.columns.values()})
    return out


def column_facts(catalog: Catalog, registry: Registry) -> dict[ln.Source, ColumnFacts]:
    """Level, PII flag, type and description of every column a lineage can name: the
    contracts' and the operational tables' the metric files declare."""
    out: dict[ln.Source, ColumnFacts] = {}
    for t in registry:
        for c in t.columns:
            out[ln.Source(t.name, c.name)] = ColumnFacts(c.level, c.pii, c.kind, c.desc)
    for ds in catalog.datasets.values():
        if ds.own_columns:
            for info in ds.columns.values():
                out[ln.Source(ds.source, info.name)] = ColumnFacts(info.level, info.pii,
                                                                   info.kind, info.desc)
    return out


def trace_metric(catalog: Catalog, m: Metric | str) -> ln.Traced:
    name = m if isinstance(m, str) else m.name
    schemas = source_schemas(catalog)
    tables = {source: ln.unbound(source, cols) for source, cols in schemas.items()}
    expr = mc.query(catalog, mc.Query(name, START, END), tables)
    return ln.trace(expr, schemas)


def metric_lineage(catalog: Catalog, registry: Registry, min_group_size: int
                   ) -> dict[str, MetricLineage]:
    """Every metric's lineage, level and PII flag read from its SQL."""
    facts = column_facts(catalog, registry)
    out: dict[str, MetricLineage] = {}
    for name, m in catalog.metrics.items():
        traced = trace_metric(catalog, m)
        sources = traced.sources
        level = max((facts[s].level for s in sources), default=1)
        pii = any(facts[s].pii for s in sources)
        counts = all(catalog.datasets[d].customer for d in catalog.base_datasets(m))
        out[name] = MetricLineage(name, traced, level, pii, counts, min_group_size)
    return out


def declared_sources(catalog: Catalog, m: Metric) -> set[ln.Source]:
    """``Catalog.columns_read(m)`` as table columns: a grouped dataset's column is what its
    aggregate reads of the base table (and the base's filter), a key column the base's."""
    out: set[ln.Source] = set()
    for ds_name, col in catalog.columns_read(m):
        out |= _expand(catalog, ds_name, col)
    return out


def _expand(catalog: Catalog, ds_name: str, col: str) -> set[ln.Source]:
    ds = catalog.datasets[ds_name]
    if ds.base is None:
        return {ln.Source(ds.source, col)}
    base = catalog.datasets[ds.base]
    out: set[ln.Source] = set()
    if col in ds.aggregates:
        for ref in sqlexpr.columns(ds.aggregates[col]):
            out |= _expand(catalog, base.name, base.key[0] if ref.name == "__row__"
                           else ref.name)
    else:
        out |= _expand(catalog, base.name, col)
    if ds.base_filter is not None:
        for ref in sqlexpr.columns(ds.base_filter):
            out |= _expand(catalog, base.name, ref.name)
    return out


def structural_sources(catalog: Catalog, m: Metric) -> dict[ln.Source, str]:
    """Columns the SQL reads that the definition does not name, with why: the columns a
    query reads to put rows together rather than to compute the figure."""
    out: dict[ln.Source, str] = {}
    for ds_name in catalog.base_datasets(m):
        ds = catalog.datasets[ds_name]
        if ds.customer:
            for s in _expand(catalog, ds.name, ds.customer):
                out.setdefault(s, "the distinct customers behind each row")
        for k in ds.key:  # COUNT(*) counts a key column; a grouped dataset groups by its key
            for s in _expand(catalog, ds.name, k):
                out.setdefault(s, "the dataset's key")
    for leaf in _leaves(catalog, m):
        if leaf.dataset is None:
            continue
        for tree in leaf.trees.values():
            for ref in sqlexpr.columns(tree):
                if ref.dataset in (None, leaf.dataset):
                    continue
                for r in catalog.path(leaf.dataset, ref.dataset or "") or []:
                    for side, cols in ((r.source, r.source_columns),
                                       (r.target, r.target_columns)):
                        for c in cols:
                            for s in _expand(catalog, side, c):
                                out.setdefault(s, f"join key of {r.name}")
    return out


def _leaves(catalog: Catalog, m: Metric) -> list[Metric]:
    if m.kind != "derived":
        return [m]
    out: list[Metric] = []
    for u in m.uses:
        out += _leaves(catalog, catalog.metrics[u])
    return out
