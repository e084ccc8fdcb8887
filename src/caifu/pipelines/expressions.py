"""Compile a parsed expression (``core.expressions``) into an Ibis boolean column.

Two-valued logic: every comparison with a missing value is false (not unknown), so ``not``
never loses a customer to NULL. Tags are read from boolean columns the caller joined on
(``tag_columns`` maps tag id → column name).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import ibis
import ibis.expr.types as ir

from caifu.core import expressions as ex


def _operand(table: ir.Table, o: ex.Operand) -> ir.Value:
    if isinstance(o, ex.Field):
        return table[o.name]
    return _literal(o.value)


def _literal(value: ex.Value) -> ir.Value:
    if isinstance(value, bool):
        return ibis.literal(value)
    if isinstance(value, Decimal):
        return ibis.literal(float(value))
    if isinstance(value, date):
        return ibis.date(value)
    return ibis.literal(value)


def _compare(left: ir.Value, op: str, right: ir.Value) -> ir.BooleanValue:
    match op:
        case "=":
            return left == right
        case "!=":
            return left != right
        case "<":
            return left < right
        case "<=":
            return left <= right
        case ">":
            return left > right
        case ">=":
            return left >= right
    raise AssertionError(op)


def compile_expression(table: ir.Table, expr: ex.Expr,
                       tag_columns: Mapping[str, str] | None = None) -> ir.BooleanValue:
    tags = tag_columns or {}

    def go(e: ex.Expr) -> ir.BooleanValue:
        match e:
            case ex.And(items):
                out = go(items[0])
                for item in items[1:]:
                    out = out & go(item)
                return out
            case ex.Or(items):
                out = go(items[0])
                for item in items[1:]:
                    out = out | go(item)
                return out
            case ex.Not(item):
                return ~go(item)
            case ex.TagRef(tag, _):
                return table[tags[tag]].fill_null(False)
            case ex.BoolField(field):
                return table[field.name].fill_null(False)
            case ex.Compare(left, op, right):
                return _compare(_operand(table, left), op, _operand(table, right)).fill_null(False)
            case ex.IsNull(operand, negated):
                value = _operand(table, operand)
                return value.notnull() if negated else value.isnull()
            case ex.In(operand, values, negated):
                value = _operand(table, operand)
                hit = value.isin([_literal(v) for v in values]).fill_null(False)
                return (~hit & value.notnull()) if negated else hit
            case ex.Between(operand, low, high, negated):
                value = _operand(table, operand)
                inside = value.between(_literal(low), _literal(high)).fill_null(False)
                return (~inside & value.notnull()) if negated else inside
        raise AssertionError(e)

    return go(expr)
