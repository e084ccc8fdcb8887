"""Segment membership: a boolean expression over features and tags, on any engine."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from caifu.core import expressions as ex
from caifu.pipelines.expressions import compile_expression
from caifu.pipelines.joins import left_join_customer


def segment_members(features: ir.Table, tags: ir.Table, expr: ex.Expr) -> ir.Table:
    """Rows of ``features`` (one per customer) for whom ``expr`` holds.

    ``tags`` holds the (customer_id, tag_id) pairs in force on the features' date. Each tag
    the expression names becomes a yes/no column joined on the customer.
    """
    t = features
    columns: dict[str, str] = {}
    for i, tag in enumerate(sorted(ex.tags_used(expr))):
        name = f"_tag_{i}"
        flag = (tags.filter(tags.tag_id == tag).select("customer_id").distinct()
                .mutate(**{name: ibis.literal(True)}))
        t = left_join_customer(t, flag)
        columns[tag] = name
    members = t.filter(compile_expression(t, expr, columns))
    return members.select(*features.columns)
