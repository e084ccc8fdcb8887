"""The per-customer value table and its roll-ups: efficiency = CLV − (acquisition + retention).

``customer_value_table`` joins the CLV estimate and the costs of ``analytics.value`` into the
lake table ``customer_value`` (schema ``CUSTOMER_VALUE_SCHEMA``). Money is rounded to the fen
once, per component; totals and efficiency are exact sums of the rounded components, so every
roll-up adds up to the whole to the fen. ``rollup`` groups it by channel, acquisition campaign,
advisor, branch or opening cohort (Ibis); ``distribution`` summarises a column (numpy).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from caifu.analytics.value import NONE_GROUP, ROLLUPS, ClvEstimate

MONEY = pa.decimal128(18, 2)
CUSTOMER_VALUE_SCHEMA = pa.schema([
    ("as_of", pa.date32()), ("customer_id", pa.string()), ("channel", pa.string()),
    ("branch_id", pa.string()), ("advisor_id", pa.string()), ("cohort", pa.string()),
    ("opened_on", pa.date32()), ("closed_on", pa.date32()),
    ("acquisition_campaign_id", pa.string()),
    ("frequency", pa.int64()), ("recency_days", pa.float64()), ("age_days", pa.float64()),
    ("monetary_value", MONEY), ("p_alive", pa.float64()),
    ("expected_transactions", pa.float64()), ("clv", MONEY), ("clv_basis", pa.string()),
    ("revenue_window", MONEY),
    ("acquisition_channel_cost", MONEY), ("acquisition_campaign_cost", MONEY),
    ("acquisition_cost", MONEY),
    ("retention_touch_cost", MONEY), ("retention_campaign_cost", MONEY),
    ("retention_service_cost", MONEY), ("retention_cost", MONEY),
    ("efficiency", MONEY),
])
BASIS = ("model", "closed", "not_estimated")  # clv_basis: forecast, account closed, no fit


def _fen(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return np.round(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) * 100).astype(np.int64)


def _money(fen: np.ndarray) -> pa.Array:
    """Decimal(18,2) from integer fen, exactly (two's-complement 128-bit little-endian)."""
    buf = np.empty((len(fen), 2), dtype=np.int64)
    buf[:, 0] = fen
    buf[:, 1] = np.where(fen < 0, -1, 0)
    return pa.Array.from_buffers(MONEY, len(fen), [None, pa.py_buffer(buf.tobytes())])


def customer_value_table(as_of: dt.date, base: pa.Table, costs: pa.Table, est: ClvEstimate,
                         unit_days: int, window_months: int | None = None) -> pa.Table:
    """One row per customer of ``base`` (in customer order) — ``CUSTOMER_VALUE_SCHEMA``.

    With ``window_months`` and the estimate's ``active_months``, the retention window's
    costs are a run rate charged for the months each customer is expected to stay active
    over the CLV's horizon (discounted alike; 0 for a closed account): a ten-year CLV is not
    set against one year's retention. Otherwise they stand as the window's costs.
    """
    base = base.sort_by("customer_id")
    costs = costs.sort_by("customer_id")
    ids = base["customer_id"].to_pylist()
    if costs["customer_id"].to_pylist() != ids or est.customer_id.tolist() != ids:
        raise ValueError("base, costs and the CLV estimate must cover the same customers")
    n = len(ids)
    closed = np.asarray(base["closed_on"].is_valid().to_numpy(zero_copy_only=False), bool)
    basis = np.where(closed, "closed", "model" if est.estimated else "not_estimated")
    alive = np.where(closed, 0.0, est.p_alive)
    expected = np.where(closed, 0.0, est.expected_transactions)
    value = np.where(closed, 0.0, est.clv)

    scale = np.ones(n)
    if window_months is not None and est.active_months is not None:
        scale = np.where(closed, 0.0, np.asarray(est.active_months) / window_months)
    fen = {name: _fen(costs[name].to_numpy(zero_copy_only=False)) for name in (
        "acquisition_channel_cost", "acquisition_campaign_cost", "revenue_past")}
    fen.update({name: _fen(np.asarray(costs[name].to_numpy(zero_copy_only=False), np.float64)
                           * scale) for name in (
        "retention_touch_cost", "retention_campaign_cost", "retention_service_cost")})
    clv_fen = _fen(value)
    acquisition = fen["acquisition_channel_cost"] + fen["acquisition_campaign_cost"]
    retention = (fen["retention_touch_cost"] + fen["retention_campaign_cost"]
                 + fen["retention_service_cost"])
    columns: dict[str, pa.Array] = {
        "as_of": pa.array([as_of] * n, pa.date32()),
        "customer_id": pa.array(ids, pa.string()),
        **{name: base[name].combine_chunks().cast(CUSTOMER_VALUE_SCHEMA.field(name).type)
           for name in ("channel", "branch_id", "advisor_id", "cohort", "opened_on",
                        "closed_on")},
        "acquisition_campaign_id": costs["acquisition_campaign_id"].combine_chunks().cast(
            pa.string()),
        "frequency": pa.array(est.frequency, pa.int64()),
        "recency_days": pa.array(est.recency * unit_days, pa.float64()),
        "age_days": pa.array(est.T * unit_days, pa.float64()),
        "monetary_value": _money(_fen(est.monetary_value)),
        "p_alive": pa.array(alive, pa.float64()),
        "expected_transactions": pa.array(expected, pa.float64()),
        "clv": _money(clv_fen), "clv_basis": pa.array(basis, pa.string()),
        "revenue_window": _money(fen["revenue_past"]),
        "acquisition_channel_cost": _money(fen["acquisition_channel_cost"]),
        "acquisition_campaign_cost": _money(fen["acquisition_campaign_cost"]),
        "acquisition_cost": _money(acquisition),
        "retention_touch_cost": _money(fen["retention_touch_cost"]),
        "retention_campaign_cost": _money(fen["retention_campaign_cost"]),
        "retention_service_cost": _money(fen["retention_service_cost"]),
        "retention_cost": _money(retention),
        "efficiency": _money(clv_fen - acquisition - retention),
    }
    return pa.table(columns, schema=CUSTOMER_VALUE_SCHEMA)


def rollup(per_customer: ir.Table, by: str) -> ir.Table:
    """Customers, CLV, costs and efficiency per ``by`` (a key of ``ROLLUPS``), ordered by
    the group; customers without one (no advisor, no acquisition campaign) are ``(none)``.
    Sums are exact decimals; means and the share with negative efficiency are floats."""
    if by not in ROLLUPS:
        raise ValueError(f"unknown roll-up {by!r}; one of {', '.join(ROLLUPS)}")
    t = per_customer.mutate(group=per_customer[ROLLUPS[by]].fill_null(NONE_GROUP))
    g = t.group_by("group").aggregate(
        customers=t.count(), clv=t.clv.sum(), acquisition_cost=t.acquisition_cost.sum(),
        acquisition_channel_cost=t.acquisition_channel_cost.sum(),
        acquisition_campaign_cost=t.acquisition_campaign_cost.sum(),
        retention_cost=t.retention_cost.sum(), efficiency=t.efficiency.sum(),
        revenue_window=t.revenue_window.sum(),
        negative=(t.efficiency < 0).cast("int64").sum())
    n = g.customers.cast("float64")
    return g.select(
        "group", "customers", "clv", clv_mean=g.clv.cast("float64") / n,
        acquisition_cost=g.acquisition_cost, acquisition_channel_cost=g.acquisition_channel_cost,
        acquisition_campaign_cost=g.acquisition_campaign_cost,
        retention_cost=g.retention_cost, efficiency=g.efficiency,
        efficiency_mean=g.efficiency.cast("float64") / n,
        negative_share=g.negative.cast("float64") / n,
        revenue_window=g.revenue_window).order_by("group")


def totals(per_customer: ir.Table) -> ir.Table:
    """The whole base as one roll-up row (group ``all``)."""
    return rollup(per_customer.mutate(channel=ibis.literal("all")), "channel")


QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def distribution(values: Any) -> dict[str, float]:
    """count, mean, min, p10 … p99, max and the shares at zero and below it."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"count": 0}
    out = {"count": float(v.size), "mean": float(v.mean()), "min": float(v.min())}
    out.update({f"p{round(q * 100)}": float(x) for q, x in zip(
        QUANTILES, np.quantile(v, QUANTILES), strict=True)})
    out.update({"max": float(v.max()), "zero_share": float(np.mean(v == 0)),
                "negative_share": float(np.mean(v < 0))})
    return out
