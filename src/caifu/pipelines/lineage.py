"""Column lineage read from the SQL a pipeline compiles to.

An Ibis expression over *unbound* tables (``ibis.table(schema, name=...)``) is compiled to
DuckDB SQL (``ibis.to_sql``), parsed and qualified by sqlglot (the parser Ibis already uses),
and every output column is traced down the query's scopes to the columns of the tables it
reads. Nothing runs and nothing connects: lineage is a property of the definition.

Each source column reaches an output in one of two ways (OpenLineage's transformation types):

- ``DIRECT``: its value flows into the output's value — ``IDENTITY`` (copied),
  ``TRANSFORMATION`` (computed from), ``AGGREGATION`` (aggregated into);
- ``INDIRECT``: it decides which rows count or where they land — ``FILTER`` (WHERE, HAVING,
  an aggregate's FILTER), ``JOIN`` (ON), ``GROUP_BY``, ``WINDOW`` (PARTITION BY / ORDER BY),
  ``CONDITIONAL`` (a CASE condition).

A column read only through the steps that shape every output alike (the joins that put a
profile together, the filter on who has an account) is **dataset-level** lineage: it is in
every output's ``edges`` and also listed once in ``Traced.dataset``.

``profile_lineage()`` traces every profile feature (``pipelines.profile``); ``rule_tag_lineage``
each rule tag's condition, through the features it reads, back to contract columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import sqlglot
from ibis.backends.sql.datatypes import DuckDBType
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from caifu.core.errors import ConfigError
from caifu.core.tags import RuleTag, TagDefinition
from caifu.data.contracts import Registry
from caifu.data.contracts.arrow import contract_schema
from caifu.pipelines import profile
from caifu.pipelines.tags import rule_tag_table

DIRECT, INDIRECT = "DIRECT", "INDIRECT"
PROFILE_TABLE = "profile_features"
# engine names of the unbound tables: never a name a real table has
ENGINE_PREFIX = "lineage__"
# the profile's inputs: ProfileInputs field → contract table
PROFILE_INPUTS: dict[str, str] = {
    "customers": "customers", "accounts": "accounts", "securities": "securities",
    "fund_products": "fund_products", "suitability_assessments": "suitability_assessments",
    "wecom_follows": "wecom_follows", "trades": "trades", "positions": "positions",
    "cash_flows": "cash_flows", "fund_transactions": "fund_transactions",
    "app_events": "app_events", "market_positions": "positions",
    "market_fund_transactions": "fund_transactions",
}
# outputs that read no column, and why (a test holds every other output to a source)
PARAMETERS: dict[str, str] = {"as_of": "the profile date, a parameter of the build"}
_DIRECT_RANK = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}


@dataclass(frozen=True, order=True)
class Source:
    """One column of an input: a contract table, ``sor:<table>`` or ``profile_features``."""

    table: str
    column: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True, order=True)
class Edge:
    source: Source
    type: str  # DIRECT | INDIRECT
    subtype: str


@dataclass(frozen=True)
class ColumnLineage:
    output: str
    edges: frozenset[Edge]

    @property
    def sources(self) -> frozenset[Source]:
        """Every column the output reads, directly or not."""
        return frozenset(e.source for e in self.edges)

    @property
    def direct(self) -> frozenset[Source]:
        return frozenset(e.source for e in self.edges if e.type == DIRECT)


@dataclass(frozen=True)
class Traced:
    """The lineage of every output column of one expression."""

    columns: dict[str, ColumnLineage]
    dataset: frozenset[Source] = frozenset()  # read through steps that shape every output
    sql: str = field(default="", compare=False)
    types: dict[str, str] = field(default_factory=dict, compare=False)  # output → SQL type

    @property
    def sources(self) -> frozenset[Source]:
        out: set[Source] = set()
        for c in self.columns.values():
            out |= c.sources
        return frozenset(out)

    def own(self, output: str) -> frozenset[Source]:
        """The sources of one output less the dataset-level ones it shares with all."""
        c = self.columns[output]
        return frozenset(e.source for e in c.edges
                         if e.type == DIRECT or e.source not in self.dataset)


# --- the tracer ----------------------------------------------------------------------------


def unbound(name: str, schema: Mapping[str, str]) -> ir.Table:
    """An unbound table for ``name`` (a contract table, ``sor:<table>``, ...) with columns of
    the SQL types ``schema`` names."""
    return ibis.table({c: DuckDBType.from_string(t) for c, t in schema.items()},
                      name=engine_name(name))


def engine_name(name: str) -> str:
    return ENGINE_PREFIX + name.replace(":", "__")


def logical_name(engine: str) -> str | None:
    """The logical name of an engine table ``unbound`` made, else None."""
    if not engine.startswith(ENGINE_PREFIX):
        return None
    name = engine.removeprefix(ENGINE_PREFIX)
    store, sep, table = name.partition("__")
    return f"{store}:{table}" if sep and store in ("sor", "lake") else name


def trace(expr: ir.Table, schemas: Mapping[str, Mapping[str, str]]) -> Traced:
    """Lineage of every column of ``expr``, built over ``unbound`` tables whose logical names
    and column types ``schemas`` gives (``{"trades": {"trade_date": "DATE", ...}}``)."""
    sql = ibis.to_sql(expr, dialect="duckdb")
    traced = trace_sql(str(sql), schemas, list(expr.columns))
    types = {name: DuckDBType.to_string(dtype) for name, dtype in expr.schema().items()}
    return Traced(traced.columns, traced.dataset, traced.sql, types)


def trace_sql(sql: str, schemas: Mapping[str, Mapping[str, str]],
              outputs: Sequence[str] | None = None) -> Traced:
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    engine_schema: dict[str, object] = {engine_name(t): dict(cols) for t, cols in schemas.items()}
    tree = qualify(tree, schema=engine_schema, dialect="duckdb",
                   validate_qualify_columns=False, identify=False)
    root = build_scope(tree)
    if root is None:
        raise ConfigError("lineage: the compiled SQL has no query")
    walker = _Walker(schemas)
    names = list(outputs) if outputs is not None else _projection_names(root)
    columns = {n: ColumnLineage(n, frozenset(walker.column(root, n))) for n in names}
    return Traced(columns, _shared(columns.values()), sql)


def _shared(columns: Iterable[ColumnLineage]) -> frozenset[Source]:
    """The indirect sources of every output (when two or more outputs read anything)."""
    reading = [c for c in columns if c.edges]
    if len(reading) < 2:
        return frozenset()
    shared = {e.source for e in reading[0].edges if e.type == INDIRECT}
    for c in reading[1:]:
        shared &= {e.source for e in c.edges if e.type == INDIRECT}
    return frozenset(shared)


def _projection_names(scope: Scope) -> list[str]:
    if isinstance(scope.expression, exp.SetOperation):
        return _projection_names(scope.set_operation_scopes[0])
    select: Any = scope.expression
    return [p.alias_or_name for p in select.selects]


def _combine(outer: tuple[str, str], inner: tuple[str, str]) -> tuple[str, str]:
    """The transformation of a path: indirect anywhere makes it indirect (the first indirect
    step names it); else the strongest direct kind."""
    if outer[0] == INDIRECT:
        return outer
    if inner[0] == INDIRECT:
        return inner
    return outer if _DIRECT_RANK[outer[1]] >= _DIRECT_RANK[inner[1]] else inner


class _Walker:
    def __init__(self, schemas: Mapping[str, Mapping[str, str]]) -> None:
        self.schemas = schemas
        self._memo: dict[tuple[int, str], frozenset[Edge]] = {}
        self._context: dict[int, frozenset[Edge]] = {}

    # a column of a scope's output
    def column(self, scope: Scope, name: str) -> frozenset[Edge]:
        key = (id(scope), name)
        if key not in self._memo:
            self._memo[key] = frozenset()  # a cycle reads nothing more
            self._memo[key] = self._column(scope, name)
        return self._memo[key]

    def _column(self, scope: Scope, name: str) -> frozenset[Edge]:
        if isinstance(scope.expression, exp.SetOperation):
            first = _projection_names(scope.set_operation_scopes[0])
            if name not in first:
                raise ConfigError(f"lineage: the union has no column {name!r}")
            i = first.index(name)
            out: set[Edge] = set()
            for branch in scope.set_operation_scopes:
                out |= self.column(branch, _projection_names(branch)[i])
            return frozenset(out)
        select: Any = scope.expression
        proj = next((p for p in select.selects if p.alias_or_name == name), None)
        if proj is None:
            if any(isinstance(p, exp.Star) for p in select.selects):
                return self._star(scope, name)
            raise ConfigError(f"lineage: no column {name!r} in {select.sql('duckdb')[:200]}")
        out = set(self._refs(scope, proj, (DIRECT, "IDENTITY")))
        out |= self._context_of(scope)
        return frozenset(out)

    def _star(self, scope: Scope, name: str) -> frozenset[Edge]:
        """``SELECT *`` over a source that was not expanded (an in-memory table)."""
        out: set[Edge] = set(self._context_of(scope))
        for source in scope.sources.values():
            if isinstance(source, Scope) and name in _projection_names(source):
                return frozenset(out | self.column(source, name))
        return frozenset(out)

    def _context_of(self, scope: Scope) -> frozenset[Edge]:
        """What every output of the scope reads: WHERE, JOIN ... ON, GROUP BY, HAVING."""
        key = id(scope)
        if key in self._context:
            return self._context[key]
        select: Any = scope.expression
        out: set[Edge] = set()
        for clause, subtype in (("where", "FILTER"), ("having", "FILTER"),
                                ("qualify", "FILTER"), ("group", "GROUP_BY")):
            node = select.args.get(clause)
            if node is not None:
                out |= self._refs(scope, node, (INDIRECT, subtype))
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None:
                out |= self._refs(scope, on, (INDIRECT, "JOIN"))
            for using in join.args.get("using") or []:
                out |= self._refs(scope, using, (INDIRECT, "JOIN"))
        self._context[key] = frozenset(out)
        return self._context[key]

    def _refs(self, scope: Scope, node: exp.Expression, how: tuple[str, str]) -> set[Edge]:
        out: set[Edge] = set()
        for col, kind in _columns(node, how):
            out |= self._resolve(scope, col, kind)
        for sub in node.find_all(exp.Select):
            child = next((s for s in scope.subquery_scopes if s.expression is sub), None)
            if child is not None:
                for n in _projection_names(child):
                    out |= {Edge(e.source, INDIRECT if how[0] == INDIRECT else e.type,
                                 how[1] if how[0] == INDIRECT else e.subtype)
                            for e in self.column(child, n)}
        return out

    def _resolve(self, scope: Scope, col: exp.Column, how: tuple[str, str]) -> set[Edge]:
        source = scope.sources.get(col.table) if col.table else None
        if source is None and not col.table and len(scope.sources) == 1:
            source = next(iter(scope.sources.values()))
        if source is None:
            return set()  # an alias of the same SELECT (ORDER BY 1), or a lambda variable
        if isinstance(source, Scope):
            edges = self.column(source, col.name)
            if how == (INDIRECT, "JOIN"):
                # a join key counts for the columns its value is made of; the rows the
                # joined side keeps are the lineage of the columns taken from it
                edges = frozenset(e for e in edges if e.type == DIRECT)
            return {Edge(e.source, *_combine(how, (e.type, e.subtype))) for e in edges}
        if isinstance(source, exp.Table):
            logical = logical_name(source.name)
            if logical is None:  # an in-memory table of constants (a period spine)
                return set()
            if logical not in self.schemas:
                raise ConfigError(f"lineage: table {logical!r} has no schema")
            return {Edge(Source(logical, col.name), *how)}
        return set()


def _columns(node: exp.Expression, how: tuple[str, str]) -> Iterable[tuple[exp.Column, tuple[str, str]]]:
    """Column references under ``node`` with the transformation that carries each."""
    if isinstance(node, exp.Column):
        yield node, how
        return
    if isinstance(node, exp.Select | exp.Subquery):
        return  # a subquery: its own scope
    if isinstance(node, exp.Window):
        yield from _columns(node.this, how)
        for part in (*(node.args.get("partition_by") or []),
                     *([node.args["order"]] if node.args.get("order") else [])):
            yield from _columns(part, (INDIRECT, "WINDOW") if how[0] == DIRECT else how)
        return
    if isinstance(node, exp.Filter):  # AGG(x) FILTER (WHERE cond)
        yield from _columns(node.this, how)
        yield from _columns(node.expression, (INDIRECT, "FILTER") if how[0] == DIRECT else how)
        return
    if isinstance(node, exp.If):
        yield from _columns(node.this, (INDIRECT, "CONDITIONAL") if how[0] == DIRECT else how)
        for key in ("true", "false"):
            if node.args.get(key) is not None:
                yield from _columns(node.args[key], _stepped(how))
        return
    inner = how
    if how[0] == DIRECT:
        if isinstance(node, exp.AggFunc):
            inner = (DIRECT, "AGGREGATION")
        elif not isinstance(node, exp.Alias | exp.Paren | exp.Cast):
            inner = _stepped(how)
    for child in node.iter_expressions():
        yield from _columns(child, inner)


def _stepped(how: tuple[str, str]) -> tuple[str, str]:
    if how == (DIRECT, "IDENTITY"):
        return (DIRECT, "TRANSFORMATION")
    return how


# --- what the profile and the rule tags read --------------------------------------------------


def contract_types(registry: Registry, tables: Iterable[str]) -> dict[str, dict[str, str]]:
    """Column name → SQL type of each named contract table."""
    return {t: {c.name: c.type_name for c in registry[t].columns} for t in tables}


def profile_lineage(registry: Registry, as_of: dt.date = dt.date(2026, 6, 30)) -> Traced:
    """Every profile feature traced back to contract columns (the date changes no column
    read: windows are constants in the SQL)."""
    tables = sorted(set(PROFILE_INPUTS.values()))
    inputs = {field_: ibis.table(ibis.Schema.from_pyarrow(contract_schema(registry[t])),
                                 name=engine_name(t))
              for field_, t in PROFILE_INPUTS.items()}
    expr = profile.profile_features(profile.ProfileInputs(**inputs), as_of)
    return trace(expr, contract_types(registry, tables))


PROFILE_KIND_TYPES = {"string": "VARCHAR", "int": "BIGINT", "decimal": "DECIMAL(18,2)",
                      "float": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP",
                      "bool": "BOOLEAN"}


def profile_schema() -> dict[str, str]:
    return {f.name: PROFILE_KIND_TYPES[f.kind] for f in profile.FEATURES}


@dataclass(frozen=True)
class TagLineage:
    """A rule tag: ``rule_tag_table`` (the customers meeting the condition, with the features
    that are its evidence) traced over the profile table (``on_features``: sources are
    ``profile_features.<feature>``), and through the features' lineage back to contract
    columns (``on_contracts``)."""

    tag: str
    on_features: Traced
    on_contracts: Traced

    @property
    def features(self) -> list[str]:
        return sorted({s.column for s in self.on_features.sources})


def rule_tag_lineage(definitions: Sequence[TagDefinition], features: Traced
                     ) -> dict[str, TagLineage]:
    schema = {PROFILE_TABLE: profile_schema()}
    table = unbound(PROFILE_TABLE, schema[PROFILE_TABLE])
    out: dict[str, TagLineage] = {}
    for d in definitions:
        if not isinstance(d.spec, RuleTag):
            continue
        t = trace(rule_tag_table(table, d), schema)
        columns: dict[str, ColumnLineage] = {}
        for name, col in t.columns.items():
            edges: set[Edge] = set()
            for e in col.edges:
                for f in features.columns[e.source.column].edges:
                    edges.add(Edge(f.source, *_combine((e.type, e.subtype),
                                                       (f.type, f.subtype))))
            columns[name] = ColumnLineage(name, frozenset(edges))
        out[d.id] = TagLineage(d.id, t, Traced(columns, _shared(columns.values()), t.sql))
    return out


def feature_names() -> list[str]:
    return [f.name for f in profile.FEATURES]
