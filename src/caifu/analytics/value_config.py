"""The tenant's customer-value configuration: how revenue is estimated, the CLV horizon and
what acquiring and keeping a customer costs.

A tenant's file is ``value/<tenant>.yaml`` in the workspace; without it the packaged default
``caifu/data/value/default.yaml`` applies (its comments state each default as an assumption).
``parse_value_config`` validates a parsed YAML document and answers a mistake with a
``ConfigError`` naming the file and the field, e.g.
``value/acme.yaml: acquisition.channel_costs.brnach: not a customer channel``.
docs/customer-value.md explains every field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from caifu.core.errors import ConfigError, invalid_config
from caifu.data.contracts.tables import CHANNELS

FORMAT_VERSION = 1
CAMPAIGN_GOALS = ("account_opened", "funded", "chinext_opened", "level2", "fund_purchase",
                  "reactivation")
# The defaults are the assumptions docs/customer-value.md states; the packaged default.yaml
# spells out the same values (a test keeps the two equal).
DEFAULT_CHANNEL_COSTS = {"branch": 480.0, "app": 160.0, "wecom": 110.0, "bank": 220.0,
                         "internet": 300.0, "referral": 90.0, "campaign": 260.0}


def _rate(default: float) -> Any:
    return Field(default=default, ge=0.0, le=0.01)  # a levy above 1% of turnover is a typo


def _share(default: float) -> Any:
    return Field(default=default, ge=0.0, le=1.0)


def _money(default: float) -> Any:
    return Field(default=default, ge=0.0, le=1e9)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StampDuty(_Strict):
    since: dt.date
    rate: float = _rate(0.0)


class RevenueConfig(_Strict):
    """Broker revenue estimated from what the fact tables hold.

    A trade's ``fee`` is commission + exchange and regulatory fees + transfer fee + stamp
    duty; only the commission net of the exchange's and regulator's share is the broker's.
    """

    commission_share: float = _share(1.0)  # of net commission kept (after IB/bank splits)
    exchange_fee_rate: float = _rate(0.0000541)  # 经手费 0.00341% + 证管费 0.002%, every trade
    transfer_fee_rate: float = _rate(0.00001)  # 过户费 0.001%, stock trades
    stamp_duty: tuple[StampDuty, ...] = (  # 印花税 on stock sells, by date from
        StampDuty(since=dt.date(2008, 9, 19), rate=0.001),
        StampDuty(since=dt.date(2023, 8, 28), rate=0.0005))
    fund_fee_share: float = _share(1.0)  # of subscription/purchase fees kept as distributor

    @field_validator("stamp_duty")
    @classmethod
    def _ordered(cls, v: tuple[StampDuty, ...]) -> tuple[StampDuty, ...]:
        days = [p.since for p in v]
        if days != sorted(set(days)):
            raise ValueError("periods must be in increasing order of 'since', one per date")
        return v


LIFETIME_MONTHS = 120  # the default CLV horizon: ten years, discounted (docs/customer-value.md)
PAYBACK_MONTHS = 12


class ClvConfig(_Strict):
    """Two views of one fit: the lifetime view (``horizon_months``, the default ten years)
    answers "is this customer worth what he cost", the payback view (``payback_months``)
    "does the next year repay it". Both are computed and shown."""

    time_unit: Literal["day", "week"] = "day"
    horizon_months: int = Field(default=LIFETIME_MONTHS, ge=1, le=240)
    payback_months: int = Field(default=PAYBACK_MONTHS, ge=1, le=240)
    monthly_discount_rate: float = Field(default=0.01, ge=0.0, le=0.2)
    # the first day the lake's facts are complete; None: the first trade or fund purchase
    history_start: dt.date | None = None

    @model_validator(mode="after")
    def _payback_within_horizon(self) -> ClvConfig:
        if self.payback_months > self.horizon_months:
            raise ValueError(f"payback_months ({self.payback_months}) may not exceed "
                             f"horizon_months ({self.horizon_months})")
        return self


class AcquisitionConfig(_Strict):
    channel_costs: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))
    campaign_goals: tuple[str, ...] = ("account_opened", "funded")

    @field_validator("channel_costs")
    @classmethod
    def _channels(cls, v: dict[str, float]) -> dict[str, float]:
        for channel, cost in v.items():
            if channel not in CHANNELS:
                raise ValueError(f"{channel!r} is not a customer channel (one of "
                                 f"{', '.join(CHANNELS)})")
            if not 0 <= cost <= 1e9:
                raise ValueError(f"{channel}: cost must be between 0 and 1e9 yuan, not {cost}")
        return v

    @field_validator("campaign_goals")
    @classmethod
    def _goals(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [g for g in v if g not in CAMPAIGN_GOALS]
        if unknown:
            raise ValueError(f"unknown goal(s) {', '.join(map(repr, unknown))}; campaign goals "
                             f"are {', '.join(CAMPAIGN_GOALS)}")
        return v


class RetentionConfig(_Strict):
    window_months: int = Field(default=12, ge=1, le=60)
    annual_service_cost: float = _money(0.0)  # every customer, per year served
    annual_advisor_cost: float = _money(0.0)  # on top, customers with an advisor
    campaign_spend: bool = True  # spread retention campaigns' spend over those they targeted


class ValueConfig(_Strict):
    version: int = FORMAT_VERSION
    revenue: RevenueConfig = Field(default_factory=RevenueConfig)
    clv: ClvConfig = Field(default_factory=ClvConfig)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    cohort: Literal["month", "quarter"] = "quarter"


def parse_value_config(document: Any, source: str) -> ValueConfig:
    """Validate a parsed YAML document; ``ConfigError`` names ``source`` and the field."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with revenue, clv, acquisition and "
                          "retention sections")
    try:
        config = ValueConfig.model_validate(document)
    except ValidationError as err:
        raise invalid_config(source, "customer-value configuration", err) from None
    if config.version != FORMAT_VERSION:
        raise ConfigError(f"{source}: format version {config.version} is not supported (this "
                          f"caifu reads version {FORMAT_VERSION})")
    return config


def stamp_duty_rate(config: RevenueConfig, day: dt.date) -> float:
    """The stamp-duty rate on a stock sell on ``day`` (0 before the first period)."""
    rate = 0.0
    for period in config.stamp_duty:
        if period.since <= day:
            rate = period.rate
    return rate
