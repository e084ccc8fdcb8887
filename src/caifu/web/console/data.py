"""Data pages: the data dictionary, data quality, the ingest log.

    GET /console/data/dictionary   tables and columns: level, PII, descriptions, used by
                                   (``dictionary.read``, every tenant role)
    GET /console/data/quality      per table: newest date, lag, last load; open alerts; the
                                   quarantine rate and data lag of each load (``quality.read``)
    GET /console/data/ingest       the newest ingest batches with their counts and reasons
                                   (``ingest.read``)

The same services and the same role actions as ``GET /v1/dictionary``, ``/v1/quality``,
``/v1/quality/history`` and ``/v1/ingest/batches``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from caifu.api.deps import ContainerDep
from caifu.core.identity import Principal
from caifu.services.ingest import uploads
from caifu.services.metrics import dictionary
from caifu.services.platform.access import tenant_of
from caifu.services.quality import history as quality
from caifu.web.console.auth import allowed
from caifu.web.console.pages import lang_of, render
from caifu.web.console.routing import console_router
from caifu.web.console.texts import text

router = console_router()
HISTORY = 100  # loads in the quality chart
BATCHES = 100  # rows of the ingest log


@router.get("/console/data/dictionary", name="console_dictionary")
def data_dictionary(request: Request, c: ContainerDep,
                    p: Annotated[Principal, Depends(allowed("dictionary.read"))]) -> Response:
    d = dictionary.for_caller(c, p)
    lang = lang_of(request)
    for t in d["tables"]:
        t["anchor"] = "t-" + t["name"].replace(":", "-")
        t["text"] = t["description"].get(lang) or t["description"]["zh"]
        for col in t["columns"]:
            col["text"] = col["description"].get(lang) or col["description"]["zh"]
    return render(request, "dictionary.html", d=d)


def _age(b: dict[str, Any]) -> int | None:
    """Days between the newest business date a load wrote and the day it ran."""
    newest, started = b["newest_date"], b["started_at"]
    if newest is None or started is None:
        return None
    day = started.date() if isinstance(started, dt.datetime) else started
    return (day - newest).days


@router.get("/console/data/quality", name="console_quality")
def data_quality(request: Request, c: ContainerDep,
                 p: Annotated[Principal, Depends(allowed("quality.read"))]) -> Response:
    tenant = tenant_of(p)
    lang = lang_of(request)
    loads = list(reversed(quality.history(c, tenant, limit=HISTORY)))  # oldest first
    chart = {"type": "loads",
             "x": [f"{b['started_at']:%m-%d %H:%M} {b['table']}" for b in loads],
             "rate": [round(100 * b["quarantine_rate"], 3) for b in loads],
             "age": [_age(b) for b in loads],
             "names": {"rate": text(lang, "quality.series_rate"),
                       "age": text(lang, "quality.series_age")}}
    return render(request, "quality.html", tables=quality.status(c, tenant),
                  alerts=quality.alerts(c, tenant, "open"), loads=loads, chart=chart,
                  charts=True)


@router.get("/console/data/ingest", name="console_ingest")
def data_ingest(request: Request, c: ContainerDep,
                p: Annotated[Principal, Depends(allowed("ingest.read"))]) -> Response:
    batches = uploads.batches(c, tenant_of(p), BATCHES)
    for b in batches:
        b["top_reasons"] = sorted(b["reasons"].items(), key=lambda kv: -kv[1])[:3]
    return render(request, "ingest.html", batches=batches)
