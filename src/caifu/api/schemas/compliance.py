"""Data-subject requests and the chat-compliance queue."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema

Rows = dict[str, list[dict[str, Any]]]


class CustomerExport(Schema):
    request_id: str
    tenant_id: str
    customer_id: str
    exported_at: str
    sor: Rows = Field(description="system-of-record table → the customer's rows, unmasked")
    lake: Rows = Field(description="lake table → the customer's rows, unmasked")
    manifest: dict[str, int] = Field(description="sor.<table> / lake.<table> → rows")


class PrivacyRequest(Schema):
    request_id: str
    customer_id: str
    kind: str = Field(description="export | erasure")
    outcome: str = Field(description="exported | deleted | storage_only | refused")
    requested_by: str
    reason: str
    received_at: str
    completed_at: str | None
    details: dict[str, Any] = Field(description="tables and rows touched, the rule applied")


class PrivacyRequestPage(PageOf):
    items: list[PrivacyRequest]


class ChatFlag(Schema):
    flag_id: str
    msg_id: str
    msg_time: str
    advisor_id: str
    external_userid: str
    customer_id: str | None
    sender: str = Field(description="advisor | customer")
    category: str = Field(description="guaranteed_return | certainty | profit_sharing | "
                          "private_dealing | inside_information | exaggeration | off_platform | "
                          "sensitive_data, or a category of the tenant's lexicon")
    phrase: str = Field(description="the lexicon phrase, or the model's top n-grams")
    action: str = Field(description="review | alert")
    excerpt: str = Field(description="context window, numbers masked")
    source: str = Field(description="lexicon | model: what raised the flag")
    evidence: list[dict[str, Any]] = Field(description=(
        "lexicon: {source, rule, span, matched, label}; model: {source, score, ngrams: "
        "[{ngram, span, matched, weight}], label} — spans index the message; runs of six or "
        "more digits masked"))
    lexicon_version: str
    model_version: str | None = Field(description="the chat model that judged the message "
                                      "(null for flags raised before the model)")
    status: str = Field(description="open | confirmed | dismissed")
    reviewed_by: str | None
    reviewed_at: str | None
    review_note: str | None
    created_at: str


class ChatFlagList(Schema):
    flags: list[ChatFlag]


class FlagDecided(Schema):
    flag_id: str
    status: str


class ChatIntakeReport(Schema):
    lines: int
    messages: int
    rejected: list[dict[str, Any]] = Field(description="line, msgid and reason of each")
    skipped: dict[str, int]
    events_pending: int
    events_rejected: int
    flags: dict[str, int] = Field(description="flags raised: review / alert")
    lexicon_version: str
    model_version: str = Field(description="the chat model behind the advisor review")
