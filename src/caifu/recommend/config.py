"""The tenant's recommendation configuration: product attributes the master data lacks, the
actions on offer, frequency caps, business rules and the blend of rankers.

A tenant's file is ``recommend/<tenant>.yaml`` in the workspace; each top-level section it
has replaces the packaged default's (``caifu/data/recommend/default.yaml``), so a tenant can
change its rules without restating its fund types. ``version`` is stamped on every logged
recommendation. Mistakes are answered with a ``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from caifu.core.errors import ConfigError, invalid_config
from caifu.core.suitability import HORIZONS, R_LEVELS, VARIETIES

FORMAT_VERSION = 1
ITEM_TYPE = Literal["content", "fund", "action"]
# The prerequisites an action may require; each is computed from the customer's profile by
# services/recommend (docs/recommendations.md says from which columns).
PREREQUISITES = ("chinext_not_open", "star_not_open", "level2_not_active", "assets_100k",
                 "assets_500k", "trading_24_months", "trades_recently", "holds_funds",
                 "fund_in_loss", "dormant")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FundType(_Strict):
    horizon: Literal["short", "medium", "long"]
    variety: Literal["cash", "fixed_income", "equity", "derivative", "alternative"]


class Action(_Strict):
    title: str = Field(min_length=1, max_length=100)
    risk_level: Literal["R1", "R2", "R3", "R4", "R5"]
    horizon: Literal["short", "medium", "long"] | None = None
    variety: Literal["cash", "fixed_income", "equity", "derivative", "alternative"] | None = None
    requires: tuple[str, ...] = ()
    score: str | None = None

    @model_validator(mode="after")
    def _known(self) -> Action:
        unknown = [r for r in self.requires if r not in PREREQUISITES]
        if unknown:
            raise ValueError(f"unknown prerequisite(s) {', '.join(unknown)}; known: "
                             f"{', '.join(PREREQUISITES)}")
        return self


class Caps(_Strict):
    per_customer_per_7_days: int = Field(default=5, ge=0, le=100)
    resend_after_days: int = Field(default=30, ge=0, le=3650)


class Explore(_Strict):
    """The served list's exploration (``recommend/explore``): with probability ``epsilon``
    the last slot shows an item drawn uniformly from the rest of the passing list, so
    ``caifu recommend ope`` can judge another policy from the log. 0 = deterministic."""

    epsilon: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, lt=1 << 64)


class Match(_Strict):
    """Which items a rule applies to: every given field must match."""

    item_type: ITEM_TYPE | None = None
    kind: str | None = None
    item_ids: tuple[str, ...] = ()
    min_risk: Literal["R1", "R2", "R3", "R4", "R5"] | None = None


class Limit(_Strict):
    item_type: ITEM_TYPE
    max: int = Field(ge=0, le=1000)


class Boost(_Strict):
    where: Match
    factor: float = Field(gt=0, le=100)


class Rule(_Strict):
    filter: Match | None = None
    boost: Boost | None = None
    limit: Limit | None = None

    @model_validator(mode="after")
    def _one(self) -> Rule:
        if sum(x is not None for x in (self.filter, self.boost, self.limit)) != 1:
            raise ValueError("a rule is exactly one of filter, boost, limit")
        return self


class RecommendConfig(_Strict):
    format: int
    version: str = Field(min_length=1, max_length=64)
    fund_types: dict[str, FundType]
    content_valid_days: int = Field(default=60, ge=1, le=3650)
    actions: dict[str, Action] = {}
    caps: Caps = Caps()
    explore: Explore = Explore()
    rules: tuple[Rule, ...] = ()


def _default_document() -> dict[str, Any]:
    text = resources.files("caifu.data").joinpath("recommend/default.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def parse(document: Any, source: str) -> RecommendConfig:
    """Validate a tenant's parsed YAML over the packaged default (section by section)."""
    base = _default_document()
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of recommendation settings")
    merged = {**base, **document}
    try:
        config = RecommendConfig.model_validate(merged)
    except ValidationError as err:
        raise invalid_config(source, "recommendation configuration", err) from None
    if config.format != FORMAT_VERSION:
        raise ConfigError(f"{source}: format {config.format} is not supported (this caifu "
                          f"reads format {FORMAT_VERSION})")
    return config


def default() -> RecommendConfig:
    return parse({}, "caifu/data/recommend/default.yaml")


__all__ = ["HORIZONS", "R_LEVELS", "VARIETIES", "RecommendConfig", "default", "parse"]
