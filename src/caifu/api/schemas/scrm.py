"""Campaigns and WeCom: funnels, comparisons, gate decisions, refused callbacks."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema, Timestamp
from caifu.api.schemas.metrics import MetricUsed


class FunnelCounts(Schema):
    """Customers per stage; each rate from the stage before, null where nothing to divide —
    governed metrics (``campaign_<stage>_customers``, ``campaign_<stage>_rate``,
    ``campaign_conversion``) in the caller's scope, rates rounded to four places."""

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
    metrics: list[MetricUsed] = Field(description="the governed metrics the figures are")


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
    metrics: list[MetricUsed] = Field(description="the governed metrics the figures are")


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


class PlannedContent(Schema):
    rank: int = Field(description="1 = post first")
    item_id: str = Field(description="the content id")
    title: str
    content_type: str
    label: str = Field(description="the content type in words")
    risk_level: str = Field(description="R1..R5 as the item stands now")
    url: str | None
    basis: str = Field(description="lists: the members' votes; popularity: the fallback")
    score: float = Field(description="the vote Σ (k + 1 − r) / k, or the readers (popularity)")
    members: int = Field(description="members holding it in their top k")
    reason: str = Field(description="why, in words: 群内 7/12 位成员的推荐前10含此内容")


class GroupContentPlan(Schema):
    """A preference group's next content items: ranked by its members' published lists,
    only what may be pushed to the group as a whole on the plan day."""

    group_id: str
    name: str
    day: dt.date = Field(description="the plan day (the tenant's calendar)")
    n: int
    k: int
    reach: int = Field(description="members a post reaches, unlinked chat members included")
    reach_source: str = Field(description="chat (its active members) or plan (members, "
                                          "invitees)")
    with_lists: int = Field(description="members with a published recommendation list")
    policy_versions: list[str]
    judged: str = Field(description="how the group's level was chosen, in words")
    investor_level: str | None = Field(description="the C level the group is judged at")
    max_level: str | None = Field(description="the highest R level the group may receive")
    catalogue: int = Field(description="content items of the tenant")
    eligible: int = Field(description="of them, those that may be posted on the plan day")
    refused: dict[str, int] = Field(description="the others by their first refusing rule: "
                                                "NOT_VALID, a suitability rule, COMPLIANCE, "
                                                "RECENTLY_POSTED")
    voted: int = Field(description="content items in the members' top k")
    voted_refused: dict[str, int] = Field(description="of those, refused by rule "
                                                      "(WITHDRAWN: gone from the catalogue)")
    basis: str = Field(description="lists, popularity, lists+popularity or none")
    items: list[PlannedContent]
    notes: list[str]
