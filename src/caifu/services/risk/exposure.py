"""Exposure: a negative risk story → the tenant's customers holding the listed companies it
names, directly or through funds → one alert per (event, holder, security) and one advisor
task per alert.

    story (event_type set, polarity negative, companies linked)
        └─► holders (pipelines/risk_exposure): the latest positions snapshot, quantity > 0,
            and fund positions whose fund's latest disclosed top holdings name the security
              └─► per (customer, security): a repeat of an alerted event?  (the same story,
                  or the same security and event type within EVENT_WINDOW) → noted on that
                  alert, nothing new
                  else → risk_alerts row (every route, evidence, the advisor's message)
                       + risk_tasks row (open, assigned to the customer's advisor)

One alert per (customer, security, story) whatever the routes: a customer holding the stock
and two funds that hold it gets one alert whose ``routes_json`` lists the three routes and
whose ``value_at_risk`` is their sum; ``via`` names them (``position``, ``fund:<code>``,
joined with ``+``). ``quantity``, ``market_value``, ``cost`` and ``unrealised_pnl`` are the
direct position's — null when the customer is exposed only through funds; each fund route
carries the fund position's value, cost and P&L and the disclosed percentage of NAV.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis

from caifu.adapters.sor.repos import risk as repo
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.core.errors import ConfigError, NotFoundError
from caifu.pipelines.risk_exposure import holders
from caifu.risk import alerts as rules
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.text.compliance import default_lexicon

VIA_MAX = 255  # risk_alerts.via


@dataclass
class ExposureReport:
    story_id: str
    event_type: str
    codes: list[str]
    snapshot_date: dt.date | None = None
    holders: int = 0  # (customer, security) pairs, whatever the routes
    fund_routes: int = 0  # (customer, security, fund) routes among them
    new_alerts: int = 0
    repeats: int = 0
    alert_ids: list[str] = field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "event_type": self.event_type, "codes": self.codes,
                "snapshot_date": self.snapshot_date, "holders": self.holders,
                "fund_routes": self.fund_routes, "new_alerts": self.new_alerts,
                "repeats": self.repeats, "alert_ids": self.alert_ids}


@dataclass
class Exposure:
    """One customer's exposure to one security: every route, the direct position first."""

    customer_id: str
    security_code: str
    routes: list[dict[str, Any]]

    @property
    def direct(self) -> dict[str, Any] | None:
        return next((r for r in self.routes if r["via"] == "position"), None)

    @property
    def value_at_risk(self) -> Decimal:
        return sum((r["value_at_risk"] for r in self.routes), Decimal("0.00"))

    @property
    def via(self) -> str:
        names = [r["via"] for r in self.routes]
        text, k = "+".join(names), len(names)
        while len(text) > VIA_MAX:  # the whole list is in routes_json
            k -= 1
            text = "+".join(names[:k]) + f"+{len(names) - k} more"
        return text


def group_routes(rows: list[dict[str, Any]]) -> list[Exposure]:
    """Rows of ``holders`` → one Exposure per (customer, security): the direct position
    first, then funds by value at risk (largest first) and code."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["customer_id"], r["security_code"]), []).append(r)
    out = []
    for (cid, code), routes in sorted(by.items()):
        routes.sort(key=lambda r: (r["via"] != "position", -r["value_at_risk"], r["via"]))
        out.append(Exposure(cid, code, routes))
    return out


def _route_plain(r: dict[str, Any], fund_names: dict[str, str]) -> dict[str, Any]:
    def text(v: Any) -> str | None:
        return None if v is None else str(v)

    out: dict[str, Any] = {"via": r["via"], "value_at_risk": text(r["value_at_risk"]),
                           "market_value": text(r["market_value"]), "cost": text(r["cost"]),
                           "unrealised_pnl": text(r["unrealised_pnl"]),
                           "as_of": r["snapshot_date"].isoformat()}
    if r["via"] == "position":
        out["quantity"] = text(r["quantity"])
    else:
        out.update(fund_code=r["fund_code"], fund_name=fund_names.get(r["fund_code"]),
                   shares=text(r["shares"]), report_date=r["report_date"].isoformat(),
                   nav_pct=text(r["nav_pct"]))
    return out


def _risk_story(c: Container, tenant: str, story_id: str) -> tuple[dict[str, Any],
                                                                  list[dict[str, Any]]]:
    with c.engine.connect() as conn:
        story = repo.story(conn, tenant, story_id)
        if story is None:
            raise NotFoundError(f"no story {story_id!r}")
        docs = repo.story_documents(conn, tenant, story_id)
    if story["event_type"] in (None, "", "none"):
        raise ConfigError(f"story {story_id} has no risk event (event_type "
                          f"{story['event_type'] or 'unset'}): classify it first "
                          "(caifu risk classify-story)")
    if story["polarity"] != "negative":
        raise ConfigError(f"story {story_id} is {story['polarity'] or 'of unset polarity'}: "
                          "only a negative story raises alerts")
    if story["companies_json"] is None:
        raise ConfigError(f"story {story_id} is not linked to companies yet (link it first)")
    return story, docs


def exposed(c: Container, tenant: str, codes: list[str], as_of: dt.date
            ) -> list[dict[str, Any]]:
    """Every route by which a customer holds one of ``codes`` on ``as_of``: the latest
    positions snapshot on or before it, and fund positions through the funds' latest
    disclosed top holdings (``pipelines/risk_exposure.holders``)."""
    if not codes:
        return []
    con = ibis.duckdb.connect()
    try:
        positions = c.lake_table(con, tenant, "positions")
        fund_tx = c.lake_table(con, tenant, "fund_transactions")
        top = c.lake_table(con, tenant, "fund_top_holdings")
        expr = holders(positions, codes, as_of, fund_tx, top)
        if expr is None:
            return []
        return con.to_pyarrow(expr).to_pylist()  # type: ignore[no-any-return]
    finally:
        con.disconnect()


def raise_alerts(c: Container, tenant: str, story_id: str) -> ExposureReport:
    """Alerts and tasks for every holder of the story's listed companies (idempotent)."""
    get_tenant(c, tenant)
    story, docs = _risk_story(c, tenant, story_id)
    mentions: dict[str, dict[str, Any]] = {}
    for m in json.loads(story["companies_json"]):
        if m["listed"] and m["code"]:
            mentions.setdefault(m["code"], m)  # the first mention is the evidence
    report = ExposureReport(story_id, story["event_type"], sorted(mentions))
    now = c.clock.now()
    rows = exposed(c, tenant, report.codes, now.date())
    held = group_routes(rows)
    report.holders = len(held)
    report.fund_routes = sum(r["via"] != "position" for r in rows)
    if not held:
        return report
    report.snapshot_date = max(r["snapshot_date"] for r in rows if r["via"] == "position") \
        if any(r["via"] == "position" for r in rows) else None
    sources = [{"site": d["site"], "url": d["url"], "published_at": d["published_at"]
                .isoformat() + "Z", "title": d["title"]} for d in docs]
    event_at = story["first_published_at"]
    ids = sorted({h.customer_id for h in held})
    lexicon = default_lexicon()
    with c.lock(tenant, "risk-alerts"), c.engine.begin() as conn:
        seen = repo.alerted_events(conn, tenant, story_id, report.codes, story["event_type"],
                                   event_at - rules.EVENT_WINDOW, event_at + rules.EVENT_WINDOW)
        masters = {m.customer_id: m for m in scrm_repo.marketing_masters(conn, tenant, ids)}
        levels = scrm_repo.latest_assessments(conn, tenant, ids)
        fund_names = repo.fund_names(conn, tenant, sorted(
            {r["fund_code"] for r in rows if r["fund_code"]}))
        alerts, tasks, events, repeats = [], [], [], []
        drafts: dict[tuple[Any, ...], rules.AdvisorMessage] = {}
        checked: dict[str, tuple[str, ...]] = {}
        evidence = {code: json.dumps({"mention": m, "sources": sources}, ensure_ascii=False)
                    for code, m in mentions.items()}
        for h in held:
            key = (h.customer_id, h.security_code)
            if key in seen:
                repeats.append(seen[key])
                continue
            m = mentions[h.security_code]
            master = masters.get(h.customer_id)
            level = levels[h.customer_id].risk_level if h.customer_id in levels else None
            direct = h.direct
            funds = tuple(f"{fund_names.get(r['fund_code'], '')}（{r['fund_code']}）"
                          for r in h.routes if r["via"] != "position")
            words = {"company": m["name"], "code": m["code"],
                     "event_type": story["event_type"], "title": story["title"],
                     "published": event_at.date(), "site_count": story["site_count"],
                     "customer_level": level,
                     "consent": master.marketing_consent if master else None,
                     "direct": direct is not None, "funds": funds}
            # holders of one story share a handful of drafts (consent, level, funds): each
            # distinct one is written and checked once
            wkey = tuple(words.values())
            draft = drafts.get(wkey)
            if draft is None:
                draft = rules.warning(**words)
                if draft.text not in checked:
                    found = lexicon.check_content(draft.text, footer_required=False).findings
                    checked[draft.text] = tuple(dict.fromkeys(
                        f.matched for f in found if f.action == "review"))
                if checked[draft.text]:
                    draft = rules.warning(**words, prohibited=checked[draft.text])
                drafts[wkey] = draft
            aid = rules.alert_id(story_id, *key)
            advisor = master.advisor_id if master else None
            first = direct or h.routes[0]
            alerts.append({
                "alert_id": aid, "story_id": story_id, "security_code": h.security_code,
                "company_name": m["name"][:200], "event_type": story["event_type"],
                "event_at": event_at, "customer_id": h.customer_id, "advisor_id": advisor,
                "via": h.via, "snapshot_date": first["snapshot_date"],
                "quantity": direct["quantity"] if direct else None,
                "market_value": direct["market_value"] if direct else None,
                "cost": direct["cost"] if direct else None,
                "unrealised_pnl": direct["unrealised_pnl"] if direct else None,
                "value_at_risk": h.value_at_risk,
                "routes_json": json.dumps([_route_plain(r, fund_names) for r in h.routes],
                                          ensure_ascii=False),
                "customer_risk_level": level,
                "evidence_json": evidence[h.security_code],
                "message": draft.text, "message_may_send": draft.may_send,
                "message_notes": "\n".join(draft.notes), "repeat_story_ids_json": "[]",
                "created_at": now})
            tid = rules.task_id(aid)
            tasks.append({"task_id": tid, "alert_id": aid, "customer_id": h.customer_id,
                          "advisor_id": advisor, "status": "open", "reason": None,
                          "created_at": now, "updated_at": now, "updated_by": "system"})
            events.append({"task_id": tid, "seq": 1, "from_status": None, "to_status": "open",
                           "actor": "system", "at": now, "reason": f"story {story_id}"})
            seen[key] = aid
            report.alert_ids.append(aid)
        repo.add_alerts(conn, tenant, alerts, tasks, events)
        repo.add_repeat(conn, tenant, sorted(set(repeats)), story_id)
    report.new_alerts, report.repeats = len(alerts), len(repeats)
    return report
