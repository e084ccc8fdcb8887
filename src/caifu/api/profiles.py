"""Customer routes: customer 360 and customer search (data-subject requests are next door)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError

from caifu.api.deps import ContainerDep, CurrentPrincipal, json_response, reason_text, require
from caifu.api.schemas.profiles import (
    CustomerPage,
    CustomerView,
    SegmentList,
    SegmentMembers,
    TagList,
)
from caifu.services.platform import access

router = APIRouter()

ReasonHeader = Annotated[str, Header(
    alias="X-Caifu-Reason", max_length=1500,
    description="why (audited); UTF-8, percent-encoded: HTTP headers are ASCII")]


# encoded by json_response (a third of the serving time saved), so documented, not validated:
# tests/api/platform/test_schemas.py checks a real answer against CustomerView
@router.get("/v1/customers/{customer_id}", operation_id="get_customer", tags=["customers"],
            dependencies=[Depends(require("customers.read"))], response_class=Response,
            responses={200: {"model": CustomerView, "description": "the customer 360"}})
def get_customer(customer_id: Annotated[str, PathParam(max_length=32)], p: CurrentPrincipal,
                 c: ContainerDep,
                 unmask: Annotated[bool, Query(description="compliance only; needs X-Caifu-Reason")] = False,
                 reason: ReasonHeader = "") -> Response:
    """Customer 360: master data (level 3 masked unless unmasked), profile features, tags
    with evidence and their history, and the customer's card (holdings, recent trades, P&L,
    lifecycle, scores, suitability; ``null`` with a note before the first ``caifu cards``)
    — for customers in the caller's scope; 404 otherwise."""
    return json_response(access.customer_360(c, p, customer_id, unmask=unmask,
                                             reason=reason_text(reason)))


Key = Annotated[str | None, Query(max_length=32)]


@router.get("/v1/customers", operation_id="search_customers", tags=["customers"],
            response_model=CustomerPage, dependencies=[Depends(require("customers.search"))])
def search_customers(
        p: CurrentPrincipal, c: ContainerDep,
        customer_id: Key = None, customer_id_prefix: Key = None,
        mobile_last4: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
        mobile_first3: Annotated[str | None, Query(pattern=r"^1[3-9]\d$",
                                                   description="only with mobile_last4")] = None,
        branch_id: Key = None, advisor_id: Key = None,
        tag_id: Annotated[str | None, Query(max_length=64)] = None,
        stage: Annotated[str | None, Query(max_length=32, description="lifecycle stage")] = None,
        mobile: Annotated[str | None, Query(max_length=20, description=(
            "full number: compliance only, with X-Caifu-Reason; audited"))] = None,
        id_number: Annotated[str | None, Query(max_length=32, description=(
            "full ID number: compliance only, with X-Caifu-Reason; audited"))] = None,
        name: Annotated[str | None, Query(max_length=100, description=(
            "exact name: compliance only, with X-Caifu-Reason; audited"))] = None,
        limit: Annotated[int, Query(ge=1, le=access.SEARCH_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        reason: ReasonHeader = "") -> dict[str, Any]:
    """Customers in the caller's scope matching every key given, masked, a page at a time
    (``total``, ``limit``, ``offset``, ``items``). Masked keys are for anyone; the full
    mobile, ID number or name only for a role that may unmask, with a reason — such a
    search is audited (the keys, the customers returned and the reason, never the value)."""
    q = access.SearchQuery(customer_id, customer_id_prefix, mobile_last4, mobile_first3,
                           branch_id, advisor_id, tag_id, stage, mobile, id_number, name)
    try:
        return access.search(c, p, q, reason=reason_text(reason), limit=limit, offset=offset)
    except access.SearchQueryError as exc:  # the shape of FastAPI's own 422: field by field
        where = {"X-Caifu-Reason": ("header", "X-Caifu-Reason"), "query": ("query",)}
        raise RequestValidationError([
            {"loc": where.get(f, ("query", f)), "msg": problem, "type": "value_error"}
            for f, problem in exc.problems]) from None


@router.get("/v1/tags", operation_id="list_tags", tags=["tags"], response_model=TagList,
            dependencies=[Depends(require("tags.read"))])
def list_tags(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Tag definitions in force (id, name, kind, version) and how many customers in the
    caller's scope hold each now — the metric ``tag_holders`` (aggregates, no customer ids)."""
    from caifu.services.profiles.figures import tag_holders
    from caifu.services.profiles.tag_definitions import load_definitions

    definitions, _ = load_definitions(c, access.tenant_of(p))
    held = tag_holders(c, p)
    return {"items": [{"tag_id": d.id, "name": d.name, "kind": d.kind, "version": d.version,
                       "customers": held.get(d.id)} for d in definitions],
            "metrics": held.metrics}


@router.get("/v1/segments", operation_id="list_segments", tags=["segments"],
            response_model=SegmentList, dependencies=[Depends(require("segments.read"))])
def list_segments(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Segments: id, name, expression and the size on the newest build date — members in the
    caller's scope, the metric ``segment_size``."""
    from caifu.services.profiles.figures import segment_sizes
    from caifu.services.profiles.segments import Segments

    rows = Segments(c).list(access.tenant_of(p))
    day, sizes, sized = segment_sizes(c, p)
    return {"items": [{"segment_id": r["segment_id"], "name": r["name"],
                       "expression": r["expression"],
                       "latest": {"as_of": day.isoformat(), "members": sizes.get(r["segment_id"])}
                       if day is not None and r["segment_id"] in sized else None}
                      for r in rows],
            "metrics": sizes.metrics}


@router.get("/v1/segments/{segment_id}/members", operation_id="segment_members",
            tags=["segments"], response_model=SegmentMembers,
            dependencies=[Depends(require("segments.read"))])
def segment_members(segment_id: Annotated[str, PathParam(max_length=64)], p: CurrentPrincipal,
                    c: ContainerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """The segment's members on its newest date — only those the caller may see — a page."""
    return access.segment_members(c, p, segment_id, limit, offset)
