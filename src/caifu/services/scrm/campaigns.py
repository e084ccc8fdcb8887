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
                customers who add through it are its funnel (services/campaign_funnel)

Conversions, funnels and the comparison table are in ``services/campaign_funnel``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import (
    campaign_contacts,
    campaign_decisions,
    campaign_runs,
    contact_ways,
    preference_group_members,
    preference_groups,
    wecom_groups,
)
from caifu.adapters.wecom.errors import WeComError
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.suitability import Investor
from caifu.scrm import campaigns as gate
from caifu.services.compliance import audit
from caifu.services.compliance.chat_review import tenant_lexicon
from caifu.services.container import Container
from caifu.services.scrm.wecom_app import client_for
from caifu.text.compliance import Lexicon

LINK_PLACEHOLDER = "https://link.invalid/t/placeholder"  # the link's length and shape at gating
WECOM_CHANNELS = ("mass_send", "group", "channel_qr")
BATCH = 500  # SQLite's bound-variable limit, with room


def _chunks(items: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


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


class Campaigns:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.lexicon: Lexicon | None = None

    # --- reading ---------------------------------------------------------------------------

    def campaign(self, tenant: str, campaign_id: str) -> dict[str, Any]:
        t = CONTRACT_TABLES["campaigns"]
        with self.c.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.tenant_id == tenant,
                                               t.c.campaign_id == campaign_id)).first()
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id!r}")
        return dict(row._mapping)

    def run(self, tenant: str, campaign_id: str) -> dict[str, Any] | None:
        r = campaign_runs
        with self.c.engine.connect() as conn:
            row = conn.execute(select(r).where(r.c.tenant_id == tenant,
                                               r.c.campaign_id == campaign_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["target"] = json.loads(out.pop("target_json") or "{}")
        return out

    def _content(self, tenant: str, content_id: str | None) -> dict[str, Any] | None:
        if content_id is None:
            return None
        t = CONTRACT_TABLES["content_items"]
        with self.c.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.tenant_id == tenant,
                                               t.c.content_id == content_id)).first()
        return None if row is None else dict(row._mapping)

    def _advisors(self, tenant: str) -> dict[str, dict[str, Any]]:
        t = CONTRACT_TABLES["advisors"]
        with self.c.engine.connect() as conn:
            rows = conn.execute(select(t.c.advisor_id, t.c.name, t.c.sac_number,
                                       t.c.wecom_userid).where(t.c.tenant_id == tenant))
            return {r.advisor_id: dict(r._mapping) for r in rows}

    def _investors(self, tenant: str, ids: Sequence[str]) -> dict[str, tuple[Investor, Any]]:
        """Each customer's investor (latest assessment) and master row (consent, advisor)."""
        cu, sa = CONTRACT_TABLES["customers"], CONTRACT_TABLES["suitability_assessments"]
        out: dict[str, tuple[Investor, Any]] = {}
        with self.c.engine.connect() as conn:
            for part in _chunks(ids):
                latest: dict[str, Any] = {}
                for a in conn.execute(select(sa).where(sa.c.tenant_id == tenant,
                                                       sa.c.customer_id.in_(part))
                                      .order_by(sa.c.assessed_on, sa.c.assessment_id)):
                    latest[a.customer_id] = a
                for m in conn.execute(select(cu.c.customer_id, cu.c.marketing_consent,
                                             cu.c.advisor_id, cu.c.professional)
                                      .where(cu.c.tenant_id == tenant,
                                             cu.c.customer_id.in_(part))):
                    got = latest.get(m.customer_id)
                    inv = Investor(level=None, professional=bool(m.professional)) \
                        if got is None else Investor(
                            got.risk_level, got.valid_until, bool(got.no_loss_tolerance),
                            bool(got.no_civil_capacity), got.objective, bool(m.professional))
                    out[m.customer_id] = (inv, m)
        return out

    def _follows(self, tenant: str, ids: Sequence[str]) -> dict[str, list[Any]]:
        f = CONTRACT_TABLES["wecom_follows"]
        out: dict[str, list[Any]] = {}
        with self.c.engine.connect() as conn:
            for part in _chunks(ids):
                for r in conn.execute(select(f.c.customer_id, f.c.advisor_id,
                                             f.c.external_userid)
                                      .where(f.c.tenant_id == tenant, f.c.status == "active",
                                             f.c.customer_id.in_(part))
                                      .order_by(f.c.advisor_id, f.c.external_userid)):
                    out.setdefault(r.customer_id, []).append(r)
        return out

    def _recent_sends(self, tenant: str, campaign_id: str, ids: Sequence[str],
                      since: dt.datetime) -> dict[str, list[dt.datetime]]:
        k = campaign_contacts
        out: dict[str, list[dt.datetime]] = {}
        with self.c.engine.connect() as conn:
            for part in _chunks(ids):
                for r in conn.execute(select(k.c.customer_id, k.c.sent_at).where(
                        k.c.tenant_id == tenant, k.c.campaign_id != campaign_id,
                        k.c.customer_id.in_(part), k.c.sent_at > since)):
                    out.setdefault(r.customer_id, []).append(r.sent_at)
        return out

    # --- gating ------------------------------------------------------------------------------

    def create_run(self, tenant: str, campaign_id: str, *, actor: str,
                   segment_id: str | None = None, customer_ids: Iterable[str] | None = None,
                   group_id: str | None = None, advisor_ids: Iterable[str] | None = None,
                   scheduled_at: dt.datetime | None = None, attribution_days: int = 14,
                   cap: gate.FrequencyCap | None = None, on: dt.datetime | None = None
                   ) -> RunSummary:
        """Gate the campaign's targets and store every decision (replacing an unsent run's)."""
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
        chosen = [x is not None for x in (segment_id, customer_ids, group_id, advisor_ids)]
        if sum(chosen) != 1:
            raise ConfigError("target exactly one of: a segment, customer ids, a preference "
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
            decisions = self._gate_group(tenant, group_id, content, on)
        else:
            if group_id is not None or advisor_ids is not None:
                raise ConfigError("a mass_send run targets a segment or customer ids")
            if segment_id is not None:
                from caifu.services.profiles.segments import Segments

                day, members = Segments(self.c).members(tenant, segment_id)
                ids = sorted(set(members["customer_id"].to_pylist()))
                target.update(kind="segment", segment_id=segment_id, as_of=day.isoformat())
            else:
                ids = sorted(set(customer_ids or ()))
                target.update(kind="customers")
            assert content is not None
            decisions, routes = self._gate_mass(tenant, campaign_id, ids, content, on, cap)
        self._store_run(tenant, campaign_id, camp, segment_id, scheduled_at, attribution_days,
                        target, decisions, routes, actor, on)
        blocked: dict[str, int] = {}
        for d in decisions:
            if not d.send:
                blocked[d.rule] = blocked.get(d.rule, 0) + 1
        return RunSummary(campaign_id, channel, "gated", len(decisions),
                          sum(d.send for d in decisions), blocked, gate.DECISION_RULE_VERSION)

    def _gate_mass(self, tenant: str, campaign_id: str, ids: Sequence[str],
                   content: dict[str, Any], on: dt.datetime, cap: gate.FrequencyCap
                   ) -> tuple[list[gate.Decision], dict[str, tuple[str | None, str | None]]]:
        investors = self._investors(tenant, ids)
        follows = self._follows(tenant, ids)
        advisors = self._advisors(tenant)
        recent = self._recent_sends(tenant, campaign_id, ids, on - dt.timedelta(days=cap.days))
        checks: dict[str | None, gate.MessageCheck] = {}
        decisions, routes = [], {}
        for cid in ids:
            if cid not in investors:  # not a customer of this tenant: nothing to decide on
                continue
            investor, master = investors[cid]
            mine = [f for f in follows.get(cid, [])
                    if advisors.get(f.advisor_id, {}).get("wecom_userid")]
            mine.sort(key=lambda f: f.advisor_id != master.advisor_id)  # his own advisor first
            advisor_id = mine[0].advisor_id if mine else None
            if advisor_id not in checks:
                checks[advisor_id] = self._message_check(content, advisors.get(advisor_id or ""))
            target = gate.Target(cid, investor, master.marketing_consent,
                                 tuple(recent.get(cid, ())), reachable=bool(mine))
            decisions.append(gate.decide(target, content["risk_level"], checks[advisor_id],
                                         on, cap))
            routes[cid] = (advisor_id, mine[0].external_userid if mine else None)
        return decisions, routes

    def _message_check(self, content: dict[str, Any], advisor: dict[str, Any] | None
                       ) -> gate.MessageCheck:
        """The compliance check of the text this advisor would send (no advisor: the
        content alone — the customer is unreachable anyway, the footer is moot)."""
        text = self.message(content, advisor, LINK_PLACEHOLDER)
        check = gate.check_message(text, advisor_name=(advisor or {}).get("name"),
                                   risk_level=content["risk_level"],
                                   research=content["content_type"] == "research_report",
                                   lexicon=self.lexicon)
        return check if advisor else gate.MessageCheck(check.prohibited, (),
                                                       check.lexicon_version)

    @staticmethod
    def message(content: dict[str, Any], advisor: dict[str, Any] | None, link: str) -> str:
        advisor = advisor or {}
        return gate.compose(content["title"], link, advisor.get("name"),
                            advisor.get("sac_number"), content["risk_level"],
                            content["content_type"] == "research_report")

    def _group(self, tenant: str, group_id: str) -> tuple[Any, list[str], dict[str, Any] | None]:
        """The preference group, its current members and the advisor owning its chat."""
        g, m, w = preference_groups, preference_group_members, wecom_groups
        with self.c.engine.connect() as conn:
            group = conn.execute(select(g).where(g.c.tenant_id == tenant,
                                                 g.c.group_id == group_id)).first()
            if group is None:
                raise NotFoundError(f"no preference group {group_id!r}")
            if not group.chat_id:
                raise ConfigError(f"preference group {group_id} has no WeCom group chat yet")
            members = [r[0] for r in conn.execute(
                select(m.c.customer_id).where(m.c.tenant_id == tenant, m.c.group_id == group_id,
                                              m.c.status == "member").order_by(m.c.customer_id))]
            owner = conn.execute(select(w.c.owner).where(
                w.c.tenant_id == tenant, w.c.chat_id == group.chat_id)).scalar()
        advisor = next((a for a in self._advisors(tenant).values()
                        if owner and a["wecom_userid"] == owner), None)
        return group, members, advisor

    def _gate_group(self, tenant: str, group_id: str, content: dict[str, Any],
                    on: dt.datetime) -> list[gate.Decision]:
        """One decision for the group, judged as its lowest member, copied to each member."""
        _, members, advisor = self._group(tenant, group_id)
        investors = self._investors(tenant, members)
        judged = gate.group_investor([investors[c][0] for c in members if c in investors])
        check = self._message_check(content, advisor)
        if advisor is None:  # a chat whose owner is no known advisor cannot carry a footer
            check = gate.MessageCheck(check.prohibited, ("群主投顾信息",), check.lexicon_version)
        d = gate.decide(gate.Target(f"group:{group_id}", judged, True), content["risk_level"],
                        check, on)
        note = f"客户群 {group_id} 按最低成员等级 {judged.level or '未测评'} 判断"
        return [gate.Decision(c, d.outcome, d.rule, (note, *d.reasons), judged.level,
                              d.product_level) for c in members if c in investors]

    def _store_run(self, tenant: str, campaign_id: str, camp: dict[str, Any],
                   segment_id: str | None, scheduled_at: dt.datetime | None,
                   attribution_days: int, target: dict[str, Any],
                   decisions: list[gate.Decision],
                   routes: dict[str, tuple[str | None, str | None]], actor: str,
                   on: dt.datetime) -> None:
        where = {"tenant_id": tenant, "campaign_id": campaign_id}
        rows = [{**where, "customer_id": d.customer_id, "outcome": d.outcome, "rule": d.rule,
                 "reasons_json": json.dumps(list(d.reasons), ensure_ascii=False),
                 "investor_level": d.investor_level, "product_level": d.product_level,
                 "rule_version": d.rule_version, "decided_at": on} for d in decisions]
        contacts = []
        for d in decisions:
            advisor_id, ext = routes.get(d.customer_id, (None, None))
            contacts.append({**where, "customer_id": d.customer_id, "targeted_at": on,
                             "advisor_id": advisor_id if d.send else None,
                             "external_userid": ext if d.send else None,
                             "tracking_token": secrets.token_urlsafe(16)
                             if d.send and camp["channel"] == "mass_send" else None})
        with self.c.engine.begin() as conn:
            for t in (campaign_contacts, campaign_decisions, campaign_runs):
                conn.execute(delete(t).where(t.c.tenant_id == tenant,
                                             t.c.campaign_id == campaign_id))
            conn.execute(insert(campaign_runs).values(
                **where, segment_id=segment_id, status="gated", scheduled_at=scheduled_at,
                attribution_days=attribution_days, rule_version=gate.DECISION_RULE_VERSION,
                target_json=json.dumps(target, ensure_ascii=False), created_by=actor,
                created_at=on))
            for i in range(0, len(rows), BATCH):
                conn.execute(insert(campaign_decisions), rows[i:i + BATCH])
                conn.execute(insert(campaign_contacts), contacts[i:i + BATCH])

    def decisions(self, tenant: str, campaign_id: str, *, only: set[str] | None = None,
                  limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """The stored decisions, a page (``only``: the customer ids the caller may see)."""
        self.campaign(tenant, campaign_id)
        d = campaign_decisions
        with self.c.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(d).where(d.c.tenant_id == tenant, d.c.campaign_id == campaign_id)
                .order_by(d.c.customer_id))]
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
        """Send a gated run through WeCom; audited with the customers sent to."""
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
        failed = ways = 0
        k = campaign_contacts
        try:
            if channel == "channel_qr":
                ways = self._send_qr(tenant, campaign_id, camp, run, advisors, client, on)
            else:
                assert content is not None
                with self.c.engine.connect() as conn:
                    todo = conn.execute(select(k).join(campaign_decisions, and_(
                        campaign_decisions.c.tenant_id == k.c.tenant_id,
                        campaign_decisions.c.campaign_id == k.c.campaign_id,
                        campaign_decisions.c.customer_id == k.c.customer_id)).where(
                        k.c.tenant_id == tenant, k.c.campaign_id == campaign_id,
                        campaign_decisions.c.outcome == "send", k.c.sent_at.is_(None))
                        .order_by(k.c.customer_id)).all()
                if channel == "group":
                    group, _, advisor = self._group(tenant, run["target"]["group_id"])
                    if todo and advisor is not None:
                        text = self.message(content, advisor, content.get("url") or "")
                        try:
                            res = client.add_msg_template(chat_type="group", text=text,
                                                          chat_id_list=[group.chat_id],
                                                          sender=advisor["wecom_userid"])
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
                                text=self.message(content, advisor, link))
                        except WeComError:
                            failed += 1
                            continue
                        if r.external_userid in res.fail_list:
                            failed += 1
                        else:
                            sent.append((r.customer_id, res.msgid))
        finally:
            client.close()
        with self.c.engine.begin() as conn:
            for cid, msgid in sent:
                conn.execute(update(k).where(k.c.tenant_id == tenant,
                                             k.c.campaign_id == campaign_id,
                                             k.c.customer_id == cid)
                             .values(sent_at=on, msgid=msgid))
            conn.execute(update(campaign_runs).where(
                campaign_runs.c.tenant_id == tenant, campaign_runs.c.campaign_id == campaign_id)
                .values(status="sent", sent_at=on))
        audit.append(self.c, tenant, actor, "campaign_send",
                     customer_ids=[cid for cid, _ in sent],
                     reason=f"活动 {campaign_id}（{channel}）发送 {len(sent)} 人")
        return SendSummary(campaign_id, channel, len(sent), failed, ways)

    def _send_qr(self, tenant: str, campaign_id: str, camp: dict[str, Any],
                 run: dict[str, Any], advisors: dict[str, dict[str, Any]], client: Any,
                 on: dt.datetime) -> int:
        state = gate.qr_state(campaign_id)
        rows = []
        for advisor_id in run["target"]["advisor_ids"]:
            way = client.add_contact_way(1, 2, user=[advisors[advisor_id]["wecom_userid"]],
                                         state=state, remark=str(camp["name"])[:30])
            rows.append({"tenant_id": tenant, "config_id": way.config_id, "state": state,
                         "campaign_id": campaign_id, "advisor_id": advisor_id,
                         "qr_code": way.qr_code[:500], "created_at": on})
        with self.c.engine.begin() as conn:
            if rows:
                conn.execute(insert(contact_ways), rows)
        return len(rows)

    def poll(self, tenant: str, campaign_id: str, on: dt.datetime | None = None) -> int:
        """Ask WeCom which sent messages arrived; the number newly delivered."""
        k = campaign_contacts
        on = on or self.c.clock.now()
        with self.c.engine.connect() as conn:
            pending = conn.execute(select(k.c.customer_id, k.c.msgid, k.c.external_userid)
                                   .where(k.c.tenant_id == tenant,
                                          k.c.campaign_id == campaign_id,
                                          k.c.msgid.is_not(None),
                                          k.c.delivered_at.is_(None))).all()
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
            for part in _chunks(done):
                conn.execute(update(k).where(k.c.tenant_id == tenant,
                                             k.c.campaign_id == campaign_id,
                                             k.c.customer_id.in_(part))
                             .values(delivered_at=on))
        return len(done)



def send_due(c: Container, link_base: str, now: dt.datetime | None = None
             ) -> list[SendSummary]:
    """Send every gated run whose ``scheduled_at`` has come (the service calls this from its
    WeCom worker). A failing run is logged and left gated, to be tried on the next pass."""
    import logging

    now = now or c.clock.now()
    with c.engine.connect() as conn:
        due = conn.execute(select(campaign_runs.c.tenant_id, campaign_runs.c.campaign_id).where(
            (campaign_runs.c.status == "gated") & campaign_runs.c.scheduled_at.isnot(None)
            & (campaign_runs.c.scheduled_at <= now))
            .order_by(campaign_runs.c.scheduled_at)).all()
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
