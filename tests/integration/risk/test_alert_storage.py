"""An alert's long text is stored once per tenant and content (migration 0013): the evidence
in ``risk_alert_evidence``, the advisor message in ``risk_alert_messages``, the alert keeps
their keys. Every reader still gets the alert as ``risk_alerts`` held it up to 0012 — the
same columns, in the same order, with the same values — and the migration moves existing
alerts' text without changing what any reader returns, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, MetaData, Table, func, insert, inspect, select

from caifu.adapters.sor.repos import risk as repo
from caifu.adapters.sor.risk_models import risk_alert_evidence, risk_alert_messages
from caifu.adapters.sor.store import _alembic_config, migrate, open_engine
from caifu.services.compliance.privacy import _customer_rows
from caifu.services.container import Container
from caifu.services.platform.workspace import create_tenant
from tests.integration.risk.holdings import hold, raise_story

pytestmark = pytest.mark.dialect  # ON CONFLICT, COPY and the table rebuilt differ by dialect

# what repo.alerts returned for an alert up to migration 0012 (the alert's columns, then its
# task's id and status): the API, the CLI, the sidebar and the demo read these keys
OLD_ALERT_KEYS = [
    "alert_id", "story_id", "security_code", "company_name", "event_type", "event_at",
    "customer_id", "advisor_id", "via", "snapshot_date", "quantity", "market_value", "cost",
    "unrealised_pnl", "value_at_risk", "routes_json", "customer_risk_level", "evidence_json",
    "message", "message_may_send", "message_notes", "repeat_story_ids_json", "created_at",
    "task_id", "status"]
NOW = dt.datetime(2026, 1, 6, 8, 0)


def _old_alert(tenant: str, n: int, customer: str, evidence: str, message: str,
               may_send: bool = True) -> dict[str, Any]:
    return {"tenant_id": tenant, "alert_id": f"ra{tenant}{n:028d}", "story_id": "s1",
            "security_code": "600519", "company_name": "贵州茅台",
            "event_type": "regulatory_investigation", "event_at": NOW - dt.timedelta(days=1),
            "customer_id": customer, "advisor_id": "A1", "via": "position",
            "snapshot_date": dt.date(2026, 1, 2), "quantity": Decimal(100),
            "market_value": Decimal("140000.00"), "cost": Decimal("150000.00"),
            "unrealised_pnl": Decimal("-10000.00"), "customer_risk_level": "C3",
            "evidence_json": evidence, "message": message, "message_may_send": may_send,
            "message_notes": "客户风险等级：C3\n" + ("" if may_send else "客户已退订"),
            "repeat_story_ids_json": "[]", "created_at": NOW,
            "value_at_risk": Decimal("140000.00"), "routes_json": '[{"via": "position"}]'}


def _old_reader(conn: Connection, alerts: Table, tasks: Table, tenant: str
                ) -> list[list[tuple[str, Any]]]:
    """``repo.alerts`` as it was at 0012: the alert's columns (model order) and its task's."""
    columns = [alerts.c[k] for k in OLD_ALERT_KEYS[:-2]] + [tasks.c.task_id, tasks.c.status]
    rows = conn.execute(select(*columns).select_from(alerts.join(
        tasks, (tasks.c.tenant_id == alerts.c.tenant_id) & (tasks.c.alert_id == alerts.c.alert_id)))
        .where(alerts.c.tenant_id == tenant)
        .order_by(alerts.c.event_at.desc(), alerts.c.alert_id)).mappings()
    return [list(r.items()) for r in rows]


def _exported(conn: Connection, alerts: Table, tenant: str, customer: str
              ) -> list[list[tuple[str, Any]]]:
    """The privacy export's rows of risk_alerts at 0012: the table as the database orders it."""
    return [list(r._mapping.items()) for r in conn.execute(select(alerts).where(
        alerts.c.tenant_id == tenant, alerts.c.customer_id == customer))]


def test_migration_0013_moves_the_text_and_readers_get_the_same_rows(sor_url: str) -> None:
    engine = open_engine(sor_url)
    migrate(engine, "0012")
    evid_a = json.dumps({"mention": {"code": "600519", "name": "贵州茅台"}}, ensure_ascii=False)
    evid_b = json.dumps({"mention": {"code": "600519", "name": "茅台"}}, ensure_ascii=False)
    rows = [_old_alert("acme", 1, "C1", evid_a, "提示一"),
            _old_alert("acme", 2, "C2", evid_a, "提示一"),
            _old_alert("acme", 3, "C3", evid_a, "提示一", may_send=False),  # other notes
            _old_alert("acme", 4, "C4", evid_b, "提示二"),
            _old_alert("beta", 1, "B1", evid_a, "提示一")]  # the same text, another tenant
    with engine.begin() as conn:
        old = MetaData()
        alerts = Table("risk_alerts", old, autoload_with=conn)
        tasks = Table("risk_tasks", old, autoload_with=conn)
        conn.execute(insert(alerts), rows)
        conn.execute(insert(tasks), [
            {"tenant_id": r["tenant_id"], "task_id": "rt" + r["alert_id"][2:],
             "alert_id": r["alert_id"], "customer_id": r["customer_id"], "advisor_id": "A1",
             "status": "open", "created_at": NOW, "updated_at": NOW, "updated_by": "system"}
            for r in rows])
        before = {t: _old_reader(conn, alerts, tasks, t) for t in ("acme", "beta")}
        export_before = _exported(conn, alerts, "acme", "C3")
        columns_before = [c["name"] for c in inspect(conn).get_columns("risk_alerts")]
    assert [k for k, _ in before["acme"][0]] == OLD_ALERT_KEYS

    migrate(engine)
    with engine.connect() as conn:
        for tenant in ("acme", "beta"):
            _, now = repo.alerts(conn, tenant, None, None, None, 100, 0)
            assert [list(r.items()) for r in now] == before[tenant]
        assert [list(r._mapping.items())
                for r in _customer_rows(conn, "acme", "risk_alerts", "C3")] == export_before
        assert not {"evidence_json", "message"} & {
            c["name"] for c in inspect(conn).get_columns("risk_alerts")}
        stored = {t.name: conn.execute(select(t.c.tenant_id, func.count()).group_by(
            t.c.tenant_id).order_by(t.c.tenant_id)).all()
            for t in (risk_alert_evidence, risk_alert_messages)}
    # acme: 2 evidences, 3 messages (提示一 twice over: may send, or not); beta its own copy
    assert stored == {"risk_alert_evidence": [("acme", 2), ("beta", 1)],
                      "risk_alert_messages": [("acme", 3), ("beta", 1)]}

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    with engine.connect() as conn:
        old = MetaData()
        alerts = Table("risk_alerts", old, autoload_with=conn)
        tasks = Table("risk_tasks", old, autoload_with=conn)
        assert {t: _old_reader(conn, alerts, tasks, t) for t in ("acme", "beta")} == before
        assert _exported(conn, alerts, "acme", "C3") == export_before
        assert [c["name"] for c in inspect(conn).get_columns("risk_alerts")] == columns_before
    engine.dispose()


TITLE = "贵州茅台收到中国证监会立案告知书"
URL = "https://news.example.cn/a/1"


def test_raised_alerts_read_back_in_the_old_shape_with_their_text_stored_once(
        workspace: Container) -> None:
    c = workspace
    create_tenant(c, "beta", "丙丁证券")
    hold(c, "acme", [("C1", "600519", 100, "150000.00", "140000.00"),
                     ("C2", "600519", 200, "280000.00", "300000.00"),
                     ("C3", "600519", 300, "450000.00", "420000.00")])
    hold(c, "beta", [("B1", "600519", 50, "75000.00", "70000.00")])
    _, acme = raise_story(c, "acme", TITLE, URL, "2026-01-05 09:30")
    _, beta = raise_story(c, "beta", TITLE, URL, "2026-01-05 09:30")
    assert (acme.new_alerts, beta.new_alerts) == (3, 1)
    with c.engine.connect() as conn:
        _, alerts = repo.alerts(conn, "acme", None, None, None, 100, 0)
        _, tasks = repo.tasks(conn, "acme", None, None, None, None, 100, 0)
        shared = {t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                  for t in (risk_alert_evidence, risk_alert_messages)}
    assert [list(a) for a in alerts] == [OLD_ALERT_KEYS] * 3
    [evidence] = {a["evidence_json"] for a in alerts}  # one story, one company
    parsed = json.loads(evidence)
    assert parsed["mention"]["code"] == "600519" and parsed["mention"]["name"] == "贵州茅台"
    assert [s["url"] for s in parsed["sources"]] == [URL]
    for a in alerts:
        assert "不构成投资建议" in a["message"] and "卖出" not in a["message"]
        assert a["message_may_send"] is True
        assert a["message_notes"].startswith("客户风险等级：未测评")  # no assessment loaded
    by_alert = {a["alert_id"]: a for a in alerts}
    assert {(t["alert_id"], t["message"], t["message_may_send"]) for t in tasks} == {
        (k, a["message"], a["message_may_send"]) for k, a in by_alert.items()}

    # stored once per tenant: the same content (so the same keys) in two rows, one each
    assert [(r.tenant_id, r.evidence_json) for r in shared["risk_alert_evidence"]] == [
        ("acme", evidence), ("beta", evidence)]
    messages = [(r.tenant_id, r.message_hash, r.message) for r in shared["risk_alert_messages"]]
    assert [m[0] for m in messages] == ["acme", "beta"]
    assert messages[0][1:] == messages[1][1:] == (
        repo.text_key(alerts[0]["message"], True, alerts[0]["message_notes"]),
        alerts[0]["message"])

    # raising again stores nothing twice and nothing new
    _, again = raise_story(c, "acme", TITLE + "，股价跌停", "https://news.example.cn/a/2",
                           "2026-01-06 09:30")
    assert (again.new_alerts, again.repeats) == (0, 3)
    with c.engine.connect() as conn:
        counts = [conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in (risk_alert_evidence, risk_alert_messages)]
    assert counts == [2, 2]
