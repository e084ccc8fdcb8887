"""Who holds a security named in a risk story: the tenant's latest positions snapshot.

``holders(positions, codes, as_of)`` is one row per customer and security held (quantity > 0)
on the latest snapshot on or before ``as_of`` — the snapshot is chosen over the whole table,
not over the named securities, so a security nobody holds any more has no holders rather than
last month's. Market value is the value at risk; unrealised P&L is market value minus cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis.expr.types as ir

from caifu.pipelines.cards import snapshot_date


def holders(positions: ir.Table, codes: Sequence[str], as_of: date) -> ir.Table:
    snap = snapshot_date(positions, as_of)
    p = positions.join(snap, positions.snapshot_date == snap.snapshot_date)
    p = p.filter(p.security_code.isin(list(codes)))
    h = p.group_by(["customer_id", "security_code", "snapshot_date"]).aggregate(
        quantity=p.quantity.sum().cast("decimal(20, 0)"),
        cost=p.cost.sum().cast("decimal(18, 2)"),
        market_value=p.market_value.sum().cast("decimal(18, 2)"))
    h = h.filter(h.quantity > 0)
    return h.mutate(unrealised_pnl=(h.market_value - h.cost).cast("decimal(18, 2)")
                    ).order_by(["security_code", "customer_id"])
