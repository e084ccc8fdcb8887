"""Campaign funnels: conversions attributed from the facts, the funnel of one campaign, and
the comparison table across every campaign — the live runs (``campaign_contacts``) beside
the history loaded into the lake (``campaign_touches``) — and the tracking link's opens and
clicks (``record_hit``).

Conversions by the campaign's goal (``scrm.campaigns.CONVERSIONS``), within the run's
``attribution_days`` after the customer's message was sent:

    account_opened   customers.opened_on                    (SoR, calendar day)
    funded           cash_flows, direction in               (lake, UTC time)
    product_bought   fund_transactions subscribe/purchase   (lake, confirmation day)
                     or trades, side B                      (lake, UTC time)
    chinext_opened   accounts.chinext_opened_on             (SoR, calendar day)
    level2           accounts.level2_since                  (SoR, calendar day)

A channel QR's funnel is the customers who added an advisor through its ``state``
(``wecom_follows.state``): reached when they added, converted as above from then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import ibis

from caifu.adapters.sor.repos import recommend as rec_repo
from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.sor.repos import scrm_campaigns as runs
from caifu.core.errors import NotFoundError
from caifu.scrm import campaigns as gate
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.recommend import outcomes
from caifu.services.scrm.campaigns import Campaigns


def _day_facts(c: Container, tenant: str, ids: Sequence[str], table: str, column: str,
               kind: str) -> list[gate.Fact]:
    with c.engine.connect() as conn:
        return [gate.Fact(cid, kind, value)
                for cid, value in repo.day_facts(conn, tenant, table, column, ids)]


def _lake_facts(c: Container, tenant: str, ids: Sequence[str], since: dt.datetime,
                kinds: Sequence[str]) -> list[gate.Fact]:
    """Deposits and purchases of these customers since ``since``, read from the lake."""
    wanted: list[tuple[str, str, str, Callable[[Any], Any]]] = [
        ("funded", "cash_flows", "flow_time", lambda t: t.direction == "in"),
        ("product_bought", "fund_transactions", "txn_date",
         lambda t: t.txn_type.isin(["subscribe", "purchase"])),
        ("product_bought", "trades", "trade_time", lambda t: t.side == "B"),
    ]
    out: list[gate.Fact] = []
    con = ibis.duckdb.connect()
    try:
        for kind, table, column, cond in wanted:
            if kind not in kinds:
                continue
            t = c.lake_table(con, tenant, table)
            if t is None:
                continue
            lower = ibis.literal(since.date()) if column == "txn_date" else ibis.literal(since)
            expr = t.filter(t.customer_id.isin(list(ids)), cond(t), t[column] >= lower)
            for r in con.to_pyarrow(expr.select("customer_id", column)).to_pylist():
                out.append(gate.Fact(r["customer_id"], kind, r[column]))
    finally:
        con.disconnect()
    return out


class CampaignFunnel:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.campaigns = Campaigns(container)

    def refresh(self, tenant: str, campaign_id: str) -> int:
        """Bring in a channel QR's new customers and attribute conversions; the number of
        customers newly converted."""
        camp = self.campaigns.campaign(tenant, campaign_id)
        run = self.campaigns.run(tenant, campaign_id)
        if run is None:
            raise NotFoundError(f"campaign {campaign_id} has no run")
        if camp["channel"] == "channel_qr":
            self._qr_contacts(tenant, campaign_id)
        with self.c.engine.connect() as conn:
            rows = runs.unconverted_sent(conn, tenant, campaign_id)
        if not rows:
            return 0
        kinds = gate.CONVERSIONS.get(camp["goal"], gate.CONVERSIONS[None])
        ids = sorted({r.customer_id for r in rows})
        facts: list[gate.Fact] = []
        for kind, table, column in (("account_opened", "customers", "opened_on"),
                                    ("chinext_opened", "accounts", "chinext_opened_on"),
                                    ("level2", "accounts", "level2_since")):
            if kind in kinds:
                facts += _day_facts(self.c, tenant, ids, table, column, kind)
        facts += _lake_facts(self.c, tenant, ids, min(r.sent_at for r in rows), kinds)
        by_customer: dict[str, list[gate.Fact]] = {}
        for f in facts:
            by_customer.setdefault(f.customer_id, []).append(f)
        zone = ZoneInfo(get_tenant(self.c, tenant).timezone)
        found = []
        for r in rows:
            offset = zone.utcoffset(r.sent_at) or dt.timedelta(0)
            hit = gate.attribute(r.sent_at, by_customer.get(r.customer_id, []), kinds,
                                 run["attribution_days"], offset)
            if hit is not None:
                found.append((r.customer_id, *hit))
        with self.c.engine.begin() as conn:
            runs.mark_converted(conn, tenant, campaign_id, found)
        return len(found)

    def _qr_contacts(self, tenant: str, campaign_id: str) -> None:
        state = gate.qr_state(campaign_id)
        with self.c.engine.begin() as conn:
            have = runs.contact_customers(conn, tenant, campaign_id)
            first = repo.first_follows_by_state(conn, tenant, state)
            rows = [{"customer_id": cid,
                     "advisor_id": r.advisor_id, "external_userid": r.external_userid,
                     "targeted_at": r.added_at, "sent_at": r.added_at,
                     "delivered_at": r.added_at}
                    for cid, r in first.items() if cid not in have]
            runs.add_contacts(conn, tenant, campaign_id, rows)

    def funnel(self, tenant: str, campaign_id: str) -> dict[str, Any]:
        """One campaign's funnel: counts and rates per stage, conversions by kind, and how
        many the gate blocked on which rule."""
        camp = self.campaigns.campaign(tenant, campaign_id)
        run = self.campaigns.run(tenant, campaign_id)
        if run is None:
            raise NotFoundError(f"campaign {campaign_id} has no run")
        with self.c.engine.connect() as conn:
            rows = runs.stage_rows(conn, tenant, campaign_id, gate.STAGES)
            kinds = runs.conversion_counts(conn, tenant, campaign_id)
            blocked = runs.blocked_counts(conn, tenant, campaign_id)
        return {"campaign_id": campaign_id, "name": camp["name"], "channel": camp["channel"],
                "goal": camp["goal"], "status": run["status"],
                "sent_at": run["sent_at"].isoformat() if run["sent_at"] else None,
                "attribution_days": run["attribution_days"],
                "rule_version": run["rule_version"], "target": run["target"],
                "funnel": gate.funnel_row(gate.funnel_counts(rows)),
                "conversions": {str(a): int(b) for a, b in kinds.items()},
                "blocked": {str(a): int(b) for a, b in blocked.items()}}

    def compare(self, tenant: str) -> list[dict[str, Any]]:
        """One row per campaign — live runs and lake history — with counts and rates per
        stage, newest first. A campaign with a live run shows the live figures."""
        with self.c.engine.connect() as conn:
            info = runs.campaign_infos(conn, tenant)
            live_ids = runs.run_ids(conn, tenant)
            stage_rows = runs.stage_rows(conn, tenant, None, gate.STAGES)
        counts: dict[str, dict[str, int]] = {cid: dict.fromkeys(gate.STAGES, 0)
                                             for cid in live_ids}
        for m in stage_rows:
            n = counts.setdefault(m["campaign_id"], dict.fromkeys(gate.STAGES, 0))
            for s in gate.STAGES[:gate.reached(m) + 1]:
                n[s] += 1
        out = [self._row(info.get(cid, {}), cid, "live", n) for cid, n in counts.items()]
        for cid, n in self._history(tenant).items():
            if cid not in counts:
                out.append(self._row(info.get(cid, {}), cid, "history", n))
        out.sort(key=lambda x: (x["starts_on"] or "", x["campaign_id"]), reverse=True)
        return out

    @staticmethod
    def _row(info: dict[str, Any], cid: str, source: str, n: dict[str, int]) -> dict[str, Any]:
        starts = info.get("starts_on")
        spend = info.get("spend")
        return {"campaign_id": cid, "name": info.get("name"), "channel": info.get("channel"),
                "goal": info.get("goal"), "starts_on": starts.isoformat() if starts else None,
                "spend": float(spend) if spend is not None else None, "source": source,
                **gate.funnel_row(n)}

    def _history(self, tenant: str) -> dict[str, dict[str, int]]:
        """Distinct customers per campaign and stage in the lake's ``campaign_touches``
        (the history marks every stage a customer reached)."""
        con = ibis.duckdb.connect()
        try:
            t = self.c.lake_table(con, tenant, "campaign_touches")
            if t is None:
                return {}
            agg = t.group_by(["campaign_id", "stage"]).aggregate(n=t.customer_id.nunique())
            rows = con.to_pyarrow(agg).to_pylist()
        finally:
            con.disconnect()
        out: dict[str, dict[str, int]] = {}
        for x in rows:
            if x["stage"] in gate.STAGES:
                out.setdefault(x["campaign_id"], dict.fromkeys(gate.STAGES, 0))[x["stage"]] = \
                    int(x["n"])
        return out


def record_hit(c: Container, token: str, kind: str, on: dt.datetime | None = None) -> str | None:
    """A tracking-link visit: ``open`` marks opened, ``click`` opened and clicked (the first
    time each) — a campaign contact's (and the recommendation logged for it, when the run
    targeted a top k: ``services/recommend/campaign_log``), or else a recommendation's an
    advisor sent from the sidebar (``services/recommend/outcomes``). The content URL to redirect to, or None for an
    unknown token or a URL that is not http(s) — the caller answers 404 and learns nothing
    else."""
    if not token or len(token) > 32 or kind not in ("open", "click"):
        return None
    on = on or c.clock.now()
    with c.engine.begin() as conn:
        row = runs.contact_by_token(conn, token)
        if row is not None and str(row.url or "").startswith(("https://", "http://")):
            runs.mark_hit(conn, row.tenant_id, row.campaign_id, row.customer_id, kind, on)
            logged = rec_repo.by_token(conn, token)  # a top-k campaign's send, on the log
            if logged is not None and logged.tenant_id == row.tenant_id:
                outcomes.stamp_hit(conn, row.tenant_id, logged.rec_id, kind, on)
            return str(row.url)
    if row is not None:  # a campaign's link to no web page
        return None
    return outcomes.record_hit(c, token, kind, on)
