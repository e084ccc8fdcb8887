"""Campaign runs: gate every target, store every decision, send the allowed ones through
WeCom, poll delivery, record opens and clicks from the tracking link.

    Campaigns(c).create_run("acme", "HD20250301", actor="ops1", segment_id="新能源")
    Campaigns(c).send("acme", "HD20250301", actor="ops1", link_base="https://caifu.example")
    Campaigns(c).poll("acme", "HD20250301")

A campaign (contract table ``campaigns``) has one run (``campaign_runs``). Gating replaces the
run's decisions and contacts while nothing is sent; once sent, a run is fixed. Channels:

    mass_send   one ``add_msg_template`` per allowed customer, from the advisor he follows,
                so each text carries its own tracking link (a shared text could not tell
                who clicked) and the advisor's footer
    group       one group message to the preference group's WeCom chat, judged against
                its lowest member (every member's decision row says so); no per-customer link
    channel_qr  one ``add_contact_way`` per advisor with the campaign's ``state``; the
                customers who add through it are its funnel (``services/scrm/funnel``)

Each target's decision is worked out in ``services/scrm/campaign_gating``; the rows live in
``adapters/sor/repos/scrm_campaigns``. Conversions, funnels and the comparison table are in
``services/scrm/funnel``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.sor.repos import scrm_campaigns as runs
from caifu.adapters.wecom.errors import WeComError
from caifu.core.errors import ConfigError, NotFoundError
from caifu.scrm import campaigns as gate
from caifu.services.compliance import audit
from caifu.services.compliance.chat_review import tenant_lexicon
from caifu.services.container import Container
from caifu.services.recommend import campaign_log, group_log
from caifu.services.scrm import campaign_gating as gating
from caifu.services.scrm.wecom_app import client_for
from caifu.text.compliance import Lexicon

WECOM_CHANNELS = ("mass_send", "group", "channel_qr")


@dataclass(frozen=True)
class RunSummary:
    campaign_id: str
    channel: str
    status: str
    targeted: int
    allowed: int
    blocked: dict[str, int]  # deciding rule → customers
    rule_version: str


@dataclass(frozen=True)
class SendSummary:
    campaign_id: str
    channel: str
    sent: int
    failed: int
    contact_ways: int = 0
    logged: int = 0  # sends logged as recommendations (a ``recommended_k`` run, a group post)
    not_logged: int = 0  # … not logged: the item was no longer in his published list (top
    # k), or was not in the group's content plan (group) at send time


class Campaigns:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.lexicon: Lexicon | None = None

    # --- reading ---------------------------------------------------------------------------

    def campaign(self, tenant: str, campaign_id: str) -> dict[str, Any]:
        with self.c.engine.connect() as conn:
            row = runs.campaign(conn, tenant, campaign_id)
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id!r}")
        return row

    def run(self, tenant: str, campaign_id: str) -> dict[str, Any] | None:
        with self.c.engine.connect() as conn:
            out = runs.run(conn, tenant, campaign_id)
        if out is None:
            return None
        out["target"] = json.loads(out.pop("target_json") or "{}")
        return out

    def _content(self, tenant: str, content_id: str | None) -> dict[str, Any] | None:
        if content_id is None:
            return None
        with self.c.engine.connect() as conn:
            return repo.content_item(conn, tenant, content_id)

    def _advisors(self, tenant: str) -> dict[str, dict[str, Any]]:
        with self.c.engine.connect() as conn:
            return repo.advisors(conn, tenant)

    # --- gating ------------------------------------------------------------------------------

    def create_run(self, tenant: str, campaign_id: str, *, actor: str,
                   segment_id: str | None = None, customer_ids: Iterable[str] | None = None,
                   group_id: str | None = None, advisor_ids: Iterable[str] | None = None,
                   scheduled_at: dt.datetime | None = None, attribution_days: int = 14,
                   cap: gate.FrequencyCap | None = None, on: dt.datetime | None = None,
                   recommended_k: int | None = None) -> RunSummary:
        """Gate the campaign's targets and store every decision (replacing an unsent run's).

        ``recommended_k``: target the customers whose published recommendation list has the
        campaign's content item within its first k places (``caifu recommend publish``)."""
        camp = self.campaign(tenant, campaign_id)
        channel = camp["channel"]
        if channel not in WECOM_CHANNELS:
            raise ConfigError(f"campaign {campaign_id}: channel {channel} is not sent through "
                              f"WeCom; runs support {', '.join(WECOM_CHANNELS)}")
        if not 1 <= attribution_days <= 365:
            raise ConfigError("attribution_days: between 1 and 365")
        existing = self.run(tenant, campaign_id)
        if existing is not None and existing["status"] not in ("draft", "gated"):
            raise ConfigError(f"campaign {campaign_id} was already sent; a sent run is fixed")
        cap = cap or gate.FrequencyCap()
        on = on or self.c.clock.now()
        self.lexicon = tenant_lexicon(self.c, tenant)  # compliance's, for this tenant
        content = self._content(tenant, camp["content_id"])
        if channel != "channel_qr" and content is None:
            raise ConfigError(f"campaign {campaign_id} has no content item to send")
        chosen = [x is not None for x in (segment_id, customer_ids, group_id, advisor_ids,
                                          recommended_k)]
        if sum(chosen) != 1:
            raise ConfigError("target exactly one of: a segment, customer ids, the customers "
                              "whose top k recommendations hold the content, a preference "
                              "group (channel group) or advisors (channel channel_qr)")
        target: dict[str, Any] = {"cap": {"max_sends": cap.max_sends, "days": cap.days}}
        decisions: list[gate.Decision] = []
        routes: dict[str, tuple[str | None, str | None]] = {}  # customer → (advisor, ext id)
        if channel == "channel_qr":
            if advisor_ids is None:
                raise ConfigError("a channel_qr run targets advisors (advisor_ids)")
            target.update(kind="advisors", advisor_ids=sorted(set(advisor_ids)))
            known = self._advisors(tenant)
            missing = [a for a in target["advisor_ids"] if not known.get(a, {}).get("wecom_userid")]
            if missing or not target["advisor_ids"]:
                raise ConfigError(f"advisors without a WeCom userid: {', '.join(missing) or '—'}")
        elif channel == "group":
            if group_id is None:
                raise ConfigError("a group run targets a preference group (group_id)")
            target.update(kind="group", group_id=group_id)
            assert content is not None
            with self.c.engine.connect() as conn:
                decisions = gating.gate_group(conn, tenant, group_id, content, on,
                                              self.lexicon)
        else:
            if group_id is not None or advisor_ids is not None:
                raise ConfigError("a mass_send run targets a segment or customer ids")
            if recommended_k is not None:
                from caifu.services.recommend.serving import audience

                assert content is not None
                try:
                    aud = audience(self.c, tenant, content["content_id"], recommended_k)
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
                if not aud.policy_versions:
                    raise ConfigError(f"no published recommendation list has {aud.item_id} in "
                                      f"its top {recommended_k}: run `caifu recommend publish`")
                ids = aud.customer_ids
                target.update(kind="recommended", item_id=aud.item_id, k=recommended_k,
                              policy_versions=aud.policy_versions, as_of=aud.as_of)
            elif segment_id is not None:
                from caifu.services.profiles.segments import Segments

                day, members = Segments(self.c).members(tenant, segment_id)
                ids = sorted(set(members["customer_id"].to_pylist()))
                target.update(kind="segment", segment_id=segment_id, as_of=day.isoformat())
            else:
                ids = sorted(set(customer_ids or ()))
                target.update(kind="customers")
            assert content is not None
            with self.c.engine.connect() as conn:
                decisions, routes = gating.gate_mass(conn, tenant, campaign_id, ids, content,
                                                     on, cap, self.lexicon)
        self._store_run(tenant, campaign_id, camp, segment_id, scheduled_at, attribution_days,
                        target, decisions, routes, actor, on)
        blocked: dict[str, int] = {}
        for d in decisions:
            if not d.send:
                blocked[d.rule] = blocked.get(d.rule, 0) + 1
        return RunSummary(campaign_id, channel, "gated", len(decisions),
                          sum(d.send for d in decisions), blocked, gate.DECISION_RULE_VERSION)

    def _store_run(self, tenant: str, campaign_id: str, camp: dict[str, Any],
                   segment_id: str | None, scheduled_at: dt.datetime | None,
                   attribution_days: int, target: dict[str, Any],
                   decisions: list[gate.Decision],
                   routes: dict[str, tuple[str | None, str | None]], actor: str,
                   on: dt.datetime) -> None:
        rows = [{"customer_id": d.customer_id, "outcome": d.outcome, "rule": d.rule,
                 "reasons_json": json.dumps(list(d.reasons), ensure_ascii=False),
                 "investor_level": d.investor_level, "product_level": d.product_level,
                 "rule_version": d.rule_version, "decided_at": on} for d in decisions]
        contacts = []
        for d in decisions:
            advisor_id, ext = routes.get(d.customer_id, (None, None))
            contacts.append({"customer_id": d.customer_id, "targeted_at": on,
                             "advisor_id": advisor_id if d.send else None,
                             "external_userid": ext if d.send else None,
                             "tracking_token": secrets.token_urlsafe(16)
                             if d.send and camp["channel"] == "mass_send" else None})
        run_values = {"segment_id": segment_id, "status": "gated", "scheduled_at": scheduled_at,
                      "attribution_days": attribution_days,
                      "rule_version": gate.DECISION_RULE_VERSION,
                      "target_json": json.dumps(target, ensure_ascii=False),
                      "created_by": actor, "created_at": on}
        with self.c.engine.begin() as conn:
            runs.replace_run(conn, tenant, campaign_id, run_values, rows, contacts)

    def decisions(self, tenant: str, campaign_id: str, *, only: set[str] | None = None,
                  limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """The stored decisions, a page (``only``: the customer ids the caller may see)."""
        self.campaign(tenant, campaign_id)
        with self.c.engine.connect() as conn:
            rows = runs.decisions(conn, tenant, campaign_id)
        if only is not None:
            rows = [r for r in rows if r["customer_id"] in only]
        for r in rows:
            r["reasons"] = json.loads(r.pop("reasons_json"))
            r.pop("tenant_id")
        return {"campaign_id": campaign_id, "total": len(rows), "limit": limit,
                "offset": offset, "items": rows[offset:offset + limit]}

    # --- sending -----------------------------------------------------------------------------

    def send(self, tenant: str, campaign_id: str, *, actor: str, link_base: str,
             on: dt.datetime | None = None) -> SendSummary:
        """Send a gated run through WeCom; audited with the customers sent to.

        A run targeting ``recommended_k`` logs each message sent as a recommendation shown
        (surface ``campaign``, ``services/recommend/campaign_log``), in the same transaction
        as the contacts' ``sent_at``. A group post of an item in the group's content plan is
        logged for each member (surface ``group``, ``services/recommend/group_log``); a post
        of an item outside the plan is not, and counts its members in ``not_logged``. The
        other targets (segments, customer ids, channel QR) are not recommendations."""
        camp = self.campaign(tenant, campaign_id)
        run = self.run(tenant, campaign_id)
        if run is None or run["status"] != "gated":
            raise ConfigError(f"campaign {campaign_id} has no gated run to send "
                              f"({'none' if run is None else run['status']}); create a run first")
        on = on or self.c.clock.now()
        channel, content = camp["channel"], self._content(tenant, camp["content_id"])
        advisors = self._advisors(tenant)
        client = client_for(self.c, tenant)
        sent: list[tuple[str, str]] = []  # (customer, msgid)
        tokens: dict[str, str | None] = {}  # customer → his tracking token
        failed = ways = 0
        try:
            if channel == "channel_qr":
                ways = self._send_qr(tenant, campaign_id, camp, run, advisors, client, on)
            else:
                assert content is not None
                with self.c.engine.connect() as conn:
                    todo = runs.contacts_to_send(conn, tenant, campaign_id)
                tokens = {r.customer_id: r.tracking_token for r in todo}
                if channel == "group":
                    with self.c.engine.connect() as conn:
                        chat = gating.chat_group(conn, tenant, run["target"]["group_id"])
                    if todo and chat.advisor is not None:
                        text = gating.message(content, chat.advisor, content.get("url") or "")
                        try:
                            res = client.add_msg_template(chat_type="group", text=text,
                                                          chat_id_list=[chat.group.chat_id],
                                                          sender=chat.advisor["wecom_userid"])
                            sent = [(r.customer_id, res.msgid) for r in todo]
                        except WeComError:
                            failed = len(todo)
                else:
                    for r in todo:
                        advisor = advisors.get(r.advisor_id or "")
                        link = f"{link_base.rstrip('/')}/t/{r.tracking_token}"
                        try:
                            res = client.add_msg_template(
                                chat_type="single", external_userid=[r.external_userid],
                                sender=(advisor or {}).get("wecom_userid"),
                                text=gating.message(content, advisor, link))
                        except WeComError:
                            failed += 1
                            continue
                        if r.external_userid in res.fail_list:
                            failed += 1
                        else:
                            sent.append((r.customer_id, res.msgid))
        finally:
            client.close()
        logged = None
        posted = None  # a group post: the item's place in the group's plan (read-only)
        if channel == "group" and sent:
            try:
                posted = group_log.place(self.c, tenant, run["target"]["group_id"],
                                         str(camp["content_id"]), [cid for cid, _ in sent], on)
            except (ConfigError, NotFoundError):  # the post is made: record it regardless
                logging.getLogger(__name__).exception(
                    "campaign %s: the group's content plan could not be built, the post is "
                    "not logged as a recommendation", campaign_id, extra={"tenant": tenant})
                posted = group_log.Placement(str(camp["content_id"]), None, None, None,
                                             tuple(cid for cid, _ in sent))
        with self.c.engine.begin() as conn:
            runs.mark_sent(conn, tenant, campaign_id, sent, on)
            runs.mark_run_sent(conn, tenant, campaign_id, on)
            if run["target"].get("kind") == "recommended":
                logged = campaign_log.log_sends(
                    conn, tenant, run["target"]["item_id"],
                    [campaign_log.Send(cid, tokens.get(cid)) for cid, _ in sent],
                    actor=actor, on=on)
            group = (group_log.log_post(conn, tenant, campaign_id, posted, actor=actor, on=on)
                     if posted is not None else None)
        if group is not None and group.not_planned:
            logging.getLogger(__name__).warning(
                "campaign %s: the group post of %s is not logged as a recommendation, the "
                "item is not in group %s's content plan", campaign_id, camp["content_id"],
                run["target"]["group_id"], extra={"tenant": tenant})
        if logged is not None and logged.not_listed:
            logging.getLogger(__name__).warning(
                "campaign %s: %d send(s) not logged as recommendations, the item is no longer "
                "in their published lists: %s", campaign_id, len(logged.not_listed),
                ", ".join(logged.not_listed[:20]), extra={"tenant": tenant})
        audit.append(self.c, tenant, actor, "campaign_send",
                     customer_ids=[cid for cid, _ in sent],
                     reason=f"活动 {campaign_id}（{channel}）发送 {len(sent)} 人")
        if group is not None:
            return SendSummary(campaign_id, channel, len(sent), failed, ways, group.logged,
                               group.not_planned)
        return SendSummary(campaign_id, channel, len(sent), failed, ways,
                           logged.logged if logged else 0,
                           len(logged.not_listed) if logged else 0)

    def _send_qr(self, tenant: str, campaign_id: str, camp: dict[str, Any],
                 run: dict[str, Any], advisors: dict[str, dict[str, Any]], client: Any,
                 on: dt.datetime) -> int:
        state = gate.qr_state(campaign_id)
        rows = []
        for advisor_id in run["target"]["advisor_ids"]:
            way = client.add_contact_way(1, 2, user=[advisors[advisor_id]["wecom_userid"]],
                                         state=state, remark=str(camp["name"])[:30])
            rows.append({"config_id": way.config_id, "state": state,
                         "campaign_id": campaign_id, "advisor_id": advisor_id,
                         "qr_code": way.qr_code[:500], "created_at": on})
        with self.c.engine.begin() as conn:
            runs.add_contact_ways(conn, tenant, rows)
        return len(rows)

    def poll(self, tenant: str, campaign_id: str, on: dt.datetime | None = None) -> int:
        """Ask WeCom which sent messages arrived; the number newly delivered."""
        on = on or self.c.clock.now()
        with self.c.engine.connect() as conn:
            pending = runs.pending_deliveries(conn, tenant, campaign_id)
        if not pending:
            return 0
        client = client_for(self.c, tenant)
        try:
            statuses = {m: client.poll_mass_send(m) for m in sorted({p.msgid for p in pending})}
        finally:
            client.close()
        done = [p.customer_id for p in pending
                if statuses[p.msgid].get(p.external_userid or "") == 1  # single: per customer
                or (p.external_userid is None and 1 in statuses[p.msgid].values())]  # group
        with self.c.engine.begin() as conn:
            runs.mark_delivered(conn, tenant, campaign_id, done, on)
        return len(done)


def send_due(c: Container, link_base: str, now: dt.datetime | None = None
             ) -> list[SendSummary]:
    """Send every gated run whose ``scheduled_at`` has come (the service calls this from its
    WeCom worker). A failing run is logged and left gated, to be tried on the next pass."""
    now = now or c.clock.now()
    with c.engine.connect() as conn:
        due = runs.due_runs_all_tenants(conn, now)
    out = []
    campaigns = Campaigns(c)
    for tenant, campaign_id in due:
        try:
            out.append(campaigns.send(tenant, campaign_id, actor="scheduler",
                                      link_base=link_base, on=now))
        except Exception:  # one run's failure must not stop the others; it stays gated
            logging.getLogger(__name__).exception(
                "scheduled campaign send failed", extra={"tenant": tenant})
    return out
