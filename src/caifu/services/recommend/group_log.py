"""Group posts on the recommendation log's ``group`` surface.

A ``group`` campaign posts one content item to a preference group's WeCom chat. When the item
is in the group's content plan at the post time (``services/scrm/group_content.plan_at``, with
n = ``PLAN_N`` so its place is found), the post is a recommendation shown to each member the
plan counts, and is logged (``recommendation_log``) once per member with

    item_id, item_type            the content id as the catalogue names it, ``content``
    rank                          the item's place in the group's plan
    score                         basis ``lists``: its vote, Σ (k + 1 − r) / k over the
                                  members' top k (``scrm/group_content``); basis
                                  ``popularity`` (the plan's fallback): the number of
                                  distinct APP readers over ``POPULARITY_DAYS`` — not a vote
    policy_version                the published lists' policy version the plan read (several
                                  joined by ","), or ``group-popularity`` for a fallback item
    propensity                    1.0: the plan is deterministic
    list_id                       one per member row: each member sees a one-item showing
    sent_at = shown_at            the post time; ``shown_by`` the actor who sent the run

**Who.** The members the plan counts (``pref_groups.reach_of``): the chat's active members
linked to customers of the tenant. When the chat's membership is not synced (the plan then
counts the stored plan's members and invitees), the customers the post was sent to — the
run's contacts, the plan's members — stand in, since an invitee did not receive it.

**Outcomes.** A group post is one message for every member, without a per-member link, so
who opened or clicked it cannot be told apart: ``opened_at``/``clicked_at`` stay empty.
Conversions come from ``caifu recommend outcomes`` per customer, as for every logged row.

The rows are written in the send's own transaction (``Campaigns.send``): a failed post has
none. Each row's ``rec_id`` is derived from (campaign, customer), so a retried send does not
log a member twice. A post of an item the plan does not hold (refused by one of its rules, or
below ``PLAN_N``) is not a recommendation: nothing is logged and the send summary says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from caifu.adapters.sor.repos import recommend as repo
from caifu.services.container import Container
from caifu.services.scrm import group_content

SURFACE = "group"
PLAN_N = 50  # the largest plan group_content makes: an item's place is found if it is planned
POPULARITY_VERSION = "group-popularity"


@dataclass(frozen=True)
class Placement:
    """The posted item in the group's plan at the post time (``rank`` None: not planned)."""

    item_id: str
    rank: int | None
    score: float | None
    policy_version: str | None
    members: tuple[str, ...]  # the customers a logged post is shown to


@dataclass
class Logged:
    logged: int = 0
    already: int = 0  # members logged for this campaign by an earlier attempt
    not_planned: int = 0  # members of a post whose item was not in the plan


def place(c: Container, tenant: str, group_id: str, item_id: str, sent_to: Sequence[str],
          on: dt.datetime) -> Placement:
    """Find ``item_id`` in the group's plan at ``on`` (read-only; call it before the send's
    transaction). ``sent_to``: the customers the post was sent to, who stand in for the
    chat's members when the plan counted no chat (module docstring)."""
    plan, reach = group_content.plan_at(c, tenant, group_id, on, n=PLAN_N)
    members = tuple(sorted(reach.members)) if reach.source == "chat" else tuple(sorted(sent_to))
    found = next((i for i in plan.items if i.item_id == item_id), None)
    if found is None:
        return Placement(item_id, None, None, None, members)
    version = (POPULARITY_VERSION if found.basis == "popularity"
               else ",".join(plan.policy_versions))
    return Placement(item_id, found.rank, found.score, version, members)


def rec_id(campaign_id: str, customer_id: str) -> str:
    """The row's id for one member of one group campaign: the same on a retry."""
    return hashlib.sha256(f"group\x1f{campaign_id}\x1f{customer_id}".encode()).hexdigest()[:32]


def log_post(conn: Connection, tenant: str, campaign_id: str, placed: Placement, *,
             actor: str, on: dt.datetime) -> Logged:
    """Log the post in the caller's transaction: one row per member, none when the item was
    not in the plan (counted in ``not_planned``) or the member is logged already."""
    out = Logged()
    if placed.rank is None or placed.policy_version is None:
        out.not_planned = len(placed.members)
        return out
    ids = {cid: rec_id(campaign_id, cid) for cid in placed.members}
    seen = repo.logged_rec_ids(conn, tenant, list(ids.values()))
    rows = []
    for cid, rid in ids.items():
        if rid in seen:
            out.already += 1
            continue
        rows.append({"rec_id": rid, "customer_id": cid, "item_id": placed.item_id,
                     "item_type": "content", "surface": SURFACE, "rank": placed.rank,
                     "score": placed.score, "propensity": 1.0,
                     "policy_version": placed.policy_version, "shown_at": on,
                     "shown_by": actor, "tracking_token": None, "sent_at": on,
                     "list_id": uuid.uuid4().hex, "explored": False})
    repo.add_shown(conn, tenant, rows)
    out.logged = len(rows)
    return out


__all__ = ["PLAN_N", "POPULARITY_VERSION", "SURFACE", "Logged", "Placement", "log_post",
           "place", "rec_id"]
