"""The metric files' expression language: a small, portable piece of SQL, read by sqlglot and
built as Ibis, so one definition runs on DuckDB and Spark and exports unchanged to the Open
Semantic Interchange format (whose metric expressions are ANSI SQL).

What is accepted (anything else is a ``ConfigError`` that names it)::

    columns             amount, trades.amount, period_start, period_end
    literals            12, 0.5, 'in', TRUE, NULL, DATE '2026-01-31'
    arithmetic          + - * /   (a division by zero is NULL on every engine)
    comparison          = <> != < <= > >=, IS [NOT] NULL, [NOT] IN (...), BETWEEN, LIKE
    logic               AND OR NOT
    CASE WHEN ... THEN ... [ELSE ...] END, COALESCE(a, b, ...)
    aggregates          SUM(x) COUNT(*) COUNT(x) COUNT(DISTINCT x) AVG(x) MIN(x) MAX(x)
                        MEDIAN(x) QUANTILE(x, p)   (p a written number in [0, 1])

``MEDIAN`` and ``QUANTILE`` are exact, interpolated linearly between the two nearest values
(DuckDB ``quantile_cont``, Spark ``percentile``), of a number, in double like ``AVG``;
``MEDIAN(x)`` is ``QUANTILE(x, 0.5)``. Missing values are left out, as by every aggregate.

A missing value in a comparison is false, as in the segment language: ``NOT (x > 5)`` holds
where ``x`` is missing, so a filter never loses rows to three-valued logic silently.

Parsing (``parse``, ``columns``) needs no engine; ``build`` turns a parsed expression into an
Ibis value over a resolver that maps a column reference to an Ibis column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import sqlglot
from ibis.common.exceptions import IbisError
from sqlglot import exp

from caifu.core.errors import ConfigError

PSEUDO = ("period_start", "period_end")
QUANTILES = (exp.Median, exp.Quantile)
AGGREGATES = (exp.Sum, exp.Count, exp.Avg, exp.Min, exp.Max, *QUANTILES)
_COMPARE = {exp.EQ: "__eq__", exp.NEQ: "__ne__", exp.GT: "__gt__", exp.GTE: "__ge__",
            exp.LT: "__lt__", exp.LTE: "__le__"}
_ARITH = {exp.Add: "__add__", exp.Sub: "__sub__", exp.Mul: "__mul__"}
_CASTS = {"DATE": "date", "DOUBLE": "float64", "FLOAT": "float64", "BIGINT": "int64",
          "INT": "int64", "DECIMAL": "decimal(38, 2)"}


@dataclass(frozen=True)
class Ref:
    """A column reference as written: ``dataset`` is None for a bare name."""

    dataset: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.dataset}.{self.name}" if self.dataset else self.name


def parse(text: str, where: str) -> exp.Expression:
    """``text`` as a sqlglot tree, checked against the language; ``where`` names the place
    (file, metric, field) in every error."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: an expression is required")
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except sqlglot.errors.ParseError as e:
        raise ConfigError(f"{where}: cannot read {text!r}: {str(e).splitlines()[0]}") from None
    _check(tree, text, where)
    return tree


def _check(node: exp.Expression, text: str, where: str) -> None:
    allowed = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Neg,
               exp.Paren, exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like,
               exp.Case, exp.If, exp.Coalesce, exp.Div, exp.Star, exp.Distinct, exp.Cast,
               exp.DataType, *AGGREGATES, *_COMPARE, *_ARITH)
    for n in node.walk():
        if not isinstance(n, allowed):
            raise ConfigError(f"{where}: {type(n).__name__.upper()} is not part of the metric "
                                  f"language (in {text!r}): use columns, literals, arithmetic, "
                                  "comparisons, AND/OR/NOT, CASE, COALESCE and SUM/COUNT/AVG/"
                                  "MIN/MAX/MEDIAN/QUANTILE")
        if isinstance(n, AGGREGATES) and n.find_ancestor(*AGGREGATES) is not None:
            raise ConfigError(f"{where}: an aggregate inside an aggregate in {text!r}")
        if isinstance(n, exp.Cast) and n.to.this.name not in _CASTS:
            raise ConfigError(f"{where}: CAST to {n.to.sql()} is not supported; one of "
                                  f"{', '.join(sorted(_CASTS))}")
        if isinstance(n, exp.Quantile):
            _share(n, text, where)
        if isinstance(n, exp.Column) and n.args.get("db"):
            raise ConfigError(f"{where}: {n.sql()!r}: write a column as name or "
                                  "dataset.name")


def _share(n: exp.Quantile, text: str, where: str) -> None:
    """QUANTILE's second argument: a written number from 0 to 1 (the same on every engine and
    in the OSI export; a column or an expression there is no portable SQL)."""
    p = n.args.get("quantile")
    ok = isinstance(p, exp.Literal) and not p.is_string
    if ok:
        try:
            ok = 0 <= Decimal(p.this) <= 1
        except ArithmeticError:
            ok = False
    if not ok:
        got = "nothing" if p is None else repr(p.sql())
        raise ConfigError(f"{where}: QUANTILE(x, p) in {text!r}: p is a written number from 0 "
                          f"to 1 (0.25, 0.5, 0.9), not {got}")


def literal(value: str) -> str:
    """``value`` written as a text literal of the language, quoted so that whatever it holds
    (a quote, a backslash, SQL) stays one value: a condition built from outside input is
    ``f"campaign = {literal(campaign_id)}"``, never the raw text pasted in."""
    return str(exp.Literal.string(str(value)).sql(dialect="duckdb"))


def columns(tree: exp.Expression) -> list[Ref]:
    """Every column the expression reads, in order of first appearance."""
    seen: dict[Ref, None] = {}
    for col in tree.find_all(exp.Column):
        seen[Ref(col.table or None, col.name)] = None
    return list(seen)


def is_aggregate(tree: exp.Expression) -> bool:
    return tree.find(*AGGREGATES) is not None


def aggregates_everything(tree: exp.Expression) -> bool:
    """True when every column sits inside an aggregate (a metric's measure must)."""
    return all(c.find_ancestor(*AGGREGATES) is not None for c in tree.find_all(exp.Column))


Resolver = Callable[[Ref], ir.Value]


def build(tree: exp.Expression, resolve: Resolver, *, where: ir.BooleanValue | None = None
          ) -> ir.Value:
    """The Ibis value of ``tree``; ``where`` filters the rows every aggregate reads.

    Types are checked here, before any engine sees the query: arithmetic on numbers,
    comparisons between values of one family (text, numbers, dates, true/false), conditions
    that are true or false — so ``board > 5`` is a ConfigError naming the expression, never
    an engine's conversion error at run time."""
    try:
        return _Builder(resolve, where).value(tree)
    except ConfigError:
        raise
    except (IbisError, TypeError, ValueError) as e:  # what the checks below did not foresee
        raise ConfigError(f"{tree.sql()!r}: {str(e).splitlines()[0]}") from None


def condition(tree: exp.Expression, resolve: Resolver) -> ir.BooleanValue:
    """``tree`` as a row filter: it must be true or false, and a missing value is false."""
    try:
        return _Builder(resolve, None).cond(tree)  # type: ignore[no-any-return]
    except ConfigError:
        raise
    except (IbisError, TypeError, ValueError) as e:
        raise ConfigError(f"{tree.sql()!r}: {str(e).splitlines()[0]}") from None


def _family(v: Any) -> str:
    t = v.type()
    if t.is_null():
        return "null"
    if t.is_numeric():
        return "number"
    if t.is_string():
        return "text"
    if t.is_temporal():
        return "date"
    if t.is_boolean():
        return "true/false"
    return str(t)


def _same_family(n: exp.Expression, *values: Any) -> None:
    families = {_family(v) for v in values} - {"null"}
    if len(families) > 1:
        raise ConfigError(f"{n.sql()!r} compares {' with '.join(sorted(families))}: compare "
                          "values of one kind (text with text, numbers with numbers, dates "
                          "with dates)")


class _Builder:
    def __init__(self, resolve: Resolver, where: ir.BooleanValue | None) -> None:
        self.resolve = resolve
        self.where = where

    def value(self, n: exp.Expression) -> Any:  # noqa: C901, PLR0911, PLR0912 - one case per node
        if isinstance(n, exp.Paren):
            return self.value(n.this)
        if isinstance(n, exp.Column):
            return self.resolve(Ref(n.table or None, n.name))
        if isinstance(n, exp.Literal):
            return ibis.literal(n.this) if n.is_string else ibis.literal(_number(n.this))
        if isinstance(n, exp.Boolean):
            return ibis.literal(bool(n.this))
        if isinstance(n, exp.Null):
            return ibis.null()
        if isinstance(n, exp.Cast):
            inner = n.this
            target = _CASTS[n.to.this.name]
            if target == "date":
                if not (isinstance(inner, exp.Literal) and inner.is_string):
                    raise ConfigError(f"{n.sql()!r}: only a written date (DATE '2026-01-31') "
                                      "is read as a date")
                try:
                    return ibis.literal(dt.date.fromisoformat(inner.this))
                except ValueError:
                    raise ConfigError(f"{n.sql()!r}: not a date YYYY-MM-DD") from None
            v = self.value(inner)
            if _family(v) not in ("number", "null"):
                raise ConfigError(f"{n.sql()!r}: only numbers are cast to {n.to.sql()}")
            return v.cast(target)
        if isinstance(n, exp.Neg):
            return -self._number(n, self.value(n.this))
        if type(n) in _ARITH:
            return getattr(self._number(n, self.value(n.this)), _ARITH[type(n)])(
                self._number(n, self.value(n.expression)))
        if isinstance(n, exp.Div):
            # in double on every engine: Spark divides decimals at a fixed scale (6 digits),
            # DuckDB in double
            num = _double(self._number(n, self.value(n.this)))
            den = _double(self._number(n, self.value(n.expression)))
            return num / den.nullif(0)
        if type(n) in _COMPARE:
            left, right = self.value(n.this), self.value(n.expression)
            if "null" in (_family(left), _family(right)):
                raise ConfigError(f"{n.sql()!r}: a comparison with NULL is never true; write "
                                  "IS NULL or IS NOT NULL")
            _same_family(n, left, right)
            return self._truth(getattr(left, _COMPARE[type(n)])(right))
        if isinstance(n, exp.And):
            return self.cond(n.this) & self.cond(n.expression)
        if isinstance(n, exp.Or):
            return self.cond(n.this) | self.cond(n.expression)
        if isinstance(n, exp.Not):
            return ~self.cond(n.this)
        if isinstance(n, exp.Is):
            return self.value(n.this).isnull()
        if isinstance(n, exp.In):
            values = [self.value(v) for v in n.expressions]
            v = self.value(n.this)
            _same_family(n, v, *values)
            return self._truth(v.isin(values))
        if isinstance(n, exp.Between):
            v, low, high = self.value(n.this), self.value(n.args["low"]), self.value(n.args["high"])
            _same_family(n, v, low, high)
            return self._truth(v.between(low, high))
        if isinstance(n, exp.Like):
            pattern = n.expression
            v = self.value(n.this)
            if not (isinstance(pattern, exp.Literal) and pattern.is_string) or \
                    _family(v) != "text":
                raise ConfigError(f"{n.sql()!r}: LIKE matches text against a written pattern "
                                  "('ch%')")
            return self._truth(v.like(pattern.this))
        if isinstance(n, exp.Case | exp.If):
            return self._case(n)
        if isinstance(n, exp.Coalesce):
            return ibis.coalesce(self.value(n.this), *(self.value(e) for e in n.expressions))
        if isinstance(n, AGGREGATES):
            return self._aggregate(n)
        raise ConfigError(f"{n.sql()!r} cannot be built")  # _check keeps this unreachable

    def cond(self, n: exp.Expression) -> Any:
        v = self.value(n)
        if _family(v) != "true/false":
            raise ConfigError(f"{n.sql()!r} is not a condition (true or false)")
        return v if isinstance(n, exp.Not | exp.And | exp.Or | exp.Is) else self._truth(v)

    @staticmethod
    def _number(n: exp.Expression, v: Any) -> Any:
        if _family(v) not in ("number", "null"):
            raise ConfigError(f"{n.sql()!r}: arithmetic is on numbers")
        return v

    @staticmethod
    def _truth(v: Any) -> Any:
        # a comparison with a missing value is false, never unknown
        return v.fill_null(False) if isinstance(v, ir.BooleanValue) else v

    def _case(self, n: exp.Expression) -> Any:
        if isinstance(n, exp.If):
            pairs = [(n.this, n.args["true"])]
            default = n.args.get("false")
        else:
            pairs = [(i.this, i.args["true"]) for i in n.args["ifs"]]
            default = n.args.get("default")
        case = ibis.cases(*((self.cond(c), self.value(v)) for c, v in pairs),
                          else_=self.value(default) if default is not None else None)
        return case

    def _aggregate(self, n: exp.Expression) -> Any:
        arg = n.this
        where = self.where
        if isinstance(n, exp.Count):
            if isinstance(arg, exp.Star):
                return _count_rows(self.resolve, where)
            if isinstance(arg, exp.Distinct):
                (inner,) = arg.expressions
                return self.value(inner).nunique(where=where)
            return self.value(arg).count(where=where)
        v = self.value(arg)
        if isinstance(n, QUANTILES):
            # in double: Spark's percentile reads numbers as double, and so DuckDB's answer
            # is the same number
            if _family(v) != "number":
                raise ConfigError(f"{n.sql()!r}: {type(n).__name__.upper()} is of numbers")
            share = 0.5 if isinstance(n, exp.Median) else float(n.args["quantile"].this)
            return v.cast("float64").quantile(share, where=where)
        if isinstance(n, exp.Avg):  # Spark averages decimals as decimals, DuckDB in double
            v = _double(v)
        method = {exp.Sum: "sum", exp.Avg: "mean", exp.Min: "min", exp.Max: "max"}[type(n)]
        return getattr(v, method)(where=where)


def _double(v: Any) -> Any:
    return v.cast("float64") if v.type().is_decimal() else v


def _count_rows(resolve: Resolver, where: ir.BooleanValue | None) -> Any:
    # COUNT(*) counts the rows of the dataset: a non-null literal counted over them
    one = resolve(Ref(None, "__row__"))
    return one.count(where=where)


def _number(text: str) -> int | Decimal:
    return int(text) if text.lstrip("-").isdigit() else Decimal(text)
