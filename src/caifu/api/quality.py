"""Data quality over HTTP: freshness per table with the open alerts, and the per-batch
history — tenant-wide operational data, for tenant-wide roles (``quality.read``). The same
services as ``caifu quality`` (``services/quality``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.quality import QualityHistory, QualityOverview
from caifu.services.platform import access
from caifu.services.quality import history as quality

router = APIRouter()


@router.get("/v1/quality", operation_id="quality_overview", tags=["quality"],
            response_model=QualityOverview, dependencies=[Depends(require("quality.read"))])
def overview(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Per table loaded: the newest business date and its lag behind the tenant's today;
    and the open data-quality alerts."""
    tenant = access.tenant_of(p)
    return {"tables": quality.freshness(c, tenant), "alerts": quality.alerts(c, tenant, "open")}


@router.get("/v1/quality/history", operation_id="quality_history", tags=["quality"],
            response_model=QualityHistory, dependencies=[Depends(require("quality.read"))])
def history(p: CurrentPrincipal, c: ContainerDep,
            table: Annotated[str | None, Query(max_length=64, pattern="^[a-z_0-9]+$",
                                               description="only this contract table")] = None,
            since: Annotated[dt.date | None, Query(
                description="batches started on or after this date (UTC)")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Committed batches, newest first: rows, quarantine rate, null rates per column and the
    business dates each load wrote."""
    return {"items": quality.history(c, access.tenant_of(p), table, since, limit)}
