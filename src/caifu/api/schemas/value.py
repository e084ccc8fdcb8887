"""Customer value and fund redemption. Rows come from the newest value or redemption run in
the lake; their columns follow the run (``docs/value.md``), so they are objects of columns.
Roll-ups and the redemption figures are governed metrics, named in ``metrics``."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from caifu.api.schemas.common import PageOf, Schema

Row = dict[str, Any]


class CustomerValuePage(PageOf):
    as_of: str | None = Field(description="the value run's date; null when it has no rows")
    items: list[Row] = Field(description="per customer: CLV, costs, efficiency")


class MetricUsed(Schema):
    metric: str
    version: int
    definition_hash: str


class ValueRollup(Schema):
    by: str
    customers: int
    as_of: str | None
    totals: Row | None
    items: list[Row] = Field(description="one row per group; ``suppressed``: its level-3 "
                                         "figures withheld (fewer than 10 customers)")
    metrics: list[MetricUsed] = Field(default_factory=list,
                                      description="the metrics the figures are")


class RedemptionAnswers(Schema):
    """The newest redemption job's result (stored as it ran: a later caifu may add keys)."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    finished_at: str | None
    period: Row | None = None
    funds: list[Row] = Field(default_factory=list)
    comparison: list[Row] = Field(default_factory=list)
    holding_summary: list[Row] = Field(default_factory=list)
    waves: list[Row] = Field(default_factory=list)
    reassurance_tasks: int | None = None
    notes: list[str] = Field(default_factory=list)
    metrics: list[MetricUsed] = Field(
        default_factory=list, description="the metrics of questions 1–3's figures (the rank "
                                          "statistics and the waves are the study's)")


class ReassurancePage(PageOf):
    items: list[Row] = Field(description="fund holders to reassure, ranked, with reasons")
