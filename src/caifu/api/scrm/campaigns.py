"""Campaigns: gate a run, send it through WeCom, follow its funnel, compare campaigns — and
the public tracking link a customer taps (``/t/{token}``), which needs no sign-in and says
nothing about anyone: a known token redirects to the content, anything else is 404."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.scrm import CampaignComparison, CampaignFunnel, DecisionPage, PollResult
from caifu.core.errors import NotFoundError
from caifu.scrm.campaigns import FrequencyCap
from caifu.services.platform import access
from caifu.services.scrm.campaigns import Campaigns, RunSummary, SendSummary
from caifu.services.scrm.funnel import CampaignFunnel as Funnels
from caifu.services.scrm.funnel import record_hit

router = APIRouter()
CampaignId = Annotated[str, PathParam(min_length=1, max_length=40, pattern=r"^[\w.\-]+$")]
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class RunIn(BaseModel):
    """Exactly one target: a segment, customer ids, a preference group (channel group) or
    advisors (channel channel_qr)."""

    segment_id: str | None = Field(None, max_length=64)
    customer_ids: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        None, max_length=10_000)
    group_id: str | None = Field(None, max_length=64)
    advisor_ids: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        None, max_length=500)
    scheduled_at: dt.datetime | None = None
    attribution_days: int = Field(14, ge=1, le=365)
    max_sends: int = Field(2, ge=1, le=100, description="frequency cap: sends per customer …")
    cap_days: int = Field(7, ge=1, le=365, description="… in this many days")


@router.post("/v1/campaigns/{campaign_id}/runs", operation_id="create_campaign_run",
             tags=["campaigns"], status_code=201,
             dependencies=[Depends(require("campaigns.run"))])
def create_run(campaign_id: CampaignId, body: RunIn, p: CurrentPrincipal,
               c: ContainerDep) -> RunSummary:
    """Gate every target (suitability, consent, frequency cap, compliance, footer) and store
    each decision with its rule and rule version; nothing is sent yet."""
    return Campaigns(c).create_run(
        access.tenant_of(p), campaign_id, actor=p.subject, segment_id=body.segment_id,
        customer_ids=body.customer_ids, group_id=body.group_id, advisor_ids=body.advisor_ids,
        scheduled_at=body.scheduled_at, attribution_days=body.attribution_days,
        cap=FrequencyCap(body.max_sends, body.cap_days))


@router.post("/v1/campaigns/{campaign_id}/send", operation_id="send_campaign",
             tags=["campaigns"], dependencies=[Depends(require("campaigns.send"))])
def send(campaign_id: CampaignId, request: Request, p: CurrentPrincipal,
         c: ContainerDep) -> SendSummary:
    """Send the gated run's allowed customers through WeCom (audited); tracking links point
    at this service's ``/t/…``."""
    link_base = str(request.base_url).rstrip("/")
    return Campaigns(c).send(access.tenant_of(p), campaign_id, actor=p.subject,
                             link_base=link_base)


@router.post("/v1/campaigns/{campaign_id}/poll", operation_id="poll_campaign",
             tags=["campaigns"], dependencies=[Depends(require("campaigns.run"))])
def poll(campaign_id: CampaignId, p: CurrentPrincipal, c: ContainerDep) -> PollResult:
    """Ask WeCom which messages arrived, then attribute conversions from the facts."""
    tenant = access.tenant_of(p)
    delivered = Campaigns(c).poll(tenant, campaign_id)
    return PollResult(delivered=delivered, converted=Funnels(c).refresh(tenant, campaign_id))


@router.get("/v1/campaigns/compare", operation_id="compare_campaigns", tags=["campaigns"],
            response_model=CampaignComparison, dependencies=[Depends(require("campaigns.read"))])
def compare(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """Every campaign, live and historical, with counts and rates per funnel stage: the
    funnel's governed metrics cut by campaign (listed in ``metrics``)."""
    return Funnels(c).compare(p)


@router.get("/v1/campaigns/{campaign_id}/funnel", operation_id="campaign_funnel",
            tags=["campaigns"], response_model=CampaignFunnel,
            dependencies=[Depends(require("campaigns.read"))])
def funnel(campaign_id: CampaignId, p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """targeted → sent → delivered → opened → clicked → converted, with rates, conversions
    by kind and the gate's blocks by rule: governed metrics of this campaign (listed in
    ``metrics``)."""
    return Funnels(c).funnel(p, campaign_id)


@router.get("/v1/campaigns/{campaign_id}/decisions", operation_id="campaign_decisions",
            tags=["campaigns"], response_model=DecisionPage,
            dependencies=[Depends(require("campaigns.decisions"))])
def decisions(campaign_id: CampaignId, p: CurrentPrincipal, c: ContainerDep,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """Each gate decision (outcome, rule, reasons, levels, rule version) — for the customers
    the caller may see."""
    tenant = access.tenant_of(p)
    return Campaigns(c).decisions(tenant, campaign_id, only=access.visible_ids(c, p),
                                  limit=limit, offset=offset)


@router.get("/t/{token}", operation_id="tracking_link", tags=["tracking"],
            include_in_schema=False)
def tracking_link(token: str, c: ContainerDep) -> RedirectResponse:
    url = record_hit(c, token, "click")
    if url is None:
        raise NotFoundError("no such link")
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store",
                                                           "Referrer-Policy": "no-referrer"})


@router.get("/t/{token}/open.gif", operation_id="tracking_pixel", tags=["tracking"],
            include_in_schema=False)
def tracking_pixel(token: str, c: ContainerDep) -> Response:
    if record_hit(c, token, "open") is None:
        raise NotFoundError("no such link")
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})
