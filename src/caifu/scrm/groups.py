"""Preference groups (偏好客户群): who to invite into a WeCom group by tags, and how content
pushed to the group is judged for suitability. Logic only; ``services.pref_groups`` loads
and stores.

A group's rule is a tag expression in the segment grammar (``core.expressions``), limited to
tags: ``tag:interest_sse50 or tag:fund_heavy``, ``tag:interest_chinext and not tag:dormant``.
It is evaluated as set algebra over the customers holding each tag, so maintaining a group
of 100k candidates needs no engine.

Plan statuses, one per customer:

| status | who |
|---|---|
| member | an active external member of the group's WeCom chat |
| left | was in the chat, no longer is (never re-invited automatically) |
| invite | matches the rule, follows an advisor on WeCom, not in the chat, passes the level policy |
| excluded | matches the rule but cannot or must not be invited, or sits in a homogeneous group at another level — with the reason |

Level policies (适当性: a push to a group is judged against its lowest member):

- ``lowest_member`` — anyone suitable may join; content is judged against the lowest C level
  present (and the strictest of the members' flags, expiries and objectives). Customers
  without a valid assessment are not invited: one of them would block every push.
- ``homogeneous`` — only customers at the group's ``risk_level`` are invited; content is
  judged at that level, unless someone at a lower level is in the chat anyway, in which case
  the lowest member decides, as above.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from caifu.core import expressions as ex
from caifu.core.errors import ConfigError
from caifu.core.suitability import (
    C_LEVELS,
    OBJECTIVE_MAX,
    Investor,
    Verdict,
    judge,
    level_rank,
    lowest,
)

Policy = Literal["lowest_member", "homogeneous"]
Status = Literal["invite", "member", "left", "excluded"]
POLICIES: Final = ("lowest_member", "homogeneous")
STATUSES: Final = ("member", "invite", "left", "excluded")


def check_rule(text: str, known_tags: set[str] | None) -> ex.Expr:
    """Parse a group rule; it may name tags only (``ExpressionError`` says where not)."""
    expr = ex.parse(text)
    fields = sorted(ex.fields_used(expr))
    if fields:
        raise ex.ExpressionError(
            f"a preference group's rule names tags only (tag:ID), not features: {', '.join(fields)}"
            " — make a rule tag of the condition and use it here", text=text)
    ex.validate(expr, text, {}, known_tags)
    return expr


def check_policy(policy: str, risk_level: str | None) -> None:
    if policy not in POLICIES:
        raise ConfigError(f"level policy {policy!r}: use {' or '.join(POLICIES)}")
    if policy == "homogeneous" and risk_level not in C_LEVELS:
        raise ConfigError(f"a homogeneous group needs its risk level (C1..C5), not {risk_level!r}")
    if policy == "lowest_member" and risk_level is not None:
        raise ConfigError("a lowest_member group has no fixed risk level: its lowest member "
                         "decides")


def rule_members(expr: ex.Expr, holders: Mapping[str, Collection[str]],
                 universe: Collection[str] = ()) -> set[str]:
    """Customers for whom a tag-only ``expr`` holds; ``universe`` is needed for ``not``."""
    everyone = set(universe)

    def go(e: ex.Expr) -> set[str]:
        match e:
            case ex.TagRef(tag, _):
                return set(holders.get(tag, ()))
            case ex.And(items):
                out = go(items[0])
                for item in items[1:]:
                    out &= go(item)
                return out
            case ex.Or(items):
                return set().union(*(go(i) for i in items))
            case ex.Not(item):
                return everyone - go(item)
        raise ValueError(f"not a tag condition: {e!r}")

    return go(expr)


@dataclass(frozen=True)
class Assessment:
    """A customer's latest suitability assessment."""

    level: str
    valid_until: dt.date | None = None
    no_loss_tolerance: bool = False
    no_civil_capacity: bool = False
    objective: str | None = None

    def valid_on(self, on: dt.date) -> bool:
        return self.valid_until is None or self.valid_until >= on


@dataclass(frozen=True)
class PlanRow:
    customer_id: str
    status: Status
    reason: str
    risk_level: str | None


@dataclass(frozen=True)
class Plan:
    policy: str
    risk_level: str | None  # homogeneous: the group's level
    rows: tuple[PlanRow, ...]
    lowest_level: str | None  # the level content is judged against once the plan is done
    unidentified: int  # chat members no customer is linked to

    def of(self, status: Status) -> list[str]:
        return [r.customer_id for r in self.rows if r.status == status]

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.rows) for s in STATUSES}


def plan_members(*, policy: str, risk_level: str | None, matching: Collection[str],
                 followers: Collection[str], active: Collection[str],
                 left: Mapping[str, dt.datetime | None], assessments: Mapping[str, Assessment],
                 on: dt.date, unidentified: int = 0) -> Plan:
    """Sort every customer the group concerns into member, left, invite or excluded."""
    check_policy(policy, risk_level)
    matching, followers, active = set(matching), set(followers), set(active)
    rows: list[PlanRow] = []
    for cid in sorted(matching | active | set(left)):
        a = assessments.get(cid)
        level = a.level if a else None
        valid = a is not None and a.valid_on(on)
        if cid in active:
            note = "" if cid in matching else "；已不符合规则"
            if policy == "homogeneous" and (not valid or level != risk_level):
                what = f"风险等级 {level}" if valid else "无有效风险测评"
                rows.append(PlanRow(cid, "excluded", f"在群，但{what}，本群只收 {risk_level}："
                                    "请移出或另建同级群", level))
            else:
                rows.append(PlanRow(cid, "member", "在群" + note, level))
        elif cid in left:
            when = left[cid]
            rows.append(PlanRow(cid, "left", (f"{when:%Y-%m-%d} " if when else "") +
                                "已退群：不再自动邀请", level))
        elif cid not in followers:
            rows.append(PlanRow(cid, "excluded", "符合规则，但未添加投顾企业微信：无法邀请", level))
        elif a is None:
            rows.append(PlanRow(cid, "excluded", "符合规则，但无风险测评：入群将使推送无法通过适当性判断",
                                level))
        elif not valid:
            rows.append(PlanRow(cid, "excluded", f"符合规则，但风险测评已于 {a.valid_until} 过期",
                                level))
        elif policy == "homogeneous" and level != risk_level:
            rows.append(PlanRow(cid, "excluded", f"风险等级 {level}，本群为同级群，只收 {risk_level}",
                                level))
        else:
            rows.append(PlanRow(cid, "invite", "符合规则，已添加投顾企业微信", level))
    present: list[str | None] = [r.risk_level for r in rows if r.status in ("member", "invite")]
    present += [None] * unidentified
    if policy == "homogeneous" and risk_level is not None:
        present.append(risk_level)
    return Plan(policy, risk_level, tuple(rows), lowest(present) if present else None,
                unidentified)


@dataclass(frozen=True)
class GroupVerdict:
    verdict: Verdict
    basis: str  # how the level was chosen, in words
    lowest_customers: tuple[str, ...]  # who holds the group down
    members: int

    @property
    def may_recommend(self) -> bool:
        return self.verdict.may_recommend


def group_investor(members: Mapping[str, Assessment | None], on: dt.date,
                   floor: str | None = None) -> tuple[Investor, tuple[str, ...]]:
    """The group as one investor: its lowest level and the strictest of everything else.

    ``floor`` (a homogeneous group's level) counts as one more member. An unassessed or
    expired member makes the group unassessed or expired, as he would be on his own.
    """
    levels: list[str | None] = [a.level if a else None for a in members.values()]
    if floor is not None:
        levels.append(floor)
    level = lowest(levels) if levels else None
    assessed = [a for a in members.values() if a is not None]
    expired = [a.valid_until for a in assessed if not a.valid_on(on) and a.valid_until]
    valid_until = min(expired) if expired else None
    c1 = [a for a in assessed if a.level == "C1"]
    caps = [o for o in (a.objective for a in assessed) if o in OBJECTIVE_MAX]
    objective = min(caps, key=lambda o: level_rank(OBJECTIVE_MAX[o])) if caps else None
    investor = Investor(level, valid_until,
                        no_loss_tolerance=any(a.no_loss_tolerance for a in c1),
                        no_civil_capacity=any(a.no_civil_capacity for a in c1),
                        objective=objective)
    holding = tuple(sorted(cid for cid, a in members.items()
                           if a is None or (level is not None and a.level == level)))
    return investor, holding


def judge_group(policy: str, risk_level: str | None, members: Mapping[str, Assessment | None],
                product_level: str, on: dt.date, unidentified: int = 0) -> GroupVerdict:
    """May content of ``product_level`` be pushed to the group (see module doc)?"""
    check_policy(policy, risk_level)
    everyone: dict[str, Assessment | None] = dict(members)
    for i in range(unidentified):
        everyone[f"(未识别成员 {i + 1})"] = None
    if not everyone and policy == "lowest_member":
        v = judge(Investor(None), product_level, on)
        return GroupVerdict(v, "群内尚无成员：无从判断", (), 0)
    investor, holding = group_investor(everyone, on, risk_level)
    if policy == "homogeneous" and (investor.level == risk_level):
        basis = f"同级群 {risk_level}"
    elif policy == "homogeneous":
        basis = f"同级群 {risk_level}，但群内最低为 {investor.level or '未测评'}：按最低成员"
    else:
        basis = f"按最低成员 {investor.level or '未测评'}"
    return GroupVerdict(judge(investor, product_level, on), basis, holding, len(members))


def members_of(rows: Sequence[PlanRow]) -> list[str]:
    """Customers a push would reach once the plan is carried out."""
    return [r.customer_id for r in rows if r.status in ("member", "invite")]
