"""Campaign funnels: conversions attributed from the facts, the funnel of one campaign, and
the comparison table across every campaign — the live runs (``campaign_contacts``) beside
the history loaded into the lake (``campaign_touches``) — and the tracking link's opens and
clicks (``record_hit``).

The funnel and the comparison show governed metrics only (``data/metrics/campaigns.yaml``,
answered by ``services/metrics/query`` in the caller's scope, each with its id, version and
definition hash): nothing here counts contacts itself.

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
from typing import Any, Final
from zoneinfo import ZoneInfo

import ibis

from caifu.adapters.sor.repos import recommend as rec_repo
from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.sor.repos import scrm_campaigns as runs
from caifu.core.errors import NotFoundError
from caifu.core.identity import Principal
from caifu.pipelines.metrics import sqlexpr
from caifu.scrm import campaigns as gate
from caifu.services.container import Container
from caifu.services.metrics.query import Answer, answers
from caifu.services.platform.access import tenant_of
from caifu.services.platform.workspace import get_tenant
from caifu.services.recommend import outcomes
from caifu.services.scrm.campaigns import Campaigns

# the funnel's governed metrics (src/caifu/data/metrics/campaigns.yaml): a count per stage,
# each stage's rate from the stage before and the overall conversion (converted / targeted)
STAGE_METRICS: Final = {stage: f"campaign_{stage}_customers" for stage in gate.STAGES}
RATE_METRICS: Final = {**{f"{stage}_rate": f"campaign_{stage}_rate" for stage in gate.STAGES[1:]},
                       "conversion_rate": "campaign_conversion"}
FUNNEL: Final = (*STAGE_METRICS.values(), *RATE_METRICS.values())
BY_KIND: Final = "campaign_run_converted"  # cut by conversion_kind (the history has none)
BLOCKED: Final = "campaign_blocked_customers"  # cut by gate_rule
SINCE: Final = dt.date(2000, 1, 1)  # before any campaign: WeCom opened to customers in 2016


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

    def funnel(self, p: Principal, campaign_id: str) -> dict[str, Any]:
        """One campaign's funnel, as ``p`` may see it: counts and rates per stage,
        conversions by kind and how many the gate blocked on which rule — governed metrics
        (``data/metrics/campaigns.yaml``) with ``campaign = '<id>'`` over all time."""
        tenant = tenant_of(p)
        camp = self.campaigns.campaign(tenant, campaign_id)
        run = self.campaigns.run(tenant, campaign_id)
        if run is None:
            raise NotFoundError(f"campaign {campaign_id} has no run")
        # the id is quoted as a literal of the expression language, whatever it holds
        where = f"campaign = {sqlexpr.literal(campaign_id)}"
        start, end = self._span()
        stages = answers(self.c, p, list(FUNNEL), grain="all", start=start, end=end,
                         where=where)
        [kinds] = answers(self.c, p, [BY_KIND], by=("conversion_kind",), grain="all",
                          start=start, end=end, where=where)
        [blocked] = answers(self.c, p, [BLOCKED], by=("gate_rule",), grain="all",
                            start=start, end=end, where=where)
        values = {a.metric.name: (a.rows[0]["value"] if a.rows else None) for a in stages}
        return {"campaign_id": campaign_id, "name": camp["name"], "channel": camp["channel"],
                "goal": camp["goal"], "status": run["status"],
                "sent_at": run["sent_at"].isoformat() if run["sent_at"] else None,
                "attribution_days": run["attribution_days"],
                "rule_version": run["rule_version"], "target": run["target"],
                "funnel": _funnel_row(values),
                "conversions": _by(kinds, "conversion_kind"),
                "blocked": _by(blocked, "gate_rule"),
                "metrics": [a.cited() for a in (*stages, kinds, blocked)]}

    def compare(self, p: Principal) -> dict[str, Any]:
        """One row per campaign — caifu's runs and the lake's history — with counts and rates
        per stage, newest first: the funnel metrics cut by campaign. A campaign with a run
        counts from its run (``source`` live), another from the history."""
        tenant = tenant_of(p)
        with self.c.engine.connect() as conn:
            info = runs.campaign_infos(conn, tenant)
            live = set(runs.run_ids(conn, tenant))
        start, end = self._span()
        got = answers(self.c, p, list(FUNNEL), by=("campaign",), grain="all", start=start,
                      end=end)
        values: dict[str, dict[str, Any]] = {cid: {} for cid in live}
        for a in got:
            for r in a.rows:
                # both sources reference the campaigns table (a run needs its campaign, the
                # ingest checks the history's reference), so every row names one
                if r["campaign"] is not None:
                    values.setdefault(r["campaign"], {})[a.metric.name] = r["value"]
        items = [self._row(info.get(cid, {}), cid, "live" if cid in live else "history",
                           _funnel_row(v)) for cid, v in values.items()]
        items.sort(key=lambda x: (x["starts_on"] or "", x["campaign_id"]), reverse=True)
        return {"total": len(items), "items": items, "metrics": [a.cited() for a in got]}

    def _span(self) -> tuple[dt.date, dt.date]:
        """Every contact up to now: from ``SINCE`` to tomorrow (a period counts local dates,
        and the tenant's today may be the UTC date's tomorrow)."""
        return SINCE, self.c.clock.now().date() + dt.timedelta(days=1)

    @staticmethod
    def _row(info: dict[str, Any], cid: str, source: str, funnel: dict[str, Any]
             ) -> dict[str, Any]:
        starts = info.get("starts_on")
        spend = info.get("spend")
        return {"campaign_id": cid, "name": info.get("name"), "channel": info.get("channel"),
                "goal": info.get("goal"), "starts_on": starts.isoformat() if starts else None,
                "spend": float(spend) if spend is not None else None, "source": source,
                **funnel}


def _funnel_row(values: dict[str, Any]) -> dict[str, Any]:
    """Stage counts (0 where no contact reached the stage) and rates (None where nothing to
    divide), rounded to four places for display, from the metrics' values."""
    out: dict[str, Any] = {stage: int(values.get(STAGE_METRICS[stage]) or 0)
                           for stage in gate.STAGES}
    for field, metric in RATE_METRICS.items():
        v = values.get(metric)
        out[field] = None if v is None else round(float(v), 4)
    return out


def _by(a: Answer, dim: str) -> dict[str, int]:
    """A cut's counts by its value (``(none)``: a row without one)."""
    return {"(none)" if r[dim] is None else str(r[dim]): int(r["value"] or 0) for r in a.rows}


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
