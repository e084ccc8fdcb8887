"""Next best action for one customer, within the caller's scope (issue 16)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.recommend import RecommendationList
from caifu.services.recommend import serving

router = APIRouter()


@router.get("/v1/customers/{customer_id}/recommendations", operation_id="get_recommendations",
            tags=["customers"], response_model=RecommendationList,
            dependencies=[Depends(require("recommendations.read"))])
def get_recommendations(customer_id: Annotated[str, PathParam(max_length=32)],
                        p: CurrentPrincipal, c: ContainerDep, request: Request,
                        k: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    """The customer's published recommendations, best first, each judged again now against
    his newest assessment, consent and the item's validity (refused ones are counted by rule
    and their places filled from the spares); with the reason, the suitability verdict and
    the text an advisor sends. Audited (``recommend_view``) and logged (surface ``api``).
    404 for a customer outside the caller's scope."""
    served = serving.for_api(c, p, customer_id, k, str(request.base_url))
    return served.as_dict()
