"""Risk news: the intake's receipt, stories with their sources, rejected documents."""

from __future__ import annotations

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
