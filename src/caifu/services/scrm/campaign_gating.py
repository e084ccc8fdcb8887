"""Gating a campaign's targets: one suitability, consent, reachability, frequency and
compliance decision per customer (``scrm.campaigns.decide``), from what the system of record
says about each of them now. ``services/scrm/campaigns`` stores the decisions.

    mass_send   each customer judged alone, routed through the advisor he follows (his own
                advisor first); the text is checked as that advisor would send it
    group       one decision for the preference group's chat, judged as its lowest member
                and copied to every member's row
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.sor.repos import scrm_campaigns as runs
from caifu.adapters.sor.repos import wecom_groups as groups_repo
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.suitability import Investor, investor_of
from caifu.scrm import campaigns as gate
from caifu.text.compliance import Lexicon

LINK_PLACEHOLDER = "https://link.invalid/t/placeholder"  # the link's length and shape at gating

Route = tuple[str | None, str | None]  # (advisor, external userid) a customer is sent through


@dataclass(frozen=True)
class ChatGroup:
    """A preference group with a WeCom chat: its row, current members, the chat's advisor."""

    group: Any
    members: list[str]
    advisor: dict[str, Any] | None


def message(content: dict[str, Any], advisor: dict[str, Any] | None, link: str) -> str:
    advisor = advisor or {}
    return gate.compose(content["title"], link, advisor.get("name"),
                        advisor.get("sac_number"), content["risk_level"],
                        content["content_type"] == "research_report")


def message_check(content: dict[str, Any], advisor: dict[str, Any] | None,
                  lexicon: Lexicon | None) -> gate.MessageCheck:
    """The compliance check of the text this advisor would send (no advisor: the content
    alone — the customer is unreachable anyway, the footer is moot)."""
    text = message(content, advisor, LINK_PLACEHOLDER)
    check = gate.check_message(text, advisor_name=(advisor or {}).get("name"),
                               risk_level=content["risk_level"],
                               research=content["content_type"] == "research_report",
                               lexicon=lexicon)
    return check if advisor else gate.MessageCheck(check.prohibited, (), check.lexicon_version)


def investors(conn: Connection, tenant: str, ids: Sequence[str]
              ) -> dict[str, tuple[Investor, Any]]:
    """Each customer's investor (latest assessment) and master row (consent, advisor)."""
    latest = repo.latest_assessments(conn, tenant, ids)
    out: dict[str, tuple[Investor, Any]] = {}
    for m in repo.marketing_masters(conn, tenant, ids):
        out[m.customer_id] = (investor_of(latest.get(m.customer_id), bool(m.professional)), m)
    return out


def gate_mass(conn: Connection, tenant: str, campaign_id: str, ids: Sequence[str],
              content: dict[str, Any], on: dt.datetime, cap: gate.FrequencyCap,
              lexicon: Lexicon | None) -> tuple[list[gate.Decision], dict[str, Route]]:
    found = investors(conn, tenant, ids)
    follows = repo.active_follows(conn, tenant, ids)
    advisors = repo.advisors(conn, tenant)
    recent = runs.recent_sends(conn, tenant, campaign_id, ids,
                               on - dt.timedelta(days=cap.days))
    checks: dict[str | None, gate.MessageCheck] = {}
    decisions, routes = [], {}
    for cid in ids:
        if cid not in found:  # not a customer of this tenant: nothing to decide on
            continue
        investor, master = found[cid]
        mine = [f for f in follows.get(cid, [])
                if advisors.get(f.advisor_id, {}).get("wecom_userid")]
        mine.sort(key=lambda f: f.advisor_id != master.advisor_id)  # his own advisor first
        advisor_id = mine[0].advisor_id if mine else None
        if advisor_id not in checks:
            checks[advisor_id] = message_check(content, advisors.get(advisor_id or ""), lexicon)
        target = gate.Target(cid, investor, master.marketing_consent,
                             tuple(recent.get(cid, ())), reachable=bool(mine))
        decisions.append(gate.decide(target, content["risk_level"], checks[advisor_id], on, cap))
        routes[cid] = (advisor_id, mine[0].external_userid if mine else None)
    return decisions, routes


def chat_group(conn: Connection, tenant: str, group_id: str) -> ChatGroup:
    """The preference group, its current members and the advisor owning its chat."""
    group = repo.preference_group(conn, tenant, group_id)
    if group is None:
        raise NotFoundError(f"no preference group {group_id!r}")
    if not group.chat_id:
        raise ConfigError(f"preference group {group_id} has no WeCom group chat yet")
    members = repo.plan_customers(conn, tenant, group_id, ("member",))
    owner = groups_repo.chat_owner(conn, tenant, group.chat_id)
    advisor = next((a for a in repo.advisors(conn, tenant).values()
                    if owner and a["wecom_userid"] == owner), None)
    return ChatGroup(group, members, advisor)


def gate_group(conn: Connection, tenant: str, group_id: str, content: dict[str, Any],
               on: dt.datetime, lexicon: Lexicon | None) -> list[gate.Decision]:
    """One decision for the group, judged as its lowest member, copied to each member."""
    chat = chat_group(conn, tenant, group_id)
    found = investors(conn, tenant, chat.members)
    judged = gate.group_investor([found[c][0] for c in chat.members if c in found])
    check = message_check(content, chat.advisor, lexicon)
    if chat.advisor is None:  # a chat whose owner is no known advisor cannot carry a footer
        check = gate.MessageCheck(check.prohibited, ("群主投顾信息",), check.lexicon_version)
    d = gate.decide(gate.Target(f"group:{group_id}", judged, True), content["risk_level"],
                    check, on)
    note = f"客户群 {group_id} 按最低成员等级 {judged.level or '未测评'} 判断"
    return [gate.Decision(c, d.outcome, d.rule, (note, *d.reasons), judged.level,
                          d.product_level) for c in chat.members if c in found]
