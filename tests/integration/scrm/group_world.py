"""A small tenant for group content plans: members with levels and published lists, content
of every kind a plan must refuse, and a group campaign that posted one item to one group.

Content (published in October 2026, valid 60 days by the default configuration):

| id | level | what it tests |
|---|---|---|
| H1 | R4 | every member's first item: above a group with a C3 member |
| A1..A4 | R3, R2, R1, R1 | may be posted to both groups; A4 is in nobody's top 3 |
| X1 | R2 | its title promises a sure gain: the compliance lexicon flags it |
| P1 | R2 | posted to ``low`` by a group campaign three days before ``now`` |
| OLD | R1 | published in June: past its validity on the plan day |

Groups (judged from their stored plans, no chat): ``low`` (lowest member; M1 C4, M2 C4,
M3 C3 — judged at C3), ``c4`` (homogeneous C4; M1, M2), ``nolists`` (lowest member; M5, M6
at C4, without published lists).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.scrm_models import (
    campaign_contacts,
    campaign_runs,
    preference_group_members,
    preference_groups,
)
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.services.container import Container
from tests.integration.recommend.world import assess, item, write_lists

T = CONTRACT_TABLES
DAY = dt.date(2026, 10, 30)
NOW = dt.datetime(2026, 10, 30, 4, 0)  # UTC: noon in Asia/Shanghai, on DAY

CONTENT = (  # id, title, level, published
    ("H1", "新能源车产业链深度报告", "R4", dt.datetime(2026, 10, 20)),
    ("A1", "光伏行业季度跟踪", "R3", dt.datetime(2026, 10, 21)),
    ("P1", "锂电池原材料价格周报", "R2", dt.datetime(2026, 10, 22)),
    ("A2", "储能行业观察", "R2", dt.datetime(2026, 10, 23)),
    ("A3", "基金定投入门", "R1", dt.datetime(2026, 10, 24)),
    ("A4", "新能源指数基金介绍", "R1", dt.datetime(2026, 10, 25)),
    ("X1", "稳赚不赔的新能源机会，跟着买就行", "R2", dt.datetime(2026, 10, 26)),
    ("OLD", "上半年新能源回顾", "R1", dt.datetime(2026, 6, 1)),
)
LEVELS = {"M1": "C4", "M2": "C4", "M3": "C3", "M5": "C4", "M6": "C4"}
GROUPS = {"low": ("lowest_member", None, ("M1", "M2", "M3")),
          "c4": ("homogeneous", "C4", ("M1", "M2")),
          "nolists": ("lowest_member", None, ("M5", "M6"))}


def _c(item_id: str, level: str) -> dict[str, Any]:
    return item(item_id, "content", level, 1.0, "测试", valid_from="2026-10-01",
                valid_until="2026-12-31")


# best first; the plans below vote with the first k = 3 places
LISTS = {
    "M1": [_c("H1", "R4"), _c("A1", "R3"), _c("P1", "R2"), _c("A2", "R2"),
           item("F000001", "fund", "R3", 0.5, "基金", horizon="medium", variety="equity")],
    "M2": [_c("H1", "R4"), _c("A2", "R2"), _c("A1", "R3"), _c("A4", "R1")],
    "M3": [_c("H1", "R4"), _c("X1", "R2"), _c("A3", "R1"), _c("OLD", "R1")],
}


def seed(c: Container, tenant: str = "acme", now: dt.datetime = NOW,
         branch: bool = True) -> None:
    """The table above; the group campaigns are sent relative to ``now``: P1 to ``low``
    3 days before, A3 to ``low`` 40 days before (outside the 30-day resend window), A2 to
    ``c4`` 3 days before. ``branch``: create branch YYB001 (False: it exists)."""
    with c.engine.begin() as conn:
        if branch:
            conn.execute(insert(T["branches"]).values(tenant_id=tenant, branch_id="YYB001",
                                                      name="金融街营业部"))
        for cid in LEVELS:
            conn.execute(insert(T["customers"]).values(
                tenant_id=tenant, customer_id=cid, name="王一", customer_type="individual",
                id_type="passport", id_number=f"E{cid}12345", mobile="13812345678",
                branch_id="YYB001", opened_on=dt.date(2024, 1, 2), channel="app",
                status="normal", marketing_consent=True))
        for content_id, title, level, day in CONTENT:
            conn.execute(insert(T["content_items"]).values(
                tenant_id=tenant, content_id=content_id, content_type="research_report",
                title=title, risk_level=level, published_at=day,
                url=f"https://research.example.com/{content_id}"))
        for group_id, (policy, level, members) in GROUPS.items():
            conn.execute(insert(preference_groups).values(
                tenant_id=tenant, group_id=group_id, name=f"测试群 {group_id}",
                rule="tag:interest_chinext", level_policy=policy, risk_level=level,
                created_at=now, updated_at=now))
            conn.execute(insert(preference_group_members), [
                {"tenant_id": tenant, "group_id": group_id, "customer_id": cid,
                 "status": "member", "reason": "在群", "risk_level": LEVELS[cid],
                 "updated_at": now} for cid in members])
        for n, (content_id, group_id, days) in enumerate(
                (("P1", "low", 3), ("A3", "low", 40), ("A2", "c4", 3))):
            campaign_id, at = f"GRP{n}", now - dt.timedelta(days=days)
            conn.execute(insert(T["campaigns"]).values(
                tenant_id=tenant, campaign_id=campaign_id, name="群推送", channel="group",
                content_id=content_id, goal="reactivation", starts_on=at.date()))
            conn.execute(insert(campaign_runs).values(
                tenant_id=tenant, campaign_id=campaign_id, status="sent", sent_at=at,
                attribution_days=14, target_json=json.dumps(
                    {"kind": "group", "group_id": group_id}), created_by="ops", created_at=at))
            conn.execute(insert(campaign_contacts).values(
                tenant_id=tenant, campaign_id=campaign_id, customer_id="M1", targeted_at=at,
                sent_at=at, msgid="msg"))
    for i, (cid, level) in enumerate(LEVELS.items()):
        assess(c, tenant, f"S{i}", cid, level)
    write_lists(c, tenant, LISTS)


def views(c: Container, rows: list[tuple[str, str, str, dt.datetime]],
          tenant: str = "acme") -> None:
    """``(customer, event type, content id, when)`` appended to the lake's ``app_events``."""
    contract = registry()["app_events"]
    schema = contract_schema(contract)
    values = [{"event_id": f"E{i}", "customer_id": cid, "event_type": kind, "content_id": item,
               "event_time": at} for i, (cid, kind, item, at) in enumerate(rows)]
    data = pa.table({f.name: pa.array([v.get(f.name) for v in values], f.type) for f in schema})
    data = data.append_column("_batch_id", pa.array(["test"] * len(values), pa.string()))
    c.lake.append(tenant, contract, data, "test-app-events")
