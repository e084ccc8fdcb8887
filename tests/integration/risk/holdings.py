"""A few positions written into a workspace's lake and a negative story raised over them — the
small fixture the API and sidebar tests of risk alerts share (the demo broker is in
``test_exposure.py``)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa

from caifu.data.contracts.arrow import contract_schema
from caifu.data.contracts.tables import TABLES
from caifu.services.container import Container
from caifu.services.risk.exposure import ExposureReport, raise_alerts
from caifu.services.risk.intake import Intake
from caifu.services.risk.linking import classify_story, link_story

POSITIONS = next(t for t in TABLES if t.name == "positions")
SNAPSHOT = dt.date(2026, 1, 2)


def hold(c: Container, tenant: str, rows: list[tuple[str, str, int, str, str]]) -> None:
    """Positions on ``SNAPSHOT``: (customer, security, quantity, cost, market value)."""
    schema = contract_schema(POSITIONS)
    plain = [{"snapshot_date": SNAPSHOT, "fund_account": f"F{cid}", "security_code": code,
              "customer_id": cid, "quantity": qty, "cost": Decimal(cost),
              "market_value": Decimal(value)} for cid, code, qty, cost, value in rows]
    data = pa.table({f.name: pa.array([r.get(f.name) for r in plain], f.type) for f in schema})
    data = data.append_column("_batch_id", pa.array(["test"] * len(plain), pa.string()))
    c.lake.append(tenant, POSITIONS, data, f"test-positions-{tenant}")


def raise_story(c: Container, tenant: str, title: str, url: str, published: str,
                event_type: str = "regulatory_investigation") -> tuple[str, ExposureReport]:
    """Take in one document, link it, classify it negative and raise its alerts."""
    body = json.dumps({"title": title, "url": url, "published": published,
                       "body": title + "。公司表示将积极配合调查工作。"}, ensure_ascii=False)
    story = str(Intake(c).take_body(tenant, body.encode()).documents[0]["story_id"])
    link_story(c, tenant, story)
    classify_story(c, tenant, story, event_type, "negative", "ops.test")
    return story, raise_alerts(c, tenant, story)
