"""Data quality: freshness with the open alerts, and the per-batch history
(``docs/data-quality.md``)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from caifu.api.schemas.common import Schema, Timestamp


class TableFreshness(Schema):
    table: str
    date_column: str | None = Field(description="the table's business date column")
    newest_date: dt.date | None = Field(description="newest business date loaded (tenant's "
                                                    "local date)")
    today: dt.date = Field(description="the tenant's date now")
    lag_days: int | None = Field(description="calendar days from newest_date to today")
    max_lag_days: int | None = Field(description="the threshold; null: not checked")
    stale: bool
    last_load: Timestamp | None = Field(description="start of the last committed batch (UTC)")
    batches: int = Field(description="committed batches of the table")


class Alert(Schema):
    alert_id: str
    table_name: str
    rule: str = Field(description="quarantine_rate | null_rate_rise | freshness")
    subject: str = Field(description="the column of a null-rate alert, else empty")
    observed: float | None = Field(description="rate, rise (0–1) or lag (days)")
    threshold: float | None
    batch_id: str | None
    detail: str
    status: str = Field(description="open | resolved")
    raised_at: Timestamp
    last_seen_at: Timestamp
    resolved_at: Timestamp | None
    resolved_by: str | None = Field(description="the batch whose check passed, or 'check'")


class QualityOverview(Schema):
    tables: list[TableFreshness]
    alerts: list[Alert] = Field(description="the open alerts, newest first")


class BatchQuality(Schema):
    batch_id: str
    table: str
    started_at: Timestamp
    finished_at: Timestamp | None
    rows_in: int
    loaded: int
    quarantined: int
    duplicates: int
    quarantine_rate: float
    profiled: bool = Field(description="false for a batch loaded before profiles existed")
    null_counts: dict[str, int] | None
    null_rates: dict[str, float] | None = Field(description="nulls over rows loaded")
    date_column: str | None
    oldest_date: dt.date | None
    newest_date: dt.date | None


class QualityHistory(Schema):
    items: list[BatchQuality]
