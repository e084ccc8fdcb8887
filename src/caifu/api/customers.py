"""Customer routes: customer 360 (and search, data-subject requests' neighbours)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam

from caifu.api.deps import ContainerDep, CurrentPrincipal
from caifu.core.errors import ConfigError
from caifu.services import access

router = APIRouter()


@router.get("/v1/customers/{customer_id}", operation_id="get_customer", tags=["customers"])
def get_customer(customer_id: Annotated[str, PathParam(max_length=32)], p: CurrentPrincipal,
                 c: ContainerDep,
                 unmask: Annotated[bool, Query(description="compliance only; needs X-Caifu-Reason")] = False,
                 reason: Annotated[str, Header(
                     alias="X-Caifu-Reason", max_length=1500,
                     description="why (audited); UTF-8, percent-encoded: HTTP headers are ASCII")] = ""
                 ) -> dict[str, Any]:
    """Customer 360: master data (level 3 masked unless unmasked), profile features, tags
    with evidence and their history — for customers in the caller's scope; 404 otherwise."""
    try:
        text_reason = unquote(reason, errors="strict")
    except UnicodeDecodeError:
        raise ConfigError("X-Caifu-Reason: not percent-encoded UTF-8") from None
    return access.customer_360(c, p, customer_id, unmask=unmask, reason=text_reason)
