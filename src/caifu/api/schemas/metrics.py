"""Governed metrics: the catalog and one metric's answer (``docs/metrics.md``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from caifu.api.schemas.common import Schema


class MetricInfo(Schema):
    name: str
    version: int
    kind: str = Field(description="simple | stock | derived")
    format: str = Field(description="count | money | ratio | number | shares")
    owner: str
    level: int = Field(description="JR/T 0158 level: the highest level among the columns read")
    label: dict[str, str] = Field(description="by language: zh, en")
    description: dict[str, str]
    definition_hash: str = Field(description="SHA-256 (16 hex) of the definition and what it "
                                             "depends on")
    dimensions: list[str] = Field(description="the dimensions it can be cut by")


class MetricCatalog(Schema):
    catalog_version: str
    metrics: list[MetricInfo]


class MetricAnswer(Schema):
    metric: str
    version: int
    definition_hash: str
    catalog_version: str
    kind: str
    format: str
    label: dict[str, str]
    description: dict[str, str]
    owner: str
    level: int
    grain: str
    from_: str = Field(alias="from")
    to: str
    by: list[str]
    where: str | None = Field(description="the condition on dimensions, if any")
    scope: str = Field(description="tenant, branch <id> or advisor <id>")
    engine: str
    min_group_size: int = Field(description="a level-3 row behind fewer customers is withheld")
    unmasked: bool
    suppressed: int = Field(description="rows whose value is withheld")
    rows: list[dict[str, Any]] = Field(
        description="period (first day), one key per dimension, value (money as a decimal "
                    "string), customers (distinct customers behind the row), suppressed")


class MetricUsed(Schema):
    """A metric a response's figures come from: enough to find its definition."""

    metric: str
    version: int
    definition_hash: str
