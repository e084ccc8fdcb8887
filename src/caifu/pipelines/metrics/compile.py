"""A metric query as one Ibis expression: the same on DuckDB and Spark.

``query(catalog, q, tables, scope)`` → a table with one row per period and cut::

    period (date) | <dimension> ... | value | customers (distinct customers behind the row)

- **Periods** are local business dates: a timestamp (stored in UTC) is moved by the tenant's
  UTC offset before its date is taken; a period is named by its first day (``grain``: day,
  week (Monday), month, quarter, year, or ``all`` — the whole range as one period, named by
  ``start``). Only rows dated ``start`` … ``end`` (inclusive) count.
- A **snapshot** dataset contributes, per period, only the rows of its last snapshot date in the
  period (AUM at the end of the month, not a sum over its days). The last date is the
  dataset's, before the caller's scope narrows the rows, so an advisor's AUM is read on the
  same day as the branch's.
- A **stock** metric counts, per period, the rows alive at the period's end (``valid_from``
  ≤ end < ``valid_to``, or no ``valid_to``); a period is every period of the range, also one
  without events.
- A **derived** metric is computed from its component metrics' rows of the same cut.
- ``scope``: the customer ids the caller may see (``keep``) and those nobody's figures count
  (``drop``: storage-only customers); every dataset that names a customer is narrowed by
  both. None: every customer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from caifu.core.errors import ConfigError
from caifu.pipelines.metrics import sqlexpr
from caifu.pipelines.metrics.spec import Catalog, Dataset, Dimension, Metric, Relationship

GRAINS = ("day", "week", "month", "quarter", "year", "all")
# bounds of one query: a stock metric joins every row to every period, so a day grain over a
# century would be a hundred million rows per thousand customers
MAX_PERIODS = 1_200  # three years of days, a century of months
MAX_CUTS = 4
_UNITS = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}


@dataclass(frozen=True)
class Scope:
    """One-column (``customer_id``) tables: only ``keep``'s customers count, ``drop``'s never."""

    keep: ir.Table | None = None
    drop: ir.Table | None = None


@dataclass(frozen=True)
class Query:
    metric: str
    start: dt.date
    end: dt.date
    by: tuple[str, ...] = ()
    grain: str = "month"
    utc_offset_hours: int = 8
    # a condition on dimensions ("board = 'chinext' AND province IN ('SH', 'ZJ')"): only the
    # rows it holds for count, in every part of a derived metric
    where: str | None = None

    def filter_tree(self) -> sqlexpr.exp.Expression | None:
        return None if self.where is None else sqlexpr.parse(self.where, "--where")

    def where_dimensions(self) -> tuple[str, ...]:
        tree = self.filter_tree()
        if tree is None:
            return ()
        return tuple(dict.fromkeys(r.name for r in sqlexpr.columns(tree)))

    def check(self, catalog: Catalog) -> Metric:
        m = catalog.metric(self.metric)
        if self.grain not in GRAINS:
            raise ConfigError(f"grain {self.grain!r}: one of {', '.join(GRAINS)}")
        if self.end < self.start:
            raise ConfigError(f"the range ends ({self.end}) before it starts ({self.start})")
        if len(set(self.by)) != len(self.by):
            raise ConfigError("a dimension is named twice in --by")
        if len(self.by) > MAX_CUTS:
            raise ConfigError(f"at most {MAX_CUTS} dimensions in --by")
        n = len(periods(self.start, self.end, self.grain)) if self.grain != "day" \
            else (self.end - self.start).days + 1
        if n > MAX_PERIODS:
            raise ConfigError(f"{self.start} … {self.end} is {n:,} {self.grain} periods; at most "
                              f"{MAX_PERIODS:,} in one query (a coarser grain, or a shorter "
                              "range)")
        reachable = catalog.dimensions_of(m)
        for name in self.by:
            catalog.dimension(name)  # unknown: an error with the list
            if name not in reachable:
                raise ConfigError(f"metric {m.name} cannot be cut by {name!r}: its data does not "
                                  f"reach it; it can by {', '.join(reachable) or 'nothing'}")
        tree = self.filter_tree()
        if tree is not None:
            if sqlexpr.is_aggregate(tree):
                raise ConfigError("--where is a condition on dimensions, not an aggregate")
            for ref in sqlexpr.columns(tree):
                if ref.dataset is not None:
                    raise ConfigError(f"--where names dimensions, not {ref}")
                catalog.dimension(ref.name)
                if ref.name not in reachable:
                    raise ConfigError(f"metric {m.name} cannot be filtered by {ref.name!r}: its "
                                      "data does not reach it; it can by "
                                      f"{', '.join(reachable) or 'nothing'}")
        return m


def period_start(day: dt.date, grain: str, start: dt.date) -> dt.date:
    """The first day of ``day``'s period (``all``: the range's start)."""
    if grain == "all":
        return start
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def periods(start: dt.date, end: dt.date, grain: str) -> list[tuple[dt.date, dt.date, dt.date]]:
    """(period, first day counted, last day counted) of every period of the range; the first
    and last periods are cut to the range."""
    if grain == "all":
        return [(start, start, end)]
    out: list[tuple[dt.date, dt.date, dt.date]] = []
    p = period_start(start, grain, start)
    while p <= end:
        nxt = _next(p, grain)
        out.append((p, max(p, start), min(nxt - dt.timedelta(days=1), end)))
        p = nxt
    return out


def _next(p: dt.date, grain: str) -> dt.date:
    if grain == "day":
        return p + dt.timedelta(days=1)
    if grain == "week":
        return p + dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    m = p.month - 1 + months
    return dt.date(p.year + m // 12, m % 12 + 1, 1)


def query(catalog: Catalog, q: Query, tables: Mapping[str, ir.Table],
          scope: Scope | None = None) -> ir.Table:
    m = q.check(catalog)
    dims = [catalog.dimensions[d] for d in q.by]
    return _Compiler(catalog, q, tables, scope).metric(m, dims)


class _Compiler:
    def __init__(self, catalog: Catalog, q: Query, tables: Mapping[str, ir.Table],
                 scope: Scope | None) -> None:
        self.cat = catalog
        self.q = q
        self.tables = tables
        self.scope = scope

    def metric(self, m: Metric, dims: list[Dimension]) -> ir.Table:
        if m.kind == "derived":
            out = self._derived(m, dims)
        elif m.kind == "stock":
            out = self._stock(m, dims)
        else:
            out = self._simple(m, dims)
        return out.select("period", *(d.name for d in dims), "value", "customers")

    # --- rows of a dataset, with the dimensions it reaches ------------------------------------

    def _table(self, name: str) -> ir.Table:
        ds = self.cat.datasets[name]
        if ds.base is not None:  # grouped: e.g. each customer's first deposit
            base = self._table(ds.base)
            base_ds = self.cat.datasets[ds.base]
            if ds.base_filter is not None:
                base = base.filter(sqlexpr.condition(ds.base_filter, _resolver(base, base_ds)))
            return base.group_by(*ds.key).aggregate(**{
                col: sqlexpr.build(tree, _resolver(base, base_ds))
                for col, tree in ds.aggregates.items()})
        if ds.source not in self.tables:
            raise ConfigError(f"dataset {name!r} ({ds.source}) has no data on this engine")
        return self.tables[ds.source]

    def _frame(self, ds_name: str, needs: list[_Need]) -> ir.Table:
        """``ds_name``'s rows with a column per need: a dimension, or a column of a dataset
        the rows reach (joined many-to-one, so no row is repeated or lost)."""
        t = self._table(ds_name)
        own = {n.alias: sqlexpr.build(n.tree, _resolver(t, self.cat.datasets[ds_name]))
               for n in needs if n.dataset == ds_name}
        if own:
            t = t.mutate(**own)
        hops: dict[str, tuple[Relationship, list[_Need]]] = {}
        for n in needs:
            if n.dataset == ds_name:
                continue
            path = self.cat.path(ds_name, n.dataset)
            if not path:
                raise ConfigError(f"{n.dataset} is not reachable from {ds_name}")
            hops.setdefault(path[0].name, (path[0], []))[1].append(n)
        for hop, hop_needs in hops.values():
            right = self._frame(hop.target, hop_needs)
            keys = {f"__k{i}": right[c] for i, c in enumerate(hop.target_columns)}
            right = right.select(**keys, **{n.alias: right[n.alias] for n in hop_needs})
            t = t.left_join(right, [t[c] == right[f"__k{i}"]
                                    for i, c in enumerate(hop.source_columns)])
            t = t.drop(*keys)
        return t

    def _needs(self, m: Metric, dims: list[Dimension]) -> list[_Need]:
        dims = [*dims, *(self.cat.dimensions[n] for n in self.q.where_dimensions()
                         if n not in {d.name for d in dims})]
        needs = {f"__d_{d.name}": _Need(d.dataset, f"__d_{d.name}", d.tree) for d in dims}
        for tree in m.trees.values():
            for ref in sqlexpr.columns(tree):
                if ref.dataset not in (None, m.dataset):
                    alias = _foreign(ref)
                    needs[alias] = _Need(ref.dataset or "", alias,
                                         sqlexpr.parse(ref.name, alias))
        return list(needs.values())

    def _local_date(self, value: ir.Value, kind: str) -> ir.DateValue:
        if kind == "timestamp":
            return (value + ibis.interval(hours=self.q.utc_offset_hours)).date()
        return value  # type: ignore[return-value]

    def _narrow(self, t: ir.Table, ds: Dataset) -> ir.Table:
        """The caller's customers, and the query's condition on dimensions."""
        tree = self.q.filter_tree()
        if tree is not None:
            t = t.filter(sqlexpr.condition(tree, lambda ref: t[f"__d_{ref.name}"]))
        if self.scope is None or ds.customer is None:
            return t
        if self.scope.keep is not None:
            t = t.filter(t[ds.customer].isin(self.scope.keep["customer_id"]))
        if self.scope.drop is not None:
            t = t.filter(t[ds.customer].isnull()
                         | ~t[ds.customer].isin(self.scope.drop["customer_id"]))
        return t

    def _aggregate(self, t: ir.Table, m: Metric, ds: Dataset, dims: list[Dimension],
                   pseudo: Mapping[str, str] | None = None) -> ir.Table:
        if "filter" in m.trees:
            t = t.filter(sqlexpr.condition(m.trees["filter"], _resolver(t, ds, pseudo)))
        value = sqlexpr.build(m.trees["measure"], _resolver(t, ds, pseudo))
        customers = (t[ds.customer].nunique() if ds.customer
                     else ibis.null().cast("int64"))
        keys = {"period": t["__period"], **{d.name: t[f"__d_{d.name}"] for d in dims}}
        return t.group_by(**keys).aggregate(value=value, customers=customers)

    # --- the three kinds ---------------------------------------------------------------------

    def _simple(self, m: Metric, dims: list[Dimension]) -> ir.Table:
        assert m.dataset is not None and m.trees
        ds = self.cat.datasets[m.dataset]
        time = m.time or ds.time
        assert time is not None
        t = self._frame(ds.name, self._needs(m, dims))
        day = self._local_date(t[time], ds.columns[time].kind)
        t = t.mutate(__date=day)
        t = t.filter(t["__date"].between(self.q.start, self.q.end))
        if self.q.grain == "all":
            t = t.mutate(__period=ibis.literal(self.q.start))
        else:
            t = t.mutate(__period=t["__date"].truncate(_UNITS[self.q.grain]))
        if ds.snapshot:
            last = t["__date"].max().over(ibis.window(group_by=t["__period"]))
            t = t.mutate(__last=last)
            t = t.filter(t["__date"] == t["__last"])
        t = self._narrow(t, ds)
        return self._aggregate(t, m, ds, dims)

    def _stock(self, m: Metric, dims: list[Dimension]) -> ir.Table:
        assert m.dataset is not None and m.valid_from is not None
        ds = self.cat.datasets[m.dataset]
        spine = ibis.memtable({
            "__period": [p for p, _, _ in periods(self.q.start, self.q.end, self.q.grain)],
            "__pstart": [s for _, s, _ in periods(self.q.start, self.q.end, self.q.grain)],
            "__pend": [e for _, _, e in periods(self.q.start, self.q.end, self.q.grain)],
        }, schema={"__period": "date", "__pstart": "date", "__pend": "date"})
        t = self._narrow(self._frame(ds.name, self._needs(m, dims)), ds)
        # only the columns the aggregate reads cross the spine: every row meets every period
        t = t.select(*self._used(t, m, ds), __since=self._local_date(
            t[m.valid_from], ds.columns[m.valid_from].kind),
            **({} if m.valid_to is None else {"__until": self._local_date(
                t[m.valid_to], ds.columns[m.valid_to].kind)}))
        alive = [t["__since"] <= spine["__pend"]]
        if m.valid_to is not None:
            alive.append(t["__until"].isnull() | (t["__until"] > spine["__pend"]))
        t = t.join(spine, alive)
        return self._aggregate(t, m, ds, dims, {"period_start": "__pstart",
                                                "period_end": "__pend"})

    @staticmethod
    def _used(t: ir.Table, m: Metric, ds: Dataset) -> list[str]:
        """The frame's columns a metric's measure and filter read, its key (COUNT(*)), its
        customer column, and the dimension and related columns the frame added."""
        names = {ref.name for tree in m.trees.values() for ref in sqlexpr.columns(tree)
                 if ref.dataset in (None, ds.name) and ref.name in t.columns}
        names |= {ds.key[0], *([ds.customer] if ds.customer else [])}
        names |= {c for c in t.columns if c.startswith(("__d_", "__c_"))}
        return [c for c in t.columns if c in names]

    def _derived(self, m: Metric, dims: list[Dimension]) -> ir.Table:
        assert "expr" in m.trees
        keys = ["period", *(d.name for d in dims)]
        parts = {u: self.metric(self.cat.metrics[u], dims) for u in m.uses}
        types = {u: p.schema()["value"] for u, p in parts.items()}
        stacked = ibis.union(*(
            p.select(*keys, "customers", **{
                v: (p["value"] if v == u else ibis.null().cast(types[v])).name(v)
                for v in m.uses})
            for u, p in parts.items()), distinct=False)
        combined = stacked.group_by(*keys).aggregate(
            customers=stacked["customers"].min(),
            **{u: stacked[u].max() for u in m.uses})

        def resolve(ref: sqlexpr.Ref) -> ir.Value:
            return combined[ref.name]

        value = sqlexpr.build(m.trees["expr"], resolve)
        return combined.mutate(value=value)


@dataclass(frozen=True)
class _Need:
    dataset: str
    alias: str
    tree: sqlexpr.exp.Expression


def _foreign(ref: sqlexpr.Ref) -> str:
    return f"__c_{ref.dataset}__{ref.name}"


def _resolver(t: ir.Table, ds: Dataset, pseudo: Mapping[str, str] | None = None
              ) -> sqlexpr.Resolver:
    """Column references of ``ds``'s expressions on ``t``; ``pseudo`` maps period_start /
    period_end to the columns holding them."""
    def resolve(ref: sqlexpr.Ref) -> ir.Value:
        if ref.name == "__row__":  # COUNT(*): a key column is never missing
            return t[ds.key[0]]
        if pseudo and ref.dataset is None and ref.name in pseudo:
            return t[pseudo[ref.name]]
        if ref.dataset not in (None, ds.name):
            return t[_foreign(ref)]
        return t[ref.name]

    return resolve
