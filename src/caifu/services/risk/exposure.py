"""Exposure: a negative risk story → the tenant's customers holding the listed companies it
names → one alert per (event, holder) and one advisor task per alert.

    story (event_type set, polarity negative, companies linked)
        └─► holders: the latest positions snapshot (pipelines/risk_exposure), quantity > 0
              └─► per (customer, security): a repeat of an alerted event?  (the same story,
                  or the same security and event type within EVENT_WINDOW) → noted on that
                  alert, nothing new
                  else → risk_alerts row (position, evidence, the advisor's message)
                       + risk_tasks row (open, assigned to the customer's advisor)

Fund holdings: caifu's data model has no fund portfolio (disclosed top holdings) table, so
exposure through funds is not computed; ``via`` is always ``position``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
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


@dataclass
class ExposureReport:
    story_id: str
    event_type: str
    codes: list[str]
    snapshot_date: dt.date | None = None
    holders: int = 0
    new_alerts: int = 0
    repeats: int = 0
    alert_ids: list[str] = field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "event_type": self.event_type, "codes": self.codes,
                "snapshot_date": self.snapshot_date, "holders": self.holders,
                "new_alerts": self.new_alerts, "repeats": self.repeats,
                "alert_ids": self.alert_ids}


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
    """Holders of ``codes`` on the latest positions snapshot on or before ``as_of``."""
    con = ibis.duckdb.connect()
    try:
        positions = c.lake_table(con, tenant, "positions")
        if positions is None or not codes:
            return []
        return con.to_pyarrow(holders(positions, codes, as_of)).to_pylist()  # type: ignore[no-any-return]
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
    held = exposed(c, tenant, report.codes, now.date())
    report.holders = len(held)
    if not held:
        return report
    report.snapshot_date = held[0]["snapshot_date"]
    sources = [{"site": d["site"], "url": d["url"], "published_at": d["published_at"]
                .isoformat() + "Z", "title": d["title"]} for d in docs]
    event_at = story["first_published_at"]
    ids = sorted({h["customer_id"] for h in held})
    lexicon = default_lexicon()
    with c.lock(tenant, "risk-alerts"), c.engine.begin() as conn:
        seen = repo.alerted_events(conn, tenant, story_id, report.codes, story["event_type"],
                                   event_at - rules.EVENT_WINDOW, event_at + rules.EVENT_WINDOW)
        masters = {m.customer_id: m for m in scrm_repo.marketing_masters(conn, tenant, ids)}
        levels = scrm_repo.latest_assessments(conn, tenant, ids)
        alerts, tasks, events, repeats = [], [], [], []
        for h in held:
            key = (h["customer_id"], h["security_code"])
            if key in seen:
                repeats.append(seen[key])
                continue
            m = mentions[h["security_code"]]
            master = masters.get(h["customer_id"])
            level = levels[h["customer_id"]].risk_level if h["customer_id"] in levels else None
            draft = rules.warning(company=m["name"], code=m["code"],
                                  event_type=story["event_type"], title=story["title"],
                                  published=event_at.date(), site_count=story["site_count"],
                                  customer_level=level,
                                  consent=master.marketing_consent if master else None)
            found = lexicon.check_content(draft.text, footer_required=False).findings
            prohibited = tuple(dict.fromkeys(f.matched for f in found if f.action == "review"))
            if prohibited:
                draft = rules.warning(company=m["name"], code=m["code"],
                                      event_type=story["event_type"], title=story["title"],
                                      published=event_at.date(),
                                      site_count=story["site_count"], customer_level=level,
                                      consent=master.marketing_consent if master else None,
                                      prohibited=prohibited)
            aid = rules.alert_id(story_id, *key)
            advisor = master.advisor_id if master else None
            alerts.append({
                "alert_id": aid, "story_id": story_id, "security_code": h["security_code"],
                "company_name": m["name"][:200], "event_type": story["event_type"],
                "event_at": event_at, "customer_id": h["customer_id"], "advisor_id": advisor,
                "via": "position", "snapshot_date": h["snapshot_date"],
                "quantity": h["quantity"], "market_value": h["market_value"],
                "cost": h["cost"], "unrealised_pnl": h["unrealised_pnl"],
                "customer_risk_level": level,
                "evidence_json": json.dumps({"mention": m, "sources": sources},
                                            ensure_ascii=False),
                "message": draft.text, "message_may_send": draft.may_send,
                "message_notes": "\n".join(draft.notes), "repeat_story_ids_json": "[]",
                "created_at": now})
            tid = rules.task_id(aid)
            tasks.append({"task_id": tid, "alert_id": aid, "customer_id": h["customer_id"],
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
