"""Money columns in Ibis expressions, one definition for every pipeline.

Amounts are ``decimal(18, 2)`` yuan; the cast rounds half away from zero on DuckDB, the same
rule as ``caifu.core.money`` (which formats and rounds plain values; core may not import
Ibis, so the column versions live here).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

MONEY = "decimal(18, 2)"


def money(value: ir.Value) -> ir.Value:
    """``value`` as an amount in yuan, two decimals."""
    return value.cast(MONEY)


def zero_money() -> ir.Value:
    return ibis.literal(0).cast(MONEY)


def no_money() -> ir.Value:
    """An unknown amount (NULL), typed as money so a CASE keeps its type."""
    return ibis.null(MONEY)


def ratio(part: ir.NumericValue, whole: ir.NumericValue) -> ir.FloatingValue:
    """``part / whole`` as a float; null when the whole is unknown, zero or negative (a P&L
    over an unknown cost is unknown, not infinite)."""
    return ibis.cases((whole > 0, part.cast("float64") / whole.cast("float64")),
                      else_=ibis.null("float64"))
