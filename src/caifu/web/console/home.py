"""Home — the governed KPIs — and a metric's page: its definition and lineage, its figures by
month or cut by one dimension.

    GET /console/                        the headline metrics, 12 months by month (?to=DATE)
    GET /console/metrics/{name}          definition, version, hash, level, owner, dimensions,
                                         column lineage; the figures by month
    GET /console/metrics/{name}?by=DIM   the figures of the 12 months cut by DIM (branch,
                                         advisor, channel …): a table and a chart; an htmx
                                         request gets that section only

Every figure comes from the metric layer for the signed-in caller (``services/metrics``:
scope, small level-3 groups withheld, audit): one ``answers`` call per page, never a query here.
A figure refused to the caller's role (tenant-wide, for an advisor) is said so, with a 403.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi import Path as PathParam

from caifu.api.deps import ContainerDep
from caifu.core.identity import Principal
from caifu.pipelines.metrics.compile import periods
from caifu.services.metrics.board import board, span
from caifu.services.metrics.catalog import catalog as catalog_of
from caifu.services.metrics.lineage import lineage_of
from caifu.services.metrics.query import MIN_GROUP_SIZE, Answer, answer, refusal
from caifu.services.platform.access import tenant_of
from caifu.web.console.auth import allowed
from caifu.web.console.pages import lang_of, render
from caifu.web.console.routing import console_router

router = console_router()
KpiReader = Annotated[Principal, Depends(allowed("kpis.read"))]
DRILLS = ("branch", "advisor", "channel")  # the home page's drill-down links
MetricName = Annotated[str, PathParam(max_length=64, pattern=r"^[a-z][a-z0-9_]{1,63}$")]
Dimension = Annotated[str | None, Query(max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
UpTo = Annotated[dt.date | None, Query(description="the last day of the 12 months")]
CHART_BARS = 30  # a cut's chart shows the largest groups; the table shows them all


def plain(v: Any) -> str:
    """A value as the API's JSON writes it (decimals as fixed-point text): the page's
    ``data-value``, so a figure can be checked against ``GET /v1/metrics``."""
    if v is None:
        return ""
    return format(v, "f") if isinstance(v, Decimal) else str(v)


def _number(v: Any) -> float | None:
    return None if v is None else float(v)


def _cell(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"value": None, "plain": "", "suppressed": False, "customers": None}
    return {"value": row["value"], "plain": plain(row["value"]),
            "suppressed": row["suppressed"], "customers": row["customers"]}


def _series(a: Answer, months: list[dt.date]) -> list[dict[str, Any]]:
    rows = {r["period"]: r for r in a.rows}
    return [{"period": m, **_cell(rows.get(m))} for m in months]


def _tile(a: Answer, months: list[dt.date], lang: str) -> dict[str, Any]:
    m = a.metric
    cells = _series(a, months)
    last, prev = cells[-1], cells[-2] if len(cells) > 1 else None
    change = None
    if prev is not None and last["value"] is not None and prev["value"] not in (None, 0):
        change = float(last["value"]) / float(prev["value"]) - 1
    dims = a.catalog.dimensions_of(m)
    return {"name": m.name, "label": m.label.get(lang) or m.name, "format": m.format,
            "level": a.level, "version": m.version,
            "hash": a.catalog.definition_hash(m.name), "cells": cells, "last": last,
            "change": change, "drills": [d for d in DRILLS if d in dims],
            "chart": {"type": "spark", "format": m.format,
                      "x": [c["period"].strftime("%Y-%m") for c in cells],
                      "y": [None if c["suppressed"] else _number(c["value"]) for c in cells]}}


@router.get("/console/", name="console_home")
def home(request: Request, c: ContainerDep, p: KpiReader, to: UpTo = None) -> Response:
    lang = lang_of(request)
    b = board(c, p, to)
    months = [d for d, _, _ in periods(b.start, b.end, "month")]
    cat = catalog_of(c, tenant_of(p))
    refused = [{"name": n, "label": cat.metric(n).label.get(lang) or n, "why": why}
               for n, why in b.refused.items()]
    return render(request, "home.html", tiles=[_tile(a, months, lang) for a in b.answers],
                  months=months, start=b.start, end=b.end, refused=refused,
                  k=MIN_GROUP_SIZE, charts=True)


def _definition(cat: Any, name: str, lang: str) -> dict[str, Any]:
    m = cat.metric(name)
    return {"name": m.name, "label": m.label.get(lang) or m.name,
            "description": m.description.get(lang) or m.description.get("zh", ""),
            "kind": m.kind, "format": m.format, "version": m.version,
            "hash": cat.definition_hash(m.name), "catalog": cat.version, "level": cat.level(m),
            "owner": m.owner, "dataset": m.dataset, "measure": m.measure, "filter": m.filter,
            "expr": m.expr, "valid": " … ".join(x for x in (m.valid_from, m.valid_to) if x),
            "uses": list(m.uses),
            "dimensions": [{"name": d, "label": cat.dimensions[d].label.get(lang) or d}
                           for d in cat.dimensions_of(m)]}


def _lineage(c: Any, tenant: str, name: str) -> dict[str, Any]:
    lin = lineage_of(c, tenant).metrics[name].plain()
    columns = []
    for output, edges in lin["columns"].items():  # type: ignore[union-attr]
        columns.append({"output": output, "inputs": [
            {**e, "table": e["source"].rpartition(".")[0]} for e in edges]})
    return {"rule": lin["rule"], "columns": columns}


def _figures(a: Answer, lang: str, by: str | None) -> dict[str, Any]:
    m = a.metric
    if by is None:
        months = [d for d, _, _ in periods(a.query.start, a.query.end, "month")]
        cells = _series(a, months)
        return {"by": None, "cells": cells, "chart": {
            "type": "line", "format": m.format, "name": m.label.get(lang) or m.name,
            "x": [x["period"].strftime("%Y-%m") for x in cells],
            "y": [None if x["suppressed"] else _number(x["value"]) for x in cells]}}
    rows = [{"group": r[by], **_cell(r)} for r in a.rows]
    rows.sort(key=lambda r: (r["value"] is None, -(_number(r["value"]) or 0.0),
                             str(r["group"])))
    bars = [r for r in rows if r["value"] is not None][:CHART_BARS]
    return {"by": by, "label": a.catalog.dimensions[by].label.get(lang) or by, "rows": rows,
            "chart": {"type": "bar", "format": m.format, "name": m.label.get(lang) or m.name,
                      "x": [str(r["group"]) for r in bars][::-1],
                      "y": [_number(r["value"]) for r in bars][::-1]}}


@router.get("/console/metrics/{name}", name="console_metric")
def metric(request: Request, c: ContainerDep, p: KpiReader, name: MetricName,
           by: Dimension = None, to: UpTo = None) -> Response:
    lang = lang_of(request)
    tenant = tenant_of(p)
    cat = catalog_of(c, tenant)
    definition = _definition(cat, name, lang)
    start, end = span(c, to)
    why = refusal(cat, cat.metric(name), p)
    figures = None
    if why is None:
        a = answer(c, p, name, by=(by,) if by else (), grain="all" if by else "month",
                   start=start, end=end)
        figures = _figures(a, lang, by)
    block = "figures" if request.headers.get("hx-request") else None
    return render(request, "metric.html", 403 if why else 200, block=block,
                  m=definition, lineage=_lineage(c, tenant, name), figures=figures,
                  refused=why, start=start, end=end, to=to, k=MIN_GROUP_SIZE, charts=True)
