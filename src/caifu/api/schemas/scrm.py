"""Campaigns and WeCom: funnels, comparisons, gate decisions, refused callbacks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema, Timestamp


class FunnelCounts(Schema):
    """Customers per stage; each rate from the stage before, null where nothing to divide."""

    targeted: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    converted: int
    sent_rate: float | None
    delivered_rate: float | None
    opened_rate: float | None
    clicked_rate: float | None
    converted_rate: float | None
    conversion_rate: float | None = Field(description="converted / targeted")


class CampaignRow(FunnelCounts):
    campaign_id: str
    name: str | None
    channel: str | None
    goal: str | None
    starts_on: str | None
    spend: float | None
    source: str = Field(description="live | history")


class CampaignComparison(Schema):
    total: int
    items: list[CampaignRow]


class CampaignFunnel(Schema):
    campaign_id: str
    name: str
    channel: str
    goal: str | None
    status: str
    sent_at: str | None
    attribution_days: int
    rule_version: str | None
    target: dict[str, Any]
    funnel: FunnelCounts
    conversions: dict[str, int] = Field(description="conversions by kind")
    blocked: dict[str, int] = Field(description="customers the gate blocked, by rule")


class GateDecision(Schema):
    campaign_id: str
    customer_id: str
    outcome: str = Field(description="send | blocked")
    rule: str
    investor_level: str | None
    product_level: str | None
    rule_version: str
    decided_at: Timestamp
    reasons: list[Any]


class DecisionPage(PageOf):
    campaign_id: str
    items: list[GateDecision]


class PollResult(Schema):
    delivered: int
    converted: int


class Rejection(Schema):
    day: str
    reason: str
    count: int


class RejectionList(Schema):
    scope: Literal["tenant", "platform"] = "tenant"
    rejections: list[Rejection]
