"""Ingest: batches, quarantined rows and the real-time events' receipt."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema, Timestamp


class BatchPublic(Schema):
    batch_id: str
    table_name: str
    source_path: str = Field(description="the file's name (never the server's folders)")
    source_sha256: str
    source_bytes: int
    status: str = Field(description="committing | committed | failed")
    rows_in: int
    loaded: int
    inserted: int
    updated: int
    quarantined: int
    duplicates: int
    started_at: str | None = Field(description="UTC, ISO 8601 with Z")
    finished_at: Timestamp | None
    error: str | None
    reasons: dict[str, int] = Field(description="quarantined rows per reason code")
    timings: dict[str, Any] = Field(description="seconds per ingest phase")


class BatchList(Schema):
    items: list[BatchPublic]


class QuarantinedRow(Schema):
    batch_id: str
    row_number: int
    table: str
    file: str
    line: int | None
    reasons: list[str] = Field(description="column:RULE codes")
    row: Any = Field(description="the source row, level-3 values masked")


class QuarantinePage(PageOf):
    items: list[QuarantinedRow]


class EventReceipt(Schema):
    event_seq: int
    status: str = Field(description="pending (applied within seconds) | rejected")
    reasons: list[str]


class EventsAccepted(Schema):
    accepted: int
    rejected: int
    items: list[EventReceipt]
