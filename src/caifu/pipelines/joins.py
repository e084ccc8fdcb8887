"""Joins every per-customer pipeline needs."""

from __future__ import annotations

import ibis.expr.types as ir


def left_join_customer(base: ir.Table, part: ir.Table | None) -> ir.Table:
    """``base`` left-joined with ``part`` on customer_id, keeping one customer_id column.

    Ibis keeps the right key as ``customer_id_right``; a second such join would collide.
    """
    if part is None:
        return base
    joined = base.left_join(part, base.customer_id == part.customer_id)
    return joined.select(base, *(part[c] for c in part.columns if c != "customer_id"))
