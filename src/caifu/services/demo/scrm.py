"""The SCRM part of ``caifu demo``: the fake WeCom against the demo broker.

What it shows, each step through the real code paths (callback crypto and endpoint checks,
the worker, linking, the campaign gate, the WeCom client — only WeCom itself is the fake):

1. the tenant's WeCom app, and a fake WeCom seeded with the demo's advisors and contacts;
2. customers scanning a channel QR code (State → attribution), advisors noting a customer's
   mobile (→ identity link), a name-only match (→ review queue), customers deleting their
   advisor (→ churn signal), group chats with a missed event (→ resync), a corp tag;
3. chat compliance over the demo's chat history, and the lexicon's precision on the
   labelled sample;
4. preference groups planned by tags, with the suitability level content is judged against;
5. a campaign replayed on the demo broker's history: gate → send → delivery → opens and
   clicks (simulated: no real phone opens a demo message) → conversions from the real facts
   within the attribution window; the comparison across campaigns;
6. the sidebar: which advisor and customer to open it for.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import wecom_groups as groups_repo
from caifu.adapters.sor.scrm_models import (
    campaign_contacts,
    contact_ways,
    wecom_links,
)
from caifu.adapters.wecom.fake import FakeWeCom
from caifu.core.identity import Principal
from caifu.scrm.crypto import WeComCrypto
from caifu.services.compliance import chat_review
from caifu.services.container import Container
from caifu.services.scrm import identity_links as links
from caifu.services.scrm import pref_groups, wecom_app
from caifu.services.scrm.callback_apply import WeComEvents
from caifu.services.scrm.callback_intake import Callbacks
from caifu.services.scrm.campaigns import Campaigns
from caifu.services.scrm.funnel import CampaignFunnel, record_hit
from caifu.text.compliance_eval import evaluate, labelled_sample

T = CONTRACT_TABLES
CORP, AGENT, SECRET = "wwcaifudemo0000001", "1000002", "caifu-demo-app-secret"
QR_CAMPAIGN, MASS_CAMPAIGN = "DEMO-QR-01", "DEMO-MS-01"


@dataclass
class ScrmDemo:
    callbacks: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    links: dict[str, int] = field(default_factory=dict)
    chat_flags: dict[str, int] = field(default_factory=dict)
    lexicon: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    group_metrics: list[dict[str, Any]] = field(default_factory=list)  # the groups' counts
    run: dict[str, Any] = field(default_factory=dict)
    funnel: dict[str, Any] = field(default_factory=dict)
    compare: list[dict[str, Any]] = field(default_factory=list)
    sidebar: dict[str, str] = field(default_factory=dict)
    resynced_groups: int = 0
    welcomes: tuple[int, int] = (0, 0)  # sent, not sent


def app_keys(c: Container, tenant: str) -> tuple[str, str]:
    """The demo app's callback token and AES key: random per workspace, kept in the SoR."""
    app = wecom_app.get_app(c, tenant)
    if app is not None:
        return app.token, app.encoding_aes_key
    return secrets.token_hex(8), secrets.token_urlsafe(32)[:43].replace("-", "a").replace("_", "b")


def seeded_fake(c: Container, tenant: str) -> FakeWeCom:
    """A fake WeCom holding the tenant's advisors and active follows (as WeCom would)."""
    token, aes = app_keys(c, tenant)
    fake = FakeWeCom(CORP, SECRET, AGENT, callback_crypto=WeComCrypto(token, aes, CORP))
    A, F = T["advisors"], T["wecom_follows"]
    with c.engine.connect() as conn:
        advisors = [{"userid": r.wecom_userid, "name": r.name} for r in conn.execute(
            select(A.c.wecom_userid, A.c.name).where(
                (A.c.tenant_id == tenant) & A.c.wecom_userid.isnot(None)))]
        wx = dict(conn.execute(select(A.c.advisor_id, A.c.wecom_userid).where(
            A.c.tenant_id == tenant)).all())
        follows = conn.execute(select(F.c.advisor_id, F.c.external_userid, F.c.unionid,
                                      F.c.remark_mobile, F.c.state).where(
            (F.c.tenant_id == tenant) & (F.c.status == "active"))).all()
    contacts = [{"external_userid": f.external_userid, "unionid": f.unionid,
                 "follow": [{"userid": wx[f.advisor_id], "state": f.state,
                             "remark_mobiles": [f.remark_mobile] if f.remark_mobile else []}]}
                for f in follows if wx.get(f.advisor_id)]
    fake.seed_from(advisors, contacts)
    return fake


def configure(c: Container, tenant: str, api_base_url: str | None = None) -> None:
    token, aes = app_keys(c, tenant)
    wecom_app.configure(c, tenant, corp_id=CORP, agent_id=AGENT, token=token,
                    encoding_aes_key=aes, secret=SECRET, api_base_url=api_base_url,
                    actor="demo")


def run(c: Container, tenant: str, as_of: dt.date, seed: int = 7) -> ScrmDemo:
    rng = random.Random(seed)
    out = ScrmDemo()
    configure(c, tenant)
    fake = seeded_fake(c, tenant)
    c.wecom_transport = httpx.MockTransport(fake.handler)
    try:
        chats = _contacts_and_groups(c, tenant, fake, out)
        report = links.link_all(c, tenant, actor="demo")
        with c.engine.connect() as conn:
            by_status = dict(conn.execute(select(wecom_links.c.status, func.count()).where(
                wecom_links.c.tenant_id == tenant).group_by(wecom_links.c.status)).all())
        out.links = {"contacts": report.contacts, "none": report.none,
                     **{k: int(v) for k, v in by_status.items()}}
        out.chat_flags = dict(chat_review.scan_lake(c, tenant))
        scores = evaluate(chat_review.tenant_lexicon(c, tenant), labelled_sample())
        out.lexicon = {"precision": scores["precision"], "recall": scores["recall"],
                       "samples": len(labelled_sample())}
        # the first advisor's WeCom group carries the 新能源 preference group
        pref_groups.seed_demo_groups(c, tenant, {"new_energy": chats[0]} if chats else None)
        planned = [(g, pref_groups.plan(c, tenant, g["group_id"], on=as_of))
                   for g in pref_groups.list_groups(c, tenant)]
        sizes = pref_groups.plan_sizes(c, Principal(tenant, "demo", "ops"))
        out.group_metrics = sizes.metrics
        for g, p in planned:
            out.groups.append({"name": g["name"], "policy": g["level_policy"],
                               "lowest": p.plan.lowest_level or p.plan.risk_level,
                               **pref_groups.group_sizes(sizes, g["group_id"])})
        _campaign(c, tenant, fake, as_of, rng, out)
        out.sidebar = sidebar_target(c, tenant)
    finally:
        c.wecom_transport = None
    return out


def _deliver(tenant: str, fake: FakeWeCom, xml: str, cb: Callbacks,
             events: WeComEvents | None = None, totals: dict[str, int] | None = None) -> None:
    """One callback through the endpoint's checks, applied at once as the service's worker
    would (a welcome code lives 20 s)."""
    params, body = fake.callback(xml)
    cb.receive(tenant, params, body)
    if events is not None and totals is not None:
        done = events.apply_pending(tenant)
        for k, v in done.by_kind.items():
            totals[k] = totals.get(k, 0) + v
        for k, v in (("failed", done.failed), ("resynced", done.resynced_groups),
                     ("welcomes", done.welcomes), ("welcome_failed", done.welcome_failed)):
            if v:
                totals[k] = totals.get(k, 0) + v


def _contacts_and_groups(c: Container, tenant: str, fake: FakeWeCom, out: ScrmDemo
                         ) -> list[str]:
    A, F, C = T["advisors"], T["wecom_follows"], T["customers"]
    cb, events, totals = Callbacks(c), WeComEvents(c), {}

    def send(xml: str) -> None:
        _deliver(tenant, fake, xml, cb, events, totals)
    with c.engine.connect() as conn:
        advisors = conn.execute(select(A.c.advisor_id, A.c.wecom_userid).where(
            (A.c.tenant_id == tenant) & A.c.wecom_userid.isnot(None))
            .order_by(A.c.advisor_id).limit(3)).all()
        followed = {r[0] for r in conn.execute(select(F.c.customer_id).where(
            (F.c.tenant_id == tenant) & F.c.customer_id.isnot(None)))}
        # the advisors' own customers with no WeCom relation yet: they will scan the QR
        unfollowed = [r for r in conn.execute(select(C.c.customer_id, C.c.name, C.c.mobile,
                                                     C.c.advisor_id).where(
            (C.c.tenant_id == tenant) & C.c.advisor_id.in_([a.advisor_id for a in advisors])
            & C.c.mobile.isnot(None)).order_by(C.c.customer_id).limit(400))
            if r.customer_id not in followed][:40]
        all_wx = dict(conn.execute(select(A.c.advisor_id, A.c.wecom_userid).where(
            A.c.tenant_id == tenant)).all())
        active = conn.execute(select(F.c.advisor_id, F.c.external_userid).where(
            (F.c.tenant_id == tenant) & (F.c.status == "active")
            & F.c.customer_id.isnot(None)).order_by(F.c.external_userid).limit(60)).all()
    wx = {a.advisor_id: a.wecom_userid for a in advisors}
    # 1. a channel QR campaign per advisor, then customers scanning it
    camp = T["campaigns"]
    with c.engine.begin() as conn:
        conn.execute(insert(camp).values(
            tenant_id=tenant, campaign_id=QR_CAMPAIGN, name="企微活码·开户礼", channel="channel_qr",
            goal="account_opened", starts_on=dt.date.today()))
    campaigns = Campaigns(c)
    campaigns.create_run(tenant, QR_CAMPAIGN, actor="demo",
                         advisor_ids=[a.advisor_id for a in advisors])
    campaigns.send(tenant, QR_CAMPAIGN, actor="demo", link_base="http://127.0.0.1:8000")
    with c.engine.connect() as conn:
        states = dict(conn.execute(select(contact_ways.c.advisor_id, contact_ways.c.state).where(
            contact_ways.c.tenant_id == tenant)).all())
    new_contacts = []
    for i, cust in enumerate(unfollowed):
        userid = wx[cust.advisor_id]
        action = fake.customer_adds(userid, name=cust.name, state=states.get(cust.advisor_id))
        send(action.event_xml)
        new_contacts.append((userid, action.external_userid, cust))
        if i % 4 != 3:  # the advisor notes the customer's mobile: strong evidence
            fake.follow(userid, action.external_userid)["remark_mobiles"] = [cust.mobile]
            send(fake.advisor_edits(userid, action.external_userid, remark=cust.name).event_xml)
    # 2. some customers delete their advisor: the churn signal
    for adv, ext in active[:12]:
        if all_wx.get(adv):
            send(fake.customer_deletes(all_wx[adv], ext).event_xml)
    # 3. a group chat per advisor; one member's joining is missed, then found by resync
    chats = []
    for a in advisors:
        mine = [ext for userid, ext, _ in new_contacts if userid == a.wecom_userid]
        if len(mine) < 4:
            continue
        chat = fake.add_group_chat(a.wecom_userid, mine[:2], name=f"{a.advisor_id} 新能源交流群")
        chats.append(chat)
        send(fake.group_event("create", chat))
        send(fake.members_join_chat(chat, [mine[2]]).event_xml)
        fake.members_join_chat(chat, [mine[3]])  # WeCom's event for this never arrives
        send(fake.members_leave_chat(chat, [mine[0]]).event_xml)
    # 4. a corp tag group made in the WeCom admin console
    ids = fake.add_tag_group("投资偏好", ["新能源", "上证50 ETF", "基金定投"])
    send(fake.tag_event("create", ids["新能源"], "tag"))
    # every callback also goes through the checks that refuse forgeries: show one of each
    params, body = fake.callback(fake.tag_event("create", ids["新能源"], "tag"))
    for forged in ({**params, "msg_signature": "0" * 40},
                   {**params, "timestamp": str(int(params["timestamp"]) - 3600)}):
        try:
            cb.receive(tenant, forged, body)
        except Exception:  # noqa: BLE001 - a refusal is the point; it is counted
            pass
    cb.counter.flush(c)
    out.rejected = {r["reason"]: int(r["count"]) for r in cb.rejections(tenant)}
    out.resynced_groups = totals.pop("resynced", 0)
    out.welcomes = (totals.pop("welcomes", 0), totals.pop("welcome_failed", 0))
    out.callbacks = totals
    return chats


def _campaign(c: Container, tenant: str, fake: FakeWeCom, as_of: dt.date, rng: random.Random,
              out: ScrmDemo) -> None:
    """A mass send to the idle depositors, replayed three weeks before the data's end so its
    conversions (a deposit within 14 days) come from the broker's real cash flows."""
    CI = T["content_items"]
    with c.engine.connect() as conn:
        content = conn.execute(select(CI.c.content_id).where(
            (CI.c.tenant_id == tenant) & (CI.c.risk_level == "R2")
            & (CI.c.url.isnot(None))).order_by(CI.c.published_at.desc()).limit(1)).scalar()
    on = dt.datetime.combine(as_of - dt.timedelta(days=21), dt.time(2, 0))
    with c.engine.begin() as conn:
        conn.execute(insert(T["campaigns"]).values(
            tenant_id=tenant, campaign_id=MASS_CAMPAIGN, name="入金客户陪伴·稳健理财观点",
            channel="mass_send", content_id=content, goal="funded", starts_on=on.date()))
    campaigns, funnel = Campaigns(c), CampaignFunnel(c)
    summary = campaigns.create_run(tenant, MASS_CAMPAIGN, actor="demo",
                                   segment_id="fund_reassurance", on=on)
    out.run = {"targeted": summary.targeted, "allowed": summary.allowed,
               "blocked": summary.blocked, "rule_version": summary.rule_version}
    campaigns.send(tenant, MASS_CAMPAIGN, actor="demo", link_base="http://127.0.0.1:8000",
                   on=on)
    with c.engine.connect() as conn:
        msgids = conn.execute(select(campaign_contacts.c.msgid).where(
            (campaign_contacts.c.tenant_id == tenant)
            & (campaign_contacts.c.campaign_id == MASS_CAMPAIGN)
            & campaign_contacts.c.msgid.isnot(None)).distinct()).scalars().all()
    for i, msgid in enumerate(msgids):
        fake.deliver(msgid, fraction=0.92, seed=i)
    campaigns.poll(tenant, MASS_CAMPAIGN, on=on + dt.timedelta(hours=6))
    with c.engine.connect() as conn:
        tokens = conn.execute(select(campaign_contacts.c.tracking_token).where(
            (campaign_contacts.c.tenant_id == tenant)
            & (campaign_contacts.c.campaign_id == MASS_CAMPAIGN)
            & campaign_contacts.c.delivered_at.isnot(None))).scalars().all()
    for token in tokens:  # simulated readers: about half open, a third of those click
        if rng.random() < 0.5:
            kind = "click" if rng.random() < 0.35 else "open"
            record_hit(c, token, kind, on + dt.timedelta(hours=rng.randint(7, 72)))
    funnel.refresh(tenant, MASS_CAMPAIGN)
    funnel.refresh(tenant, QR_CAMPAIGN)
    operator = Principal(tenant, "demo", "ops")
    out.funnel = funnel.funnel(operator, MASS_CAMPAIGN)
    out.compare = funnel.compare(operator)["items"]


RECENT_TRADE_DAYS = 90


def sidebar_target(c: Container, tenant: str) -> dict[str, str]:
    """An advisor with a linked, active WeCom customer whose card shows something: who to
    open the sidebar for.

    The first such customer by contact id used to be one without holdings or trades — an
    empty page. Preferred: holdings (stock or fund) and a trade in the last
    ``RECENT_TRADE_DAYS`` days of the card's date; then holdings and any trade; then holdings
    or trades; then any card.
    """
    A, F = T["advisors"], T["wecom_follows"]
    from caifu.adapters.sor.models import customer_cards

    best: tuple[int, Any] | None = None
    with c.engine.connect() as conn:
        rows = conn.execute(select(
            F.c.advisor_id, F.c.external_userid, A.c.wecom_userid, customer_cards.c.as_of,
            customer_cards.c.card_json).join(
            A, (A.c.tenant_id == F.c.tenant_id) & (A.c.advisor_id == F.c.advisor_id)).join(
            customer_cards, (customer_cards.c.tenant_id == F.c.tenant_id)
            & (customer_cards.c.customer_id == F.c.customer_id)).where(
            (F.c.tenant_id == tenant) & (F.c.status == "active") & F.c.customer_id.isnot(None)
            & A.c.wecom_userid.isnot(None)).order_by(F.c.external_userid))
        for row in rows:
            rank = _card_rank(row.card_json, row.as_of)
            if best is None or rank > best[0]:
                best = (rank, row)
            if rank == 3:
                break
        n = groups_repo.group_count(conn, tenant)
    if best is None:
        return {}
    row = best[1]
    return {"advisor_id": row.advisor_id, "wecom_userid": row.wecom_userid,
            "external_userid": row.external_userid, "groups": str(n)}


def _card_rank(card_json: str, as_of: dt.date) -> int:
    """3: holdings and a recent trade; 2: holdings and a trade; 1: either; 0: neither."""
    card = json.loads(card_json)
    holdings = any((card.get(kind) or {}).get("positions") for kind in ("stocks", "funds"))
    trades = card.get("recent_trades") or []
    if not (holdings or trades):
        return 0
    if not (holdings and trades):
        return 1
    since = (as_of - dt.timedelta(days=RECENT_TRADE_DAYS)).isoformat()
    recent = any(str(t.get("trade_date") or "") >= since for t in trades)
    return 3 if recent else 2
