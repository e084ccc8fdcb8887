"""Campaign sends on the recommendation log's ``campaign`` surface.

A campaign run created with ``recommended_k`` (``services/scrm/campaigns``) sends its content
item to the customers whose published list holds it in the first k places: each message
actually sent is a recommendation shown, and is logged (``recommendation_log``) with

    rank, score, policy_version   the item's place, score and the list's version in the
                                  customer's published list at send time
    propensity                    1.0: the selection is deterministic — the item is sent to
                                  every customer (past the campaign gate) whose list holds it
    list_id                       one per contact: each send is a one-item showing
    sent_at = shown_at            the send time; ``shown_by`` the actor who sent the run
    tracking_token                the contact's own (``campaign_contacts.tracking_token``):
                                  ``scrm.funnel.record_hit`` stamps opened/clicked on the
                                  contact and on this row together

Conversions come from ``caifu recommend outcomes`` as for every logged row. The rows are
written in the send's own transaction (``Campaigns.send``): a failed send has none, and a
contact whose token is logged already is not logged again.

Runs targeting segments, customer ids, preference groups or channel QR codes are not
recommendations and are not logged.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from caifu.adapters.sor.repos import recommend as repo

SURFACE = "campaign"


@dataclass(frozen=True)
class Send:
    """One message sent: to whom, with which tracking token."""

    customer_id: str
    tracking_token: str | None


@dataclass
class Logged:
    logged: int = 0
    already: int = 0  # contacts whose token was logged by an earlier attempt
    not_listed: list[str] = field(default_factory=list)  # lists without the item at send time


def log_sends(conn: Connection, tenant: str, item_id: str, sends: Sequence[Send], *,
              actor: str, on: dt.datetime) -> Logged:
    """Log ``sends`` of ``item_id`` in the caller's transaction. A customer whose published
    list no longer holds the item (re-published between the run and the send) has no rank to
    log: he is named in ``not_listed``, not logged."""
    out = Logged()
    tokens = [s.tracking_token for s in sends if s.tracking_token]
    seen = repo.logged_tokens(conn, tenant, tokens)
    lists = repo.lists_of(conn, tenant, [s.customer_id for s in sends])
    rows = []
    for s in sends:
        if s.tracking_token in seen:
            out.already += 1
            continue
        listed = lists.get(s.customer_id)
        items = json.loads(listed.items_json) if listed is not None else []
        place = next((n for n, x in enumerate(items, 1) if x.get("item_id") == item_id), None)
        if listed is None or place is None:
            out.not_listed.append(s.customer_id)
            continue
        found = items[place - 1]
        rows.append({"rec_id": uuid.uuid4().hex, "customer_id": s.customer_id,
                     "item_id": item_id, "item_type": found["item_type"], "surface": SURFACE,
                     "rank": place, "score": found.get("score"), "propensity": 1.0,
                     "policy_version": listed.policy_version, "shown_at": on,
                     "shown_by": actor, "tracking_token": s.tracking_token, "sent_at": on,
                     "list_id": uuid.uuid4().hex, "explored": False})
    repo.add_shown(conn, tenant, rows)
    out.logged = len(rows)
    return out


__all__ = ["SURFACE", "Logged", "Send", "log_sends"]
