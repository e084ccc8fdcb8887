"""Value: per-customer CLV and efficiency, roll-ups, the fund-redemption answers and the
reassurance list — each within the caller's scope (``services/value_views``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.value import (
    CustomerValuePage,
    ReassurancePage,
    RedemptionAnswers,
    ValueRollup,
)
from caifu.services.value import views

router = APIRouter()
Page = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/v1/value/customers", operation_id="list_customer_values", tags=["value"],
            response_model=CustomerValuePage, dependencies=[Depends(require("value.read"))])
def list_customer_values(p: CurrentPrincipal, c: ContainerDep,
                         sort: Literal["clv", "efficiency", "p_alive", "revenue_window"] = "clv",
                         limit: Page = 100, offset: Offset = 0) -> dict[str, Any]:
    """CLV (BG/NBD + Gamma-Gamma), acquisition and retention cost and efficiency per
    customer, from the newest value run, highest first."""
    return views.customer_values(c, p, sort, limit, offset)


@router.get("/v1/value/rollups/{by}", operation_id="value_rollup", tags=["value"],
            response_model=ValueRollup, dependencies=[Depends(require("value.read"))])
def value_rollup(by: Literal["channel", "campaign", "advisor", "branch", "cohort"],
                 p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Efficiency roll-up by channel, campaign, advisor, branch or cohort."""
    return views.rollup(c, p, by)


@router.get("/v1/value/redemption", operation_id="redemption_answers", tags=["value"],
            response_model=RedemptionAnswers, response_model_exclude_unset=True,
            dependencies=[Depends(require("value.redemption"))])
def redemption_answers(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Which funds were redeemed, how redeemers differ from holders who stayed, holding
    periods by fund type, and the redemption waves — from the newest redemption job."""
    return views.redemption_answers(c, p)


@router.get("/v1/value/reassurance", operation_id="reassurance_list", tags=["value"],
            response_model=ReassurancePage, dependencies=[Depends(require("value.read"))])
def reassurance_list(p: CurrentPrincipal, c: ContainerDep, limit: Page = 100,
                     offset: Offset = 0) -> dict[str, Any]:
    """Fund holders to reassure before they redeem, ranked, with reasons."""
    return views.reassurance(c, p, limit, offset)
