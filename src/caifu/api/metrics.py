"""Governed metrics over HTTP: the catalog and one metric's answer, in the caller's scope —
the same definitions and query path as ``caifu metrics`` (``services/metrics``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.metrics import MetricAnswer, MetricCatalog
from caifu.services.metrics.query import catalog_listing

router = APIRouter()
Grain = Literal["day", "week", "month", "quarter", "year", "all"]


@router.get("/v1/metrics", operation_id="list_metrics", tags=["metrics"],
            response_model=MetricCatalog, dependencies=[Depends(require("kpis.read"))])
def list_metrics(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Every metric of the tenant: id, version, owner, data level, definition hash, cuts."""
    return catalog_listing(c, p)


@router.get("/v1/metrics/{name}", operation_id="query_metric", tags=["metrics"],
            response_model=MetricAnswer, dependencies=[Depends(require("kpis.read"))])
def query_metric(name: str, p: CurrentPrincipal, c: ContainerDep,
                 by: Annotated[list[str] | None, Query(
                     description="dimensions to cut by (repeat the parameter)")] = None,
                 grain: Grain = "month",
                 start: Annotated[dt.date | None, Query(alias="from")] = None,
                 end: Annotated[dt.date | None, Query(alias="to")] = None,
                 where: Annotated[str | None, Query(
                     max_length=1000, description="a condition on dimensions, e.g. "
                     "board = 'chinext' AND province IN ('SH', 'ZJ')")] = None
                 ) -> dict[str, Any]:
    """The metric by period (and dimensions) for the customers in the caller's scope; a
    level-3 row behind fewer than ``min_group_size`` customers is withheld."""
    from caifu.services.metrics.query import answer

    return answer(c, p, name, by=tuple(by or ()), grain=grain, start=start, end=end,
                  where=where).plain()
