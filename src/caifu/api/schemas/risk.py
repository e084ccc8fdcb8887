"""Risk news: the intake's receipt, stories with their sources, rejected documents."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema

UTC = "UTC, ISO 8601 with Z"


class DocumentRejection(Schema):
    where: str = Field(description="line 3, item 2, row 4 (line 5): where in the body")
    field: str | None = Field(description="the field at fault, when one is")
    reason: str = Field(description="NOT_JSON, MISSING_TITLE, BAD_TIME, FUTURE_TIME, … "
                                    "(docs/risk.md)")
    message: str


class DocumentOutcome(Schema):
    where: str
    document_id: str
    story_id: str | None = Field(description="null for a duplicate")
    fold: Literal["first", "exact", "near", "duplicate"] = Field(
        description="first: founded a story; exact/near: joined one; duplicate: the same "
                    "url and text was already stored")
    similarity: float | None = Field(description="estimated Jaccard (near folds)")


class StoryProcessed(Schema):
    """A story the batch founded, through link → classify → alerts and advisor tasks."""

    story_id: str
    title: str = Field(description="the first document's title")
    event_type: str | None = Field(description="the event (null: processing failed first)")
    polarity: Literal["negative", "neutral", "positive"] | None
    severity: Literal["low", "medium", "high"] | None = Field(
        description="null for none or when processing failed")
    decided_by: str = Field(description="classifier, or operator (an operator's class "
                                        "stands); empty when processing failed")
    listed: list[str] = Field(description="codes of the listed companies the story names")
    holders: int = Field(description="(customer, security) pairs exposed, any route")
    new_alerts: int = Field(description="alerts and advisor tasks raised now")
    repeats: int = Field(description="holders already alerted about this event")
    error: str | None = Field(description="why processing failed (the documents are stored; "
                                          "kept on the story, retried by caifu risk process)")
    seconds: float = Field(description="time this story's processing took")


class IntakeReceipt(Schema):
    """``received = stored + duplicates + rejected``; ``stored = new_stories + folded_exact
    + folded_near``."""

    batch_id: str
    channel: str
    origin: str
    received: int
    stored: int
    duplicates: int
    rejected: int
    new_stories: int
    folded_exact: int
    folded_near: int
    balanced: bool
    rejections: list[DocumentRejection]
    documents: list[DocumentOutcome]
    processing: list[StoryProcessed] = Field(
        description="each story the batch founded, processed before the answer")


class StoryPublic(Schema):
    story_id: str
    title: str = Field(description="the first document's title")
    first_published_at: str = Field(description=UTC)
    last_published_at: str = Field(description=UTC)
    document_count: int
    site_count: int
    event_type: str | None = Field(description="not classified yet: null (later stage)")
    companies: Any = Field(description="not linked yet: null (later stage)")
    classified_at: str | None = Field(description=UTC)


class StoryPage(PageOf):
    items: list[StoryPublic]


class StorySource(Schema):
    document_id: str
    fold: str = Field(description="first | exact | near")
    similarity: float | None
    source: str
    site: str
    url: str
    published_at: str = Field(description=UTC)
    published_zone: str = Field(description="given, or the tenant zone a zoneless time was "
                                            "read in")
    title: str
    language: str | None
    script: str | None
    received_at: str = Field(description=UTC)


class StoryDetail(StoryPublic):
    sources: list[StorySource]


class RejectedDocument(Schema):
    batch_id: str
    position: int
    origin: str = Field(description="the file's name, or api")
    location: str
    field: str | None
    reason: str
    message: str
    raw: str = Field(description="the document as received")
    received_at: str = Field(description=UTC)


class RejectedPage(PageOf):
    items: list[RejectedDocument]


TaskStatus = Literal["open", "acknowledged", "contacted", "done", "dismissed"]


class RiskAlert(Schema):
    """One alert: an event (story, security, event type) × one holder, with the position."""

    alert_id: str
    story_id: str
    security_code: str
    company_name: str = Field(description="as written in the story")
    event_type: str
    event_at: str = Field(description=f"the story's first published time, {UTC}")
    customer_id: str
    customer_name: str | None = Field(description="masked")
    advisor_id: str | None
    via: str = Field(description="the routes: position, fund:<code>, joined with +")
    snapshot_date: dt.date = Field(description="the positions snapshot read (funds only: the "
                                               "day the fund positions are valued)")
    quantity: float | None = Field(description="the direct position; null: held only "
                                               "through funds")
    market_value: float | None = Field(description="the direct position's, yuan")
    cost: float | None
    unrealised_pnl: float | None = Field(description="market value − cost, yuan")
    value_at_risk: float | None = Field(description="every route: the direct position's value "
                                                    "+ each fund position × its disclosed % "
                                                    "of NAV, yuan")
    routes: list[dict[str, Any]] = Field(description="each route: via, value_at_risk, "
                                                     "market_value, cost, unrealised_pnl; a "
                                                     "fund's fund_code, fund_name, shares, "
                                                     "report_date, nav_pct")
    customer_risk_level: str | None = Field(description="C1..C5, latest assessment")
    evidence: dict[str, Any] = Field(description="mention (the linked span: name, code, rule, "
                                                 "score, sentence) and sources (site, url, "
                                                 "published, title)")
    message: str = Field(description="the factual warning an advisor may send (no advice)")
    message_may_send: bool = Field(description="false: opted out or flagged wording")
    message_notes: list[str]
    repeat_story_ids: list[str] = Field(description="later stories about the same event")
    task_id: str
    status: TaskStatus
    created_at: str


class RiskTask(Schema):
    task_id: str
    alert_id: str
    customer_id: str
    customer_name: str | None = Field(description="masked")
    advisor_id: str | None
    status: TaskStatus
    reason: str | None = Field(description="why dismissed")
    created_at: str
    updated_at: str
    updated_by: str
    story_id: str
    security_code: str
    company_name: str
    event_type: str
    event_at: str
    market_value: float | None = Field(description="the direct position's; null: funds only")
    unrealised_pnl: float | None
    value_at_risk: float | None
    message: str
    message_may_send: bool


class TaskMove(Schema):
    seq: int
    from_status: str | None
    to_status: str
    actor: str
    at: str
    reason: str | None


class RiskTaskMoved(Schema):
    task_id: str
    alert_id: str
    customer_id: str
    advisor_id: str | None
    status: TaskStatus
    reason: str | None
    updated_at: str
    updated_by: str
    history: list[TaskMove]


class TaskStatusChange(Schema):
    status: Literal["acknowledged", "contacted", "done", "dismissed"]
    reason: str = Field("", max_length=500, description="required to dismiss (≥ 4 characters)")


class RiskAlertPage(PageOf):
    items: list[RiskAlert]


class RiskTaskPage(PageOf):
    items: list[RiskTask]


class StoryClassification(Schema):
    event_type: str = Field(max_length=40, description="regulatory_investigation … "
                                                       "earnings_warning, or none")
    polarity: Literal["negative", "neutral", "positive"]


class StoryClassified(Schema):
    story_id: str
    event_type: str
    polarity: str
    classified_by: str
