"""Customers, tags and segments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema
from caifu.api.schemas.metrics import MetricUsed


class CustomerView(Schema):
    """The customer 360 (documented shape; the route encodes it itself, for speed)."""

    customer: dict[str, Any] = Field(description="master data, level 3 masked unless unmasked")
    as_of: dt.date | None = Field(description="the date of the profile features")
    features: dict[str, Any]
    tags: list[dict[str, Any]] = Field(description="tags held, each with its evidence")
    history: list[dict[str, Any]] = Field(description="tags gained and lost")
    card: dict[str, Any] | None = Field(description="holdings, trades, P&L, lifecycle, "
                                                    "scores; null before the first `caifu cards`")
    notes: list[str]


class CustomerRow(Schema):
    customer_id: str
    name: str | None
    gender: str | None
    mobile: str | None
    branch_id: str | None
    advisor_id: str | None
    channel: str | None
    opened_on: dt.date | None
    status: str | None
    lifecycle_stage: str | None


class CustomerPage(PageOf):
    items: list[CustomerRow]


class TagPublic(Schema):
    tag_id: str
    name: str
    kind: str
    version: int
    customers: int | None = Field(description="customers in the caller's scope holding it now "
                                              "(metric tag_holders); null if withheld")


class TagList(Schema):
    items: list[TagPublic]
    metrics: list[MetricUsed] = Field(description="the metrics the counts come from")


class SegmentSize(Schema):
    as_of: str = Field(description="the newest build date")
    members: int | None = Field(description="members in the caller's scope (metric "
                                            "segment_size); null if withheld")


class SegmentPublic(Schema):
    segment_id: str
    name: str
    expression: str
    latest: SegmentSize | None = Field(description="null when the newest build did not size "
                                                   "it (created since, or no longer valid)")


class SegmentList(Schema):
    items: list[SegmentPublic]
    metrics: list[MetricUsed] = Field(description="the metrics the sizes come from")


class SegmentMembers(PageOf):
    segment_id: str
    as_of: str
    items: list[str] = Field(description="customer ids the caller may see")
