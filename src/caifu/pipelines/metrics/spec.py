"""Metric definitions: datasets, relationships, dimensions and metrics, declared once in YAML
(``src/caifu/data/metrics/*.yaml``, a tenant's ``metrics/<tenant>/*.yaml`` adds its own) and
checked here against the columns that exist.

A **dataset** is a table a metric reads: a contract table (its columns, levels and PII flags
come from the contract) or an operational table of the system of record (``source:
sor:<table>``, its columns declared in the file). A dataset has at most one **time** column:
an *event* time (a trade's date: a period holds the events dated in it) or a *snapshot* date
(``snapshot: true``, positions: a period holds its last snapshot only, so AUM is not summed
over days).

**Relationships** are many-to-one joins. The contracts' references (``trades.customer_id →
customers.customer_id``) are relationships without being written; a file adds others. A
**dimension** is a column or expression of one dataset; a metric can be cut by every
dimension its dataset reaches through relationships (a trade reaches its customer's branch and
the branch's province).

A **metric** is one of three kinds:

- ``simple``: an aggregate over a dataset's rows in the period (``SUM(amount)``), after an
  optional ``filter``;
- ``stock``: an aggregate over the rows *alive at the end of each period* (``valid_from`` on or
  before it, ``valid_to`` missing or after it): customers, accounts, follows; the filter may
  read ``period_start`` and ``period_end``;
- ``derived``: an expression over other metrics of the same cut (``funded_accounts /
  new_accounts``).

Every metric has a version (raised when its meaning changes) and a definition hash over
everything it depends on: two answers with the same hash were computed the same way.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlglot import exp

from caifu.core.errors import ConfigError
from caifu.data.contracts import Registry
from caifu.pipelines.metrics import sqlexpr

Kind = Literal["simple", "stock", "derived"]
KINDS = ("simple", "stock", "derived")
FORMATS = ("count", "money", "ratio", "number", "shares")
TYPES = ("string", "int", "decimal", "float", "date", "timestamp", "bool")
NAME = r"^[a-z][a-z0-9_]{1,63}$"
DECLARED = ("sor:", "lake:")  # sources whose columns the metric file declares


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    kind: str
    level: int
    pii: bool
    desc: str


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # a contract table, "sor:<table>" or "lake:<table>" (columns declared)
    key: tuple[str, ...]
    columns: Mapping[str, ColumnInfo]
    time: str | None = None
    snapshot: bool = False
    customer: str | None = None  # the column naming the customer a row is about
    description: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""
    declared: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # a dataset built from another: its rows grouped by ``key`` (``from`` in the file)
    base: str | None = None
    base_filter: exp.Expression | None = field(default=None, compare=False)
    aggregates: Mapping[str, exp.Expression] = field(default_factory=dict, compare=False)

    @property
    def table(self) -> str:
        return self.source.partition(":")[2] or self.source

    @property
    def own_columns(self) -> bool:
        """Whether the columns come from the metric file (an operational SoR table or a
        derived lake table), not from a contract."""
        return self.source.startswith(DECLARED)


@dataclass(frozen=True)
class Relationship:
    name: str
    source: str  # the many side ("from" in OSI)
    target: str  # the one side ("to")
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    declared: bool = True  # False: read from a contract's reference


@dataclass(frozen=True)
class Dimension:
    name: str
    dataset: str
    expr: str
    tree: exp.Expression = field(compare=False)
    label: Mapping[str, str] = field(default_factory=dict)
    description: Mapping[str, str] = field(default_factory=dict)
    declared: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Metric:
    name: str
    version: int
    kind: Kind
    label: Mapping[str, str]
    description: Mapping[str, str]
    owner: str
    format: str
    dataset: str | None = None
    measure: str | None = None
    filter: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    time: str | None = None  # simple: the dataset's time column unless named here
    expr: str | None = None  # derived
    uses: tuple[str, ...] = ()  # derived: the metrics its expression reads
    origin: str = ""  # file it was declared in
    declared: Mapping[str, Any] = field(default_factory=dict, compare=False)
    trees: Mapping[str, exp.Expression] = field(default_factory=dict, compare=False)


@dataclass
class Catalog:
    version: str
    datasets: dict[str, Dataset]
    relationships: list[Relationship]
    dimensions: dict[str, Dimension]
    metrics: dict[str, Metric]
    _hashes: dict[str, str] = field(default_factory=dict, repr=False)

    # --- look-ups ------------------------------------------------------------------------

    def metric(self, name: str) -> Metric:
        if name in self.metrics:
            return self.metrics[name]
        close = difflib.get_close_matches(name, list(self.metrics), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else \
            "; `caifu metrics list` shows them"
        raise ConfigError(f"unknown metric {name!r}{hint}")

    def dimension(self, name: str) -> Dimension:
        if name in self.dimensions:
            return self.dimensions[name]
        close = difflib.get_close_matches(name, list(self.dimensions), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown dimension {name!r}{hint}; dimensions: "
                          f"{', '.join(sorted(self.dimensions))}")

    def path(self, start: str, goal: str) -> list[Relationship] | None:
        """The shortest chain of many-to-one joins from ``start`` to ``goal`` (ties: the
        relationships in declaration order), or None."""
        if start == goal:
            return []
        seen = {start}
        queue: deque[tuple[str, list[Relationship]]] = deque([(start, [])])
        while queue:
            node, trail = queue.popleft()
            for r in self.relationships:
                if r.source == node and r.target not in seen:
                    if r.target == goal:
                        return [*trail, r]
                    seen.add(r.target)
                    queue.append((r.target, [*trail, r]))
        return None

    def base_datasets(self, m: Metric) -> list[str]:
        """The datasets a metric reads rows of (a derived metric: its components')."""
        if m.kind != "derived":
            return [m.dataset] if m.dataset else []
        out: dict[str, None] = {}
        for name in m.uses:
            out.update(dict.fromkeys(self.base_datasets(self.metrics[name])))
        return list(out)

    def dimensions_of(self, m: Metric) -> list[str]:
        """The dimensions every dataset of the metric reaches."""
        bases = self.base_datasets(m)
        return [d.name for d in self.dimensions.values()
                if all(self.path(b, d.dataset) is not None for b in bases)]

    def columns_read(self, m: Metric) -> list[tuple[str, str]]:
        """(dataset, column) of everything the metric's own definition reads."""
        if m.kind == "derived":
            out: dict[tuple[str, str], None] = {}
            for name in m.uses:
                out.update(dict.fromkeys(self.columns_read(self.metrics[name])))
            return list(out)
        assert m.dataset is not None
        ds = self.datasets[m.dataset]
        cols: dict[tuple[str, str], None] = {}
        if m.kind == "simple":
            cols[(ds.name, m.time or ds.time or "")] = None
        for col in (m.valid_from, m.valid_to):
            if col:
                cols[(ds.name, col)] = None
        for tree in m.trees.values():
            for ref in sqlexpr.columns(tree):
                if ref.name not in sqlexpr.PSEUDO and ref.name != "__row__":
                    cols[(ref.dataset or ds.name, ref.name)] = None
        return list(cols)

    def level(self, m: Metric) -> int:
        """The highest JR/T 0158 level among the columns the metric reads."""
        levels = [self.datasets[d].columns[c].level for d, c in self.columns_read(m)]
        return max(levels, default=1)

    def reads_pii(self, m: Metric) -> bool:
        return any(self.datasets[d].columns[c].pii for d, c in self.columns_read(m))

    # --- identity ------------------------------------------------------------------------

    def definition(self, name: str) -> dict[str, Any]:
        """Everything the metric's answer depends on, as plain data."""
        m = self.metrics[name]
        out: dict[str, Any] = {"metric": dict(m.declared)}
        if m.kind == "derived":
            out["uses"] = {u: self.definition_hash(u) for u in m.uses}
        else:
            assert m.dataset is not None
            ds = self.datasets[m.dataset]
            out["dataset"] = {"name": ds.name, "source": ds.source, "time": ds.time,
                              "snapshot": ds.snapshot, "customer": ds.customer}
        return out

    def definition_hash(self, name: str) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of ``definition``."""
        if name not in self._hashes:
            text = json.dumps(self.definition(name), sort_keys=True, ensure_ascii=False,
                              default=str)
            self._hashes[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._hashes[name]


# --- reading the files ----------------------------------------------------------------------


def contract_columns(registry: Registry) -> dict[str, dict[str, ColumnInfo]]:
    return {t.name: {c.name: ColumnInfo(c.name, c.kind, c.level, c.pii, c.desc)
                     for c in t.columns} for t in registry}


def _contract_keys(registry: Registry) -> dict[str, tuple[str, ...]]:
    return {t.name: t.key for t in registry}


def build_catalog(documents: Iterable[tuple[str, Mapping[str, Any]]], registry: Registry,
                  *, shipped: frozenset[str] = frozenset()) -> Catalog:
    """The catalog of every (origin, parsed YAML document). Names are unique across all
    documents; ``shipped`` names the metrics a tenant's files may not redefine (a tenant adds
    metrics, it does not change the shipped ones' meaning under the same id)."""
    contracts = contract_columns(registry)
    keys = _contract_keys(registry)
    version = ""
    raw_datasets: list[tuple[str, Mapping[str, Any]]] = []
    raw_rels: list[tuple[str, Mapping[str, Any]]] = []
    raw_dims: list[tuple[str, Mapping[str, Any]]] = []
    raw_metrics: list[tuple[str, Mapping[str, Any]]] = []
    for origin, doc in documents:
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{origin}: a metrics file is a mapping (datasets:, dimensions:, "
                              "metrics:)")
        unknown = set(doc) - {"version", "datasets", "relationships", "dimensions", "metrics"}
        if unknown:
            raise ConfigError(f"{origin}: unknown section(s) {', '.join(sorted(unknown))}")
        if doc.get("version") is not None:
            version = max(version, str(doc["version"]))
        for section, into in (("datasets", raw_datasets), ("relationships", raw_rels),
                              ("dimensions", raw_dims), ("metrics", raw_metrics)):
            items = doc.get(section) or []
            if not isinstance(items, list):
                raise ConfigError(f"{origin}: {section} is a list")
            into += [(origin, item) for item in items]

    datasets: dict[str, Dataset] = {}
    # tables first, then the grouped datasets built from them: a file may group a table
    # another file declares (the files are read in name order)
    grouped = [isinstance(d, Mapping) and d.get("from") is not None for _, d in raw_datasets]
    for origin, d in [x for x, g in zip(raw_datasets, grouped, strict=True) if not g] + \
            [x for x, g in zip(raw_datasets, grouped, strict=True) if g]:
        ds = _dataset(origin, d, contracts, keys, datasets)
        if ds.name in datasets:
            raise ConfigError(f"{origin}: dataset {ds.name!r} declared twice")
        datasets[ds.name] = ds
    relationships = _contract_relationships(datasets, registry)
    for origin, r in raw_rels:
        relationships.append(_relationship(origin, r, datasets))
    dimensions: dict[str, Dimension] = {}
    for origin, d in raw_dims:
        dim = _dimension(origin, d, datasets)
        if dim.name in dimensions:
            raise ConfigError(f"{origin}: dimension {dim.name!r} declared twice")
        dimensions[dim.name] = dim
    metrics: dict[str, Metric] = {}
    for origin, m in raw_metrics:
        metric = _metric(origin, m, datasets)
        if metric.name in metrics:
            where = "a shipped metric" if metric.name in shipped else "declared twice"
            raise ConfigError(f"{origin}: metric {metric.name!r}: {where}; give it a new id")
        metrics[metric.name] = metric
    for metric in metrics.values():
        for used in metric.uses:
            if used not in metrics:
                raise ConfigError(f"{metric.origin}: metric {metric.name!r} uses {used!r}, "
                                  "which is not a metric")
    _no_cycles(metrics)
    catalog = Catalog(version or "0", datasets, relationships, dimensions, metrics)
    for metric in metrics.values():
        for tree in metric.trees.values():
            for ref in sqlexpr.columns(tree):
                if ref.dataset not in (None, metric.dataset) and \
                        catalog.path(metric.dataset or "", ref.dataset or "") is None:
                    raise ConfigError(f"{metric.origin}: metric {metric.name}: {ref} — "
                                      f"{metric.dataset} does not reach {ref.dataset} through "
                                      "a relationship")
    return catalog


def _text_map(origin: str, what: str, value: Any, *, required: bool = True) -> dict[str, str]:
    if value is None and not required:
        return {}
    if isinstance(value, str):
        return {"en": value}
    if not isinstance(value, Mapping) or not value or \
            not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise ConfigError(f"{origin}: {what}: give text per language, e.g. "
                          "{zh: 活跃交易客户数, en: Active traders}")
    return {str(k): str(v) for k, v in value.items()}


def _name(origin: str, what: str, value: Any) -> str:
    if not isinstance(value, str) or not re.match(NAME, value):
        raise ConfigError(f"{origin}: {what} name {value!r}: lower case letters, digits and _, "
                          "starting with a letter")
    return value


def _only(origin: str, what: str, d: Mapping[str, Any], allowed: set[str]) -> None:
    extra = set(d) - allowed
    if extra:
        raise ConfigError(f"{origin}: {what}: unknown field(s) {', '.join(sorted(extra))}; "
                          f"known: {', '.join(sorted(allowed))}")


def _dataset(origin: str, d: Any, contracts: Mapping[str, Mapping[str, ColumnInfo]],
             keys: Mapping[str, tuple[str, ...]], datasets: Mapping[str, Dataset]) -> Dataset:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{origin}: a dataset is a mapping")
    name = _name(origin, "dataset", d.get("name"))
    where = f"{origin}: dataset {name}"
    _only(where, "dataset", d, {"name", "source", "key", "time", "snapshot", "customer",
                                "description", "owner", "columns", "from", "filter",
                                "group_by", "aggregates"})
    if d.get("from") is not None:
        return _grouped_dataset(where, name, d, datasets)
    source = d.get("source") or name
    if not isinstance(source, str):
        raise ConfigError(f"{where}: source is a table name")
    if source.startswith(DECLARED):
        cols = _declared_columns(where, d.get("columns"))
        key = tuple(d.get("key") or ())
        if not key:
            raise ConfigError(f"{where}: a {source.partition(':')[0]} table needs its key")
    else:
        if source not in contracts:
            raise ConfigError(f"{where}: source {source!r} is no contract table (or write "
                              "sor:<table> or lake:<table> with its columns)")
        if d.get("columns"):
            raise ConfigError(f"{where}: a contract table's columns come from its contract")
        cols = dict(contracts[source])
        key = tuple(d.get("key") or keys[source])
    for k in key:
        if k not in cols:
            raise ConfigError(f"{where}: key column {k!r} is not a column")
    time = _date_column(where, "time", d.get("time"), cols)
    customer = d.get("customer", "customer_id" if "customer_id" in cols else None)
    if customer is not None and customer not in cols:
        raise ConfigError(f"{where}: customer column {customer!r} is not a column")
    return Dataset(name, source, key, cols, time, bool(d.get("snapshot", False)), customer,
                   _text_map(where, "description", d.get("description"), required=False),
                   str(d.get("owner") or ""), declared=dict(d))


def _grouped_dataset(where: str, name: str, d: Mapping[str, Any],
                     datasets: Mapping[str, Dataset]) -> Dataset:
    """A dataset of another's rows grouped by ``group_by`` (its key), with ``aggregates``:
    each customer's first deposit, first trade. A column's level is the highest level it
    reads; an aggregate's type follows its argument (COUNT: int)."""
    base = datasets.get(d["from"])
    if base is None:
        raise ConfigError(f"{where}: from {d['from']!r} is not a table dataset, nor a grouped "
                          "one declared before it")
    for f in ("source", "columns"):
        if d.get(f) is not None:
            raise ConfigError(f"{where}: a grouped dataset has from/group_by/aggregates, not {f}")
    group_by = tuple(d.get("group_by") or ())
    if not group_by or any(g not in base.columns for g in group_by):
        raise ConfigError(f"{where}: group_by names columns of {base.name}")
    aggs = d.get("aggregates")
    if not isinstance(aggs, Mapping) or not aggs:
        raise ConfigError(f"{where}: aggregates: name → aggregate expression")
    cols = {g: base.columns[g] for g in group_by}
    trees: dict[str, exp.Expression] = {}
    for col, text in aggs.items():
        tree = sqlexpr.parse(text, f"{where}: aggregates.{col}")
        if not sqlexpr.aggregates_everything(tree) or not sqlexpr.is_aggregate(tree):
            raise ConfigError(f"{where}: aggregates.{col} must aggregate every column it reads")
        _columns_exist(f"{where}: aggregates.{col}", tree, base, datasets)
        read = [base.columns[r.name] for r in sqlexpr.columns(tree)]
        kind = "int" if isinstance(tree, exp.Count) else read[0].kind if read else "int"
        if isinstance(tree, exp.Sum | exp.Avg) and kind == "int":
            kind = "decimal"
        cols[str(col)] = ColumnInfo(str(col), kind, max((c.level for c in read), default=1),
                                    any(c.pii for c in read), f"{text} of {base.name}")
        trees[str(col)] = tree
    flt = None
    if d.get("filter") is not None:
        flt = sqlexpr.parse(d["filter"], f"{where}: filter")
        _columns_exist(f"{where}: filter", flt, base, datasets)
    time = _date_column(where, "time", d.get("time"), cols)
    customer = base.customer if base.customer in group_by else None
    return Dataset(name, base.source, group_by, cols, time, False, customer,
                   _text_map(where, "description", d.get("description"), required=False),
                   str(d.get("owner") or ""), declared=dict(d), base=base.name,
                   base_filter=flt, aggregates=trees)


def _date_column(where: str, what: str, col: Any, columns: Mapping[str, ColumnInfo],
                 of: str = "") -> str | None:
    """``col`` when it names a date or timestamp column (None stays None), else a ConfigError."""
    if col is not None and (col not in columns or columns[col].kind not in ("date", "timestamp")):
        raise ConfigError(f"{where}: {what} {col!r} is not a date or timestamp column{of}")
    return col  # type: ignore[no-any-return]


def _declared_columns(where: str, value: Any) -> dict[str, ColumnInfo]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: columns: name → {{type, level, desc}} for an operational "
                          "table")
    out: dict[str, ColumnInfo] = {}
    for name, spec in value.items():
        if not isinstance(spec, Mapping) or spec.get("type") not in TYPES:
            raise ConfigError(f"{where}: column {name}: type is one of {', '.join(TYPES)}")
        level = spec.get("level")
        if level not in (1, 2, 3, 4):
            raise ConfigError(f"{where}: column {name}: level is a JR/T 0158 level 1–4")
        out[str(name)] = ColumnInfo(str(name), spec["type"], int(level),
                                    bool(spec.get("pii", False)), str(spec.get("desc") or ""))
    return out


def _contract_relationships(datasets: Mapping[str, Dataset], registry: Registry
                            ) -> list[Relationship]:
    """A contract's references between datasets that read contract tables."""
    by_table: dict[str, list[str]] = {}
    for ds in datasets.values():
        if not ds.own_columns and ds.base is None:
            by_table.setdefault(ds.source, []).append(ds.name)
    out: list[Relationship] = []
    for ds in datasets.values():
        if ds.own_columns:
            continue
        for col, ref_table, ref_col in registry[ds.source].refs:
            if col.name not in ds.columns:  # a grouped dataset keeps its key columns only
                continue
            for target in by_table.get(ref_table, []):
                if target != ds.name:
                    out.append(Relationship(f"{ds.name}_{col.name}", ds.name, target,
                                            (col.name,), (ref_col,), declared=False))
    return out


def _relationship(origin: str, r: Any, datasets: Mapping[str, Dataset]) -> Relationship:
    if not isinstance(r, Mapping):
        raise ConfigError(f"{origin}: a relationship is a mapping")
    name = _name(origin, "relationship", r.get("name"))
    where = f"{origin}: relationship {name}"
    _only(where, "relationship", r, {"name", "from", "to", "from_columns", "to_columns"})
    source, target = r.get("from"), r.get("to")
    for side in (source, target):
        if side not in datasets:
            raise ConfigError(f"{where}: {side!r} is not a dataset")
    fc, tc = tuple(r.get("from_columns") or ()), tuple(r.get("to_columns") or ())
    if not fc or len(fc) != len(tc):
        raise ConfigError(f"{where}: from_columns and to_columns, as many of each")
    for ds, cols in ((source, fc), (target, tc)):
        for c in cols:
            if c not in datasets[ds].columns:
                raise ConfigError(f"{where}: {ds}.{c} is not a column")
    if set(tc) != set(datasets[target].key):
        raise ConfigError(f"{where}: to_columns must be {target}'s key "
                          f"({', '.join(datasets[target].key)}): a relationship is many-to-one")
    return Relationship(name, source, target, fc, tc)


def _dimension(origin: str, d: Any, datasets: Mapping[str, Dataset]) -> Dimension:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{origin}: a dimension is a mapping")
    name = _name(origin, "dimension", d.get("name"))
    where = f"{origin}: dimension {name}"
    _only(where, "dimension", d, {"name", "dataset", "expr", "label", "description"})
    ds = d.get("dataset")
    if ds not in datasets:
        raise ConfigError(f"{where}: dataset {ds!r} is not a dataset")
    text = str(d.get("expr") or name)
    tree = sqlexpr.parse(text, f"{where}: expr")
    if sqlexpr.is_aggregate(tree):
        raise ConfigError(f"{where}: a dimension is a row value, not an aggregate")
    _columns_exist(where, tree, datasets[ds], datasets)
    return Dimension(name, ds, text, tree, _text_map(where, "label", d.get("label")),
                     _text_map(where, "description", d.get("description"), required=False),
                     declared=dict(d))


def _columns_exist(where: str, tree: exp.Expression, ds: Dataset,
                   datasets: Mapping[str, Dataset], *, pseudo: bool = False,
                   foreign: bool = False) -> None:
    """Every column ``tree`` reads exists: a bare name in ``ds``, ``other.name`` (where
    ``foreign``) in a dataset ``ds`` reaches (checked once relationships are known)."""
    for ref in sqlexpr.columns(tree):
        if pseudo and ref.dataset is None and ref.name in sqlexpr.PSEUDO:
            continue
        target = ds if ref.dataset in (None, ds.name) else datasets.get(ref.dataset or "")
        if target is None or (target is not ds and not foreign):
            raise ConfigError(f"{where}: {ref}: {ref.dataset!r} is not a dataset this "
                              f"expression can read (its own is {ds.name})")
        if ref.name not in target.columns:
            close = difflib.get_close_matches(ref.name, list(target.columns), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{where}: {target.name} has no column {ref.name!r}{hint}")


def _metric(origin: str, m: Any, datasets: Mapping[str, Dataset]) -> Metric:
    if not isinstance(m, Mapping):
        raise ConfigError(f"{origin}: a metric is a mapping")
    name = _name(origin, "metric", m.get("name"))
    where = f"{origin}: metric {name}"
    _only(where, "metric", m, {"name", "version", "kind", "label", "description", "owner",
                               "format", "dataset", "measure", "filter", "valid_from",
                               "valid_to", "time", "expr"})
    kind = m.get("kind", "simple")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind is one of {', '.join(KINDS)}")
    version = m.get("version")
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"{where}: version is a whole number ≥ 1 (raise it when the meaning "
                          "changes)")
    owner = m.get("owner")
    if not isinstance(owner, str) or not owner.strip():
        raise ConfigError(f"{where}: owner (who answers for the figure) is required")
    fmt = m.get("format", "number")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: format is one of {', '.join(FORMATS)}")
    label = _text_map(where, "label", m.get("label"))
    description = _text_map(where, "description", m.get("description"))
    trees: dict[str, exp.Expression] = {}
    common: dict[str, Any] = {"name": name, "version": version, "kind": kind, "label": label,
                              "description": description, "owner": owner, "format": fmt,
                              "origin": origin, "declared": dict(m)}
    if kind == "derived":
        for f in ("dataset", "measure", "filter", "valid_from", "valid_to", "time"):
            if m.get(f) is not None:
                raise ConfigError(f"{where}: a derived metric has expr only, not {f}")
        tree = sqlexpr.parse(m.get("expr"), f"{where}: expr")
        if sqlexpr.is_aggregate(tree):
            raise ConfigError(f"{where}: a derived metric combines metrics; aggregates belong "
                              "in a simple or stock metric")
        uses = tuple(dict.fromkeys(r.name for r in sqlexpr.columns(tree)))
        if any(r.dataset for r in sqlexpr.columns(tree)):
            raise ConfigError(f"{where}: expr names metrics, not dataset columns")
        return Metric(**common, expr=m["expr"], uses=uses, trees={"expr": tree})  # type: ignore[arg-type]
    if m.get("expr") is not None:
        raise ConfigError(f"{where}: expr is for derived metrics; use measure")
    ds_name = m.get("dataset")
    if ds_name not in datasets:
        raise ConfigError(f"{where}: dataset {ds_name!r} is not a dataset")
    ds = datasets[ds_name]
    measure = sqlexpr.parse(m.get("measure"), f"{where}: measure")
    if not sqlexpr.is_aggregate(measure) or not sqlexpr.aggregates_everything(measure):
        raise ConfigError(f"{where}: measure must aggregate every column it reads "
                          "(SUM(amount), COUNT(DISTINCT customer_id), ...)")
    trees["measure"] = measure
    _columns_exist(f"{where}: measure", measure, ds, datasets, foreign=True)
    if m.get("filter") is not None:
        flt = sqlexpr.parse(m["filter"], f"{where}: filter")
        if sqlexpr.is_aggregate(flt):
            raise ConfigError(f"{where}: a filter is on rows; it cannot aggregate")
        _columns_exist(f"{where}: filter", flt, ds, datasets, pseudo=kind == "stock",
                       foreign=True)
        trees["filter"] = flt
    if kind == "stock":
        for f in ("valid_from", "valid_to"):
            col = m.get(f)
            if f == "valid_from" and col is None:
                raise ConfigError(f"{where}: a stock metric needs valid_from (when a row starts "
                                  "to count)")
            _date_column(where, f, col, ds.columns, f" of {ds.name}")
        if m.get("time") is not None:
            raise ConfigError(f"{where}: time is for simple metrics (a stock metric counts "
                              "what is alive at each period's end)")
    else:
        for f in ("valid_from", "valid_to"):
            if m.get(f) is not None:
                raise ConfigError(f"{where}: {f} is for stock metrics")
        time = _date_column(where, "time", m.get("time"), ds.columns, f" of {ds.name}")
        if time is None and ds.time is None:
            raise ConfigError(f"{where}: dataset {ds.name} has no time column; a simple metric "
                              "counts events in periods (name its time, or make it a stock "
                              "metric)")
    return Metric(**common, dataset=ds_name, measure=m["measure"], filter=m.get("filter"),  # type: ignore[arg-type]
                  valid_from=m.get("valid_from"), valid_to=m.get("valid_to"),
                  time=m.get("time"), trees=trees)


def _no_cycles(metrics: Mapping[str, Metric]) -> None:
    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ConfigError(f"metric cycle: {' → '.join((*path, name))}")
        for u in metrics[name].uses:
            visit(u, (*path, name))

    for name in metrics:
        visit(name, ())
