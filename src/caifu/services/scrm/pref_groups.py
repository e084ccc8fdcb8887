"""Preference groups: define them by tags, plan who to invite, judge content for them.

    caifu groups list -t demo
    caifu groups plan new_energy -t demo

The sizes shown (customers per group and plan status) are the metric
``preference_group_customers`` over the stored plans, in the caller's scope.

``scrm.groups`` holds the rules (statuses, level policies, the group as one investor); this
module reads the current tags (``tag_assignments``), who follows an advisor on WeCom
(``wecom_follows``), who is in the group's chat (``wecom_groups``/``wecom_group_members``,
kept current by the callback worker) and each customer's latest suitability assessment, and
writes the plan into ``preference_group_members``. A chat member is a customer through his
follow (``wecom_follows.customer_id``, kept by ``services.links``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.sor.repos import wecom_groups as groups_repo
from caifu.core import expressions as ex
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.scrm import groups as g
from caifu.services.container import Container
from caifu.services.metrics.query import answer
from caifu.services.platform.access import tenant_of
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles import tag_definitions
from caifu.services.profiles.figures import Figures, counted
from caifu.services.quality.checks import today

# The demo's three groups. The default tag set has no 新能源 or 定投 tag yet, so each uses the
# nearest tags that exist: ChiNext interest (CATL and most new-energy names list there) and
# fund buyers; a tenant with its own theme tags (e.g. a text tag on theme.新能源) edits the rule.
DEMO_GROUPS: tuple[dict[str, Any], ...] = (
    {"group_id": "new_energy", "name": "新能源", "rule": "tag:interest_chinext",
     "level_policy": "homogeneous", "risk_level": "C4"},
    {"group_id": "sse50_etf", "name": "上证50 ETF", "rule": "tag:interest_sse50",
     "level_policy": "lowest_member", "risk_level": None},
    {"group_id": "fund_sip", "name": "基金定投", "rule": "tag:fund_purchase_lead or tag:fund_heavy",
     "level_policy": "lowest_member", "risk_level": None},
)


@dataclass
class GroupPlan:
    group: dict[str, Any]
    plan: g.Plan


def known_tags(c: Container, tenant: str) -> set[str]:
    definitions, _ = tag_definitions.load_definitions(c, tenant)
    return {d.id for d in definitions}


def save_group(c: Container, tenant: str, group_id: str, name: str, rule: str,
               level_policy: str = "lowest_member", risk_level: str | None = None,
               chat_id: str | None = None) -> dict[str, Any]:
    """Create or replace a group definition after checking its rule and level policy."""
    get_tenant(c, tenant)
    if not group_id or len(group_id) > 64 or not name.strip():
        raise ConfigError("a preference group needs an id (1–64 characters) and a name")
    g.check_rule(rule, known_tags(c, tenant))
    g.check_policy(level_policy, risk_level)
    now = c.clock.now()
    values = {"name": name.strip(), "rule": rule, "level_policy": level_policy,
              "risk_level": risk_level, "chat_id": chat_id, "updated_at": now}
    with c.engine.begin() as conn:
        repo.save_preference_group(conn, tenant, group_id, now, **values)
    return get_group(c, tenant, group_id)


def get_group(c: Container, tenant: str, group_id: str) -> dict[str, Any]:
    with c.engine.connect() as conn:
        row = repo.preference_group(conn, tenant, group_id)
    if row is None:
        raise ConfigError(f"no preference group {group_id!r} in tenant {tenant!r} "
                          "(see `caifu groups list`)")
    return dict(row._mapping)


def list_groups(c: Container, tenant: str) -> list[dict[str, Any]]:
    """Every group's definition (the sizes of its plan: ``plan_sizes``)."""
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        return repo.preference_group_list(conn, tenant)


def plan_sizes(c: Container, p: Principal) -> Figures:
    """Customers per (group, plan status) in the stored plans, in ``p``'s scope: the metric
    ``preference_group_customers`` today (a plan is stored when it is made)."""
    day = today(c, tenant_of(p))
    return counted(answer(c, p, "preference_group_customers",
                          by=("preference_group", "plan_status"), grain="all", start=day,
                          end=day))


def group_sizes(sizes: Figures, group_id: str) -> dict[str, int | None]:
    """One group's customers per plan status, every status listed."""
    return {status: sizes.get((group_id, status)) for status in g.STATUSES}


def seed_demo_groups(c: Container, tenant: str,
                     chat_ids: Mapping[str, str] | None = None) -> list[str]:
    """The demo's 新能源, 上证50 ETF and 基金定投 groups (idempotent); ``chat_ids`` binds a
    group to a WeCom chat by group id."""
    chats = chat_ids or {}
    for spec in DEMO_GROUPS:
        save_group(c, tenant, chat_id=chats.get(spec["group_id"]), **spec)
    return [spec["group_id"] for spec in DEMO_GROUPS]


# --- reading what the plan needs ---------------------------------------------------------------


def _holders(conn: Connection, tenant: str, tags: set[str], now: dt.datetime
             ) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {tag: set() for tag in tags}
    if not tags:
        return out
    for cid, tag in profiles_repo.tag_holders(conn, tenant, sorted(tags), unexpired_at=now):
        out[tag].add(cid)
    return out


def _chat_members(conn: Connection, tenant: str, chat_id: str | None
                  ) -> tuple[set[str], dict[str, dt.datetime | None], int]:
    """Customers active in the chat, customers who left (with when), unidentified actives."""
    if not chat_id:
        return set(), {}, 0
    rows = groups_repo.external_chat_members(conn, tenant, chat_id)
    to_customer = repo.customers_of_contacts(conn, tenant, (r.member_id for r in rows))
    active = {to_customer[r.member_id] for r in rows if r.active and r.member_id in to_customer}
    left = {to_customer[r.member_id]: r.left_at for r in rows
            if not r.active and r.member_id in to_customer}
    unidentified = sum(1 for r in rows if r.active and r.member_id not in to_customer)
    return active, {cid: when for cid, when in left.items() if cid not in active}, unidentified


def latest_assessments(conn: Connection, tenant: str, customer_ids: Iterable[str]
                       ) -> dict[str, g.Assessment]:
    """Each customer's latest assessment (by date, then id)."""
    best = repo.latest_assessments(conn, tenant, customer_ids)
    return {cid: g.Assessment(r.risk_level, r.valid_until, bool(r.no_loss_tolerance),
                              bool(r.no_civil_capacity), r.objective)
            for cid, r in best.items()}


# --- plan and judge -----------------------------------------------------------------------------


def plan(c: Container, tenant: str, group_id: str, on: dt.date | None = None) -> GroupPlan:
    """Work out invite / member / left / excluded and store it as the group's member plan."""
    group = get_group(c, tenant, group_id)
    expr = g.check_rule(group["rule"], known_tags(c, tenant))
    now = c.clock.now()
    day = on or now.date()
    needs_universe = any(isinstance(e, ex.Not) for e in ex.walk(expr))
    with c.engine.begin() as conn:
        holders = _holders(conn, tenant, ex.tags_used(expr), now)
        universe = repo.customer_ids(conn, tenant) if needs_universe else set()
        matching = g.rule_members(expr, holders, universe)
        active, left, unidentified = _chat_members(conn, tenant, group["chat_id"])
        levels = latest_assessments(conn, tenant, matching | active | set(left))
        result = g.plan_members(policy=group["level_policy"], risk_level=group["risk_level"],
                                matching=matching, followers=repo.followers(conn, tenant),
                                active=active, left=left, assessments=levels, on=day,
                                unidentified=unidentified)
        repo.replace_plan(conn, tenant, group_id, [
            {"customer_id": r.customer_id, "status": r.status, "reason": r.reason,
             "risk_level": r.risk_level, "updated_at": now} for r in result.rows])
    return GroupPlan(group, result)


def plan_rows(c: Container, tenant: str, group_id: str, status: str | None = None
              ) -> list[dict[str, Any]]:
    """The stored plan of a group (as of its last ``plan``)."""
    get_group(c, tenant, group_id)
    with c.engine.connect() as conn:
        return repo.plan_rows(conn, tenant, group_id, status)


@dataclass(frozen=True)
class Reach:
    """Whom a post to the group reaches, each with his latest assessment (None: none)."""

    members: dict[str, g.Assessment | None]
    unidentified: int  # chat members no customer is linked to (judged as unassessed)
    source: str  # "chat" (its active members) or "plan" (the stored plan's members, invitees)


def reach_of(conn: Connection, tenant: str, group: Mapping[str, Any]) -> Reach:
    """The chat's active members when the group has a chat with members, otherwise the
    stored plan's members and invitees."""
    active, _, unidentified = _chat_members(conn, tenant, group["chat_id"])
    source = "chat"
    if not active and not unidentified:
        active = set(repo.plan_customers(conn, tenant, group["group_id"], ("member", "invite")))
        source = "plan"
    levels = latest_assessments(conn, tenant, active)
    return Reach({cid: levels.get(cid) for cid in sorted(active)}, unidentified, source)


def judge_level(group: Mapping[str, Any], reach: Reach, product_level: str, day: dt.date
                ) -> g.GroupVerdict:
    """``scrm.groups.judge_group`` for the group as ``reach`` finds it (ConfigError for a
    level that is not R1..R5)."""
    try:
        return g.judge_group(group["level_policy"], group["risk_level"], reach.members,
                             product_level, day, reach.unidentified)
    except ValueError as exc:  # an unknown product level
        raise ConfigError(str(exc)) from None


def content_level_ok(c: Container, tenant: str, group_id: str, product_level: str,
                     on: dt.date | None = None) -> g.GroupVerdict:
    """May content of ``product_level`` (R1..R5) be pushed to the group?

    Judged against who it would reach (``reach_of``): the chat's active members when the
    group has a chat with members, otherwise the stored plan's members and invitees. Chat
    members no customer is linked to count as unassessed.
    """
    group = get_group(c, tenant, group_id)
    day = on or c.clock.now().date()
    with c.engine.connect() as conn:
        reach = reach_of(conn, tenant, group)
    return judge_level(group, reach, product_level, day)
