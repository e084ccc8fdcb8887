"""A preference group's content plan: the next content items to post in its chat.

    caifu groups content new_energy -t demo --n 5 --k 10

The ranking is the members' own published recommendation lists (``caifu recommend publish``),
tallied by ``scrm.group_content`` (each member's top k votes, weighted by place; read its
docstring for the rule). Before anything is ranked, every content item of the tenant is held
against what may be pushed to the group **as a whole**, in this order — the first refusing
rule is the one counted:

| rule | refuses an item |
|---|---|
| ``NOT_VALID`` | outside its validity window on the plan day (published … + ``content_valid_days``) |
| a suitability rule | above what the group may receive: ``pref_groups.judge_level``, the group judged as one investor (its level policy: homogeneous level or lowest member, expired or missing assessments, objectives) — ``LEVEL_MISMATCH``, ``NO_ASSESSMENT`` … |
| ``COMPLIANCE`` | its title is flagged by the tenant's compliance lexicon (the mask's rule, ``recommend.catalogue.compliance_ok``) |
| ``RECENTLY_POSTED`` | a ``group`` campaign sent it to this group within ``caps.resend_after_days`` |

An item a member's list names that is no longer in the catalogue is ``WITHDRAWN``. The record
of group posts is the campaigns' own (``campaign_runs`` of channel ``group`` naming the group,
``campaign_contacts.sent_at``): posting goes through a group campaign, which gates the item
again at send time and is audited (``campaign_send``). A plan is a read-only proposal — it
shows no customer and writes nothing, as ``caifu recommend show`` writes nothing.

When no member's list names an item that may be posted, the plan falls back to popularity
within the eligible set (distinct readers in the APP over ``POPULARITY_DAYS``), and when the
lists name fewer than ``n`` it is filled the same way; each such item, and the plan, say so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from caifu.adapters.sor.repos import recommend as rec_repo
from caifu.adapters.sor.repos import scrm_campaigns as runs
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.suitability import R_LEVELS
from caifu.recommend.catalogue import compliance_ok
from caifu.scrm import group_content as gc
from caifu.scrm.groups import GroupVerdict
from caifu.services.compliance.chat_review import tenant_lexicon
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.recommend.serving import tenant_config
from caifu.services.scrm import pref_groups, sidebar

POPULARITY_DAYS = 90


@dataclass(frozen=True)
class PlannedItem:
    rank: int
    item_id: str
    title: str
    content_type: str
    label: str  # the content type in words
    risk_level: str
    url: str | None
    basis: str  # "lists": the members' votes; "popularity": the fallback
    score: float  # the vote (basis lists) or the readers (basis popularity)
    members: int  # members holding it in their top k
    reason: str


@dataclass
class ContentPlan:
    group_id: str
    name: str
    day: dt.date  # the plan day (the tenant's calendar)
    n: int
    k: int
    reach: int  # members a post reaches, unidentified chat members included
    reach_source: str  # "chat" or "plan" (pref_groups.reach_of)
    with_lists: int  # of them, customers with a published list
    policy_versions: list[str]
    judged: str  # how the group's level was chosen, in words
    investor_level: str | None  # the level the group is judged at
    max_level: str | None  # the highest R-level the group may receive (None: none)
    catalogue: int  # content items of the tenant
    eligible: int  # of them, those that may be posted to the group on the plan day
    refused: dict[str, int]  # over the catalogue: the first refusing rule → items
    voted: int  # distinct content items in the members' top k
    voted_refused: dict[str, int]  # of those, the first refusing rule → items
    basis: str  # "lists", "popularity", "lists+popularity", or "none" (nothing eligible)
    items: list[PlannedItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _day_of(c: Container, tenant: str, when: dt.datetime) -> dt.date:
    """The tenant's calendar day of ``when`` (naive UTC)."""
    return when.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(get_tenant(c, tenant).timezone)).date()


def _posted(rows: list[Any], group_id: str) -> set[str]:
    """Content ids a group campaign sent to ``group_id`` (``runs.group_posts`` rows)."""
    out = set()
    for r in rows:
        target = json.loads(r.target_json or "{}")
        if target.get("group_id") == group_id and r.content_id:
            out.add(str(r.content_id))
    return out


def readers(c: Container, tenant: str, start: dt.datetime, stop: dt.datetime) -> dict[str, int]:
    """content id → distinct customers who read it in the APP (``app_events`` view_content)
    at ``start <= event_time < stop`` (naive UTC): one aggregate over the lake's files, in
    an ephemeral DuckDB."""
    got = c.lake_query(
        tenant, "app_events",
        "select content_id, count(distinct customer_id) as n from app_events "
        "where event_type = 'view_content' and content_id is not null "
        "and event_time >= ? and event_time < ? group by content_id", [start, stop])
    if got is None:
        return {}
    return {str(cid): int(n) for cid, n in zip(got["content_id"].to_pylist(),
                                              got["n"].to_pylist(), strict=True)}


class _Rules:
    """The hard rules of the module docstring for one group on one day."""

    def __init__(self, group: Mapping[str, Any], reach: pref_groups.Reach, day: dt.date,
                 valid_days: int, posted: set[str]) -> None:
        self.group, self.reach, self.day = group, reach, day
        self.valid_days, self.posted = valid_days, posted
        self.verdicts: dict[str, GroupVerdict] = {}

    def verdict(self, level: str) -> GroupVerdict:
        if level not in self.verdicts:
            self.verdicts[level] = pref_groups.judge_level(self.group, self.reach, level,
                                                           self.day)
        return self.verdicts[level]

    def refusal(self, row: Any, compliant: bool) -> str | None:
        start = row.published_at.date() if row.published_at is not None else None
        if start is None or not start <= self.day <= start + dt.timedelta(self.valid_days):
            return "NOT_VALID"
        try:
            v = self.verdict(row.risk_level)
        except ConfigError as exc:
            raise ConfigError(f"content item {row.content_id}: {exc}") from None
        if not v.may_recommend:
            return v.verdict.rule
        if not compliant:
            return "COMPLIANCE"
        return "RECENTLY_POSTED" if row.content_id in self.posted else None


def _count(rules: Mapping[str, str | None], ids: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in ids:
        rule = rules.get(i, "WITHDRAWN")
        if rule is not None:
            out[rule] = out.get(rule, 0) + 1
    return dict(sorted(out.items()))


def content_plan(c: Container, tenant: str, group_id: str, n: int = 5, k: int = 10,
                 on: dt.date | None = None) -> ContentPlan:
    """The group's next ``n`` content items, ranked by its members' top ``k`` and restricted
    to what may be posted to the group on ``on`` (default: today in the tenant's time zone).
    NotFoundError for an unknown group, ConfigError for n or k out of range."""
    now = c.clock.now()  # one instant: the plan's day and its resend window agree
    return _plan(c, tenant, group_id, n, k, on or _day_of(c, tenant, now), now)[0]


def plan_at(c: Container, tenant: str, group_id: str, when: dt.datetime, n: int = 50,
            k: int = 10) -> tuple[ContentPlan, pref_groups.Reach]:
    """The plan as it stands at ``when`` (naive UTC; its day in the tenant's time zone, the
    resend window counted back from it), with the members it counted — for a group post's
    log (``services/recommend/group_log``), which needs the members the plan never shows."""
    return _plan(c, tenant, group_id, n, k, _day_of(c, tenant, when), when)


def _plan(c: Container, tenant: str, group_id: str, n: int, k: int, day: dt.date,
          now: dt.datetime) -> tuple[ContentPlan, pref_groups.Reach]:
    if not 1 <= n <= 50 or not 1 <= k <= 100:
        raise ConfigError(f"n must be 1–50 and k 1–100 (got n={n}, k={k})")
    try:
        group = pref_groups.get_group(c, tenant, group_id)
    except ConfigError as exc:  # the group id is a name the caller looks up
        raise NotFoundError(str(exc)) from None
    config = tenant_config(c, tenant)
    since = now - dt.timedelta(days=config.caps.resend_after_days)
    with c.engine.connect() as conn:
        reach = pref_groups.reach_of(conn, tenant, group)
        lists = rec_repo.lists_of(conn, tenant, list(reach.members))
        catalogue = rec_repo.content_catalogue(conn, tenant)
        posted = _posted(runs.group_posts(conn, tenant, since), group_id)
        any_lists = bool(lists) or rec_repo.has_lists(conn, tenant)
    rules = _Rules(group, reach, day, config.content_valid_days, posted)
    ok = compliance_ok(np.array([r.title for r in catalogue], dtype=object),
                       tenant_lexicon(c, tenant)) if catalogue else np.zeros(0, bool)
    refusal = {r.content_id: rules.refusal(r, bool(fine))
               for r, fine in zip(catalogue, ok, strict=True)}
    rows = {r.content_id: r for r in catalogue}
    eligible = [i for i, rule in refusal.items() if rule is None]

    heads = {cid: json.loads(row.items_json)[:k] for cid, row in lists.items()}
    tops = {cid: [str(x["item_id"]) for x in head] for cid, head in heads.items()}
    types = {str(x["item_id"]): x["item_type"] for head in heads.values() for x in head}
    votes = [v for v in gc.tally(tops, k).values() if types.get(v.item_id) == "content"]
    size = len(reach.members) + reach.unidentified
    level_verdict = rules.verdict("R1")
    plan = ContentPlan(
        group_id, group["name"], day, n, k, size, reach.source, len(lists),
        sorted({str(r.policy_version) for r in lists.values()}), level_verdict.basis,
        level_verdict.verdict.investor_level,
        next((lv for lv in reversed(R_LEVELS) if rules.verdict(lv).may_recommend), None),
        len(catalogue), len(eligible),
        _count(refusal, refusal), len(votes), _count(refusal, (v.item_id for v in votes)),
        "none")

    for v in gc.by_vote(v for v in votes if refusal.get(v.item_id, "WITHDRAWN") is None):
        if len(plan.items) == n:
            break
        plan.items.append(_item(len(plan.items) + 1, rows[v.item_id], "lists", v.score,
                                v.members, gc.vote_reason(v, size, k)))
    from_lists = len(plan.items)
    if from_lists < n and eligible:
        why = "成员推荐清单之外补足" if from_lists else "群成员无可用的推荐清单"
        read = readers(c, tenant, dt.datetime.combine(day, dt.time())
                       - dt.timedelta(days=POPULARITY_DAYS),
                       dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
        taken = {i.item_id for i in plan.items}
        for item in gc.by_popularity((i for i in eligible if i not in taken), read,
                                     {i: rows[i].published_at for i in eligible}):
            if len(plan.items) == n:
                break
            plan.items.append(_item(len(plan.items) + 1, rows[item], "popularity",
                                    float(read.get(item, 0)), 0,
                                    gc.popularity_reason(read.get(item, 0), POPULARITY_DAYS,
                                                         why)))
    plan.basis = "+".join(b for b, used in (("lists", from_lists > 0),
                                            ("popularity", len(plan.items) > from_lists))
                          if used) or "none"
    _notes(plan, from_lists, any_lists, tenant)
    return plan, reach


def _item(rank: int, row: Any, basis: str, score: float, members: int, reason: str
          ) -> PlannedItem:
    return PlannedItem(rank, row.content_id, row.title, row.content_type,
                       sidebar.CONTENT_TYPES.get(row.content_type, row.content_type),
                       row.risk_level, row.url, basis, round(score, 6), members, reason)


def _notes(plan: ContentPlan, from_lists: int, any_lists: bool, tenant: str) -> None:
    if plan.reach == 0:
        plan.notes.append("群内尚无成员（聊天与计划均无）：无从判断适当性，不能推送任何内容")
    elif not plan.with_lists:
        plan.notes.append("群成员均无已发布的推荐清单：改按可推送内容的阅读热度排序"
                          f"（近{POPULARITY_DAYS}天 APP 阅读人数）"
                          + ("" if any_lists else
                             f" — 先运行 `caifu recommend publish -t {tenant}`"))
    elif from_lists == 0 and plan.items:
        plan.notes.append("成员推荐清单前列的内容均不可推送到本群：改按阅读热度排序")
    elif from_lists < len(plan.items):
        plan.notes.append(f"成员推荐清单中可推送的内容只有 {from_lists} 条：其余按阅读热度补足")
    if plan.eligible == 0 and plan.reach:
        plan.notes.append("没有可推送到本群的内容（见各规则拒绝的数量）")
    elif 0 < len(plan.items) < plan.n:
        plan.notes.append(f"可推送到本群的内容只有 {len(plan.items)} 条")
