"""Investor suitability (证券期货投资者适当性管理办法; ../shared/reference/compliance.md).

Whether a product, service or piece of content of risk level R1–R5 may be *actively
recommended* to an investor C1–C5 — the question every push, group message and sidebar
suggestion asks first. The answer records what it was decided on, so a campaign can log it
with ``RULE_VERSION`` and keep it for 20 years.

| investor | R1 | R2 | R3 | R4 | R5 |
|---|---|---|---|---|---|
| C1 lowest category | ✔ | ✘ | ✘ | ✘ | ✘ |
| C1 | ✔ | ⚠ | ⚠ | ⚠ | ⚠ |
| C2 | ✔ | ✔ | ⚠ | ⚠ | ⚠ |
| C3 | ✔ | ✔ | ✔ | ⚠ | ⚠ |
| C4 | ✔ | ✔ | ✔ | ✔ | ⚠ |
| C5 | ✔ | ✔ | ✔ | ✔ | ✔ |

⚠ may never be actively recommended (only sold at the investor's own request after a
notice); ✘ is prohibited outright. Beyond the matrix: an expired or missing assessment
blocks any recommendation, and so does a product above what the investor's stated objective
admits, one whose holding period is longer than the investor's horizon (投资期限), or one of a
variety (投资品种) he did not say he invests in — the three dimensions the SAC guideline
matches on (level, horizon, variety).

Horizon: ``short`` (under a year) < ``medium`` (1–5 years) < ``long`` (over 5 years); a
product's horizon is the shortest holding period it is meant for (a money fund ``short``, a
three-year closed fund ``medium``). An investor whose assessment recorded no horizon is judged
as ``short`` — the only reading that cannot recommend too long a product.

Variety: ``cash`` (deposits, money funds, government bills) ⊂ … the five classes below, each
a separate answer of the questionnaire. An assessment that recorded no varieties (older
questionnaire versions did not ask) does not restrict the variety; an empty set recorded
admits none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal

C_LEVELS: Final = ("C1", "C2", "C3", "C4", "C5")
R_LEVELS: Final = ("R1", "R2", "R3", "R4", "R5")
RULE_VERSION: Final = "suitability-2017-sac.1"
# the highest product level each stated objective admits (a broker may tighten this)
OBJECTIVE_MAX: Final = {"preserve": "R1", "income": "R2", "steady": "R3", "growth": "R4",
                        "aggressive": "R5"}
OBJECTIVES: Final = tuple(OBJECTIVE_MAX)
HORIZONS: Final = ("short", "medium", "long")
# 投资品种: cash (存款、货币基金、国债), fixed income (债券、债券基金、固收理财), equity
# (股票、混合/股票/指数基金), derivative (期货、期权、融资融券、结构化产品), alternative (私募、
# 另类及其他高风险品种)
VARIETIES: Final = ("cash", "fixed_income", "equity", "derivative", "alternative")
# the names a questionnaire export writes them under (the assessment contract reads both)
VARIETY_NAMES: Final = {"cash": "现金管理", "fixed_income": "固定收益", "equity": "权益",
                        "derivative": "衍生品", "alternative": "另类"}

Outcome = Literal["suitable", "unsuitable", "prohibited", "no_assessment", "expired",
                  "objective_mismatch", "horizon_mismatch", "variety_mismatch"]


@dataclass(frozen=True)
class Investor:
    """What a suitability decision needs about the investor, from his latest assessment."""

    level: str | None  # C1..C5, None when never assessed
    valid_until: dt.date | None = None
    no_loss_tolerance: bool = False
    no_civil_capacity: bool = False
    objective: str | None = None
    professional: bool = False
    horizon: str | None = None  # short | medium | long; None: not recorded (judged as short)
    varieties: frozenset[str] | None = None  # None: not asked; see the module docstring

    @property
    def lowest_category(self) -> bool:
        return self.level == "C1" and (self.no_loss_tolerance or self.no_civil_capacity)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    may_recommend: bool
    rule: str  # the deciding rule, a stable code
    investor_level: str | None
    product_level: str
    reasons: tuple[str, ...]
    rule_version: str = RULE_VERSION


def level_rank(level: str) -> int:
    """1..5 for C1..C5 or R1..R5."""
    if level not in C_LEVELS and level not in R_LEVELS:
        raise ValueError(f"not a risk level: {level!r}")
    return int(level[1])


def lowest(levels: list[str | None]) -> str | None:
    """The lowest C level of a group (None if anyone is unassessed: judge as the unknown)."""
    if not levels or any(level is None for level in levels):
        return None
    return min((lv for lv in levels if lv is not None), key=level_rank)


def horizon_rank(horizon: str) -> int:
    """1..3 for short, medium, long."""
    if horizon not in HORIZONS:
        raise ValueError(f"not an investment horizon: {horizon!r}")
    return HORIZONS.index(horizon) + 1


def varieties_of(stored: str | None) -> frozenset[str] | None:
    """The varieties an assessment row recorded (its ``varieties`` column: codes joined by
    ","), None when the questionnaire did not ask (the column is NULL)."""
    if stored is None:
        return None
    chosen = frozenset(v for v in stored.split(",") if v)
    unknown = chosen - set(VARIETIES)
    if unknown:
        raise ValueError(f"not an investment variety: {', '.join(sorted(unknown))}")
    return chosen


def investor_of(assessment: Any, professional: bool = False) -> Investor:
    """The investor as ``judge`` sees him from his newest assessment row (any object with the
    contract's column attributes; None: never assessed) — the one reading the sidebar, the
    recommendations' re-check and the campaign gate share."""
    if assessment is None:
        return Investor(None, professional=professional)
    return Investor(assessment.risk_level, assessment.valid_until,
                    bool(assessment.no_loss_tolerance), bool(assessment.no_civil_capacity),
                    assessment.objective, professional, assessment.horizon,
                    varieties_of(assessment.varieties))


def judge(investor: Investor, product_level: str, on: dt.date, *,
          horizon: str | None = None, variety: str | None = None) -> Verdict:
    """May ``product_level`` be actively recommended to ``investor`` on day ``on``?

    ``horizon`` and ``variety`` describe the product when it has them (a fund, a permission);
    research content has neither and is judged on its level alone."""
    r = level_rank(product_level)
    if variety is not None and variety not in VARIETIES:
        raise ValueError(f"not an investment variety: {variety!r}")
    product_h = horizon_rank(horizon) if horizon is not None else None

    def verdict(outcome: Outcome, rule: str, *reasons: str) -> Verdict:
        return Verdict(outcome, outcome == "suitable", rule, investor.level, product_level,
                       reasons)

    if investor.level is None:
        return verdict("no_assessment", "NO_ASSESSMENT", "投资者尚未完成风险测评")
    c = level_rank(investor.level)
    if investor.lowest_category and r > 1:
        return verdict("prohibited", "LOWEST_CATEGORY",
                       f"{investor.level} 风险承受能力最低类别：仅可接受 R1，{product_level} 禁止")
    if investor.valid_until is not None and investor.valid_until < on:
        return verdict("expired", "ASSESSMENT_EXPIRED",
                       f"风险测评已于 {investor.valid_until.isoformat()} 过期")
    if r > c and not investor.professional:
        return verdict("unsuitable", "LEVEL_MISMATCH",
                       f"{investor.level} 不得主动推荐 {product_level}")
    cap = OBJECTIVE_MAX.get(investor.objective or "")
    if cap is not None and r > level_rank(cap):
        return verdict("objective_mismatch", "OBJECTIVE_MISMATCH",
                       f"投资目标（{investor.objective}）至多适配 {cap}")
    if product_h is not None and product_h > 1:
        own = investor.horizon
        if own not in HORIZONS or product_h > horizon_rank(own):
            return verdict("horizon_mismatch", "HORIZON_MISMATCH",
                           f"产品投资期限（{horizon}）长于投资者的投资期限（{own or '未记录'}）")
    if (variety is not None and investor.varieties is not None
            and variety not in investor.varieties):
        return verdict("variety_mismatch", "VARIETY_MISMATCH",
                       f"投资者未选择投资品种「{variety}」")
    return verdict("suitable", "OK", f"{investor.level} 可推荐 {product_level}")
