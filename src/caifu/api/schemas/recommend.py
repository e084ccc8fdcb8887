"""Recommendations for one customer."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from caifu.api.schemas.common import Schema, Timestamp


class RecommendedItem(Schema):
    rec_id: str = Field(description="this showing in the recommendation log")
    rank: int = Field(description="1 = best")
    item_id: str = Field(description="content id, F + fund code, or A: + action")
    item_type: str = Field(description="content | fund | action")
    type: str = Field(description="what kind of item, in words")
    title: str
    risk_level: str = Field(description="R1..R5 as the item stands now")
    score: float | None = Field(description="the ranker's score")
    reason: str | None = Field(description="why it was offered, in words")
    propensity: float = Field(description="the probability the serving policy shows it")
    verdict: str = Field(description="core.suitability outcome: suitable")
    rule: str = Field(description="the deciding suitability rule: OK")
    rule_version: str
    suitability: str = Field(description="the verdict in words")
    text: str = Field(description="what the advisor sends: risk level, risk warning, advisor "
                                  "and SAC number; a content item's tracking link")


class RecommendationList(Schema):
    customer_id: str
    k: int
    published: bool = Field(description="false before a list is published for the customer")
    as_of: dt.date | None = Field(description="the day the policy stood at")
    policy_version: str | None
    generated_at: Timestamp | None
    investor_level: str | None = Field(description="C1..C5 of the newest assessment")
    items: list[RecommendedItem] = Field(description="exactly k when k pass the re-check")
    refused: dict[str, int] = Field(description="published items the re-check refused now, "
                                                "by rule")
    withheld: dict[str, int] = Field(description="held back by the log: RECENTLY_SENT, "
                                                 "DISMISSED, FREQUENCY_CAP")
    blocked: str | None = Field(description="why nothing may be recommended to him now")
    notes: list[str]
