"""Exposure on the small demo broker: a negative story about a held company → alerts and
advisor tasks for exactly the holders — directly and through funds whose disclosed top
holdings name the company — that a plain SQL query over positions, fund transactions and
top holdings finds, with the same values at risk (the oracle);
repeated stories about the same event raise nothing new; the task workflow is audited; an
advisor sees only his customers' tasks and another tenant sees none."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.workspace import create_tenant
from caifu.services.risk.exposure import raise_alerts
from caifu.services.risk.intake import Intake
from caifu.services.risk.linking import classify_story, link_story
from caifu.services.risk.tasks import list_alerts, list_tasks, set_status
from tests.conftest import Broker
from tests.integration.risk.oracle import holders as _oracle
from tests.integration.risk.oracle import routes as _routes

OPS = Principal("acme", "ops.li", "ops")


def _most_held(c: Container) -> tuple[str, str]:
    """The stock held by the most customers on the latest snapshot, and its short name."""
    files = c.lake.files("acme", "positions")
    ranked = duckdb.sql(f"""
        WITH p AS (SELECT * FROM read_parquet({files!r}))
        SELECT security_code FROM p
        WHERE snapshot_date = (SELECT max(snapshot_date) FROM p) AND quantity > 0
        GROUP BY 1 ORDER BY count(DISTINCT customer_id) DESC, 1""").fetchall()
    with c.engine.connect() as conn:
        stocks = dict(conn.exec_driver_sql(
            "SELECT security_code, short_name FROM securities WHERE tenant_id = 'acme' "
            "AND security_type = 'stock'").all())
    code = next(r[0] for r in ranked if r[0] in stocks)
    return code, stocks[code]


def _story(c: Container, title: str, url: str, published: str) -> str:
    body = json.dumps({"title": title, "url": url, "published": published,
                       "body": title + "。公司将积极配合调查工作。"}, ensure_ascii=False)
    report = Intake(c).take_body("acme", body.encode())
    return str(report.documents[0]["story_id"])


@pytest.fixture(scope="module")
def c(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    c = small_broker.copy(tmp_path_factory.mktemp("risk-exposure") / "ws")
    create_tenant(c, "other", "另一家证券")
    yield c
    c.close()


@pytest.fixture(scope="module")
def raised(c: Container) -> dict[str, object]:
    code, name = _most_held(c)
    story = _story(c, f"{name}收到中国证监会立案告知书", "https://news.example.cn/a/1",
                   "2026-01-05 09:30")
    linked = link_story(c, "acme", story)
    assert any(m["code"] == code and m["listed"] for m in linked), linked
    with pytest.raises(ConfigError, match="classify it first"):
        raise_alerts(c, "acme", story)
    classify_story(c, "acme", story, "regulatory_investigation", "negative", "ops.li")
    report = raise_alerts(c, "acme", story)
    return {"code": code, "name": name, "story": story, "report": report}


def test_holder_set_equals_the_sql_oracle(c: Container, raised: dict) -> None:
    report = raised["report"]
    oracle = _oracle(c, [raised["code"]])
    assert len(oracle) > 0
    alerts = list_alerts(c, OPS, limit=1000)["items"]
    assert {(a["customer_id"], a["security_code"]) for a in alerts} == oracle
    assert report.holders == report.new_alerts == len(oracle)
    a = next(a for a in alerts if a["market_value"] is not None)
    assert a["unrealised_pnl"] == a["market_value"] - a["cost"]
    assert a["evidence"]["mention"]["code"] == raised["code"]
    assert a["evidence"]["sources"][0]["url"] == "https://news.example.cn/a/1"
    assert "不构成投资建议" in a["message"] and "卖出" not in a["message"]
    assert "*" in (a["customer_name"] or "*")  # masked


def test_routes_and_values_at_risk_equal_the_sql_oracle(c: Container, raised: dict) -> None:
    """Every alert lists exactly the oracle's routes with the oracle's values; one alert per
    (customer, security) however many routes; the demo has customers exposed only through
    funds, and customers exposed both ways."""
    routes = _routes(c, [raised["code"]])
    alerts = list_alerts(c, OPS, limit=1000)["items"]
    assert len(alerts) == len(routes)
    kinds = {"position": 0, "funds only": 0, "both": 0}
    for a in alerts:
        want = routes[(a["customer_id"], a["security_code"])]
        got = {r["via"]: Decimal(r["value_at_risk"]) for r in a["routes"]}
        assert got == want, a["customer_id"]
        assert Decimal(str(a["value_at_risk"])) == sum(want.values())
        assert a["via"] == "+".join(r["via"] for r in a["routes"])
        funds = [r for r in a["routes"] if r["via"] != "position"]
        for r in funds:  # value at risk = the fund position's value × disclosed % of NAV
            assert r["via"] == f"fund:{r['fund_code']}" and r["fund_name"]
            assert Decimal(r["value_at_risk"]) == (Decimal(r["market_value"])
                                                   * Decimal(r["nav_pct"]) / 100
                                                   ).quantize(Decimal("0.01"))
        if "position" in want:
            assert a["routes"][0]["via"] == "position"
            assert Decimal(str(a["market_value"])) == want["position"]
            kinds["both" if funds else "position"] += 1
        else:
            assert a["market_value"] is None and a["quantity"] is None
            assert "基金" in a["message"] and "前十大重仓股" in a["message"]
            kinds["funds only"] += 1
    assert all(kinds.values()), kinds
    assert raised["report"].fund_routes == sum(len(v) - ("position" in v)
                                               for v in routes.values())


def test_repeated_stories_raise_no_new_alerts_or_tasks(c: Container, raised: dict) -> None:
    before = list_tasks(c, OPS, limit=1)["total"]
    again = raise_alerts(c, "acme", raised["story"])  # the same story again
    assert (again.new_alerts, again.repeats) == (0, again.holders)
    other = _story(c, f"{raised['name']}涉嫌信息披露违法违规被证监会立案调查",
                   "https://finance.example.com/b/2", "2026-01-06 10:00")
    assert other != raised["story"]
    link_story(c, "acme", other)
    classify_story(c, "acme", other, "regulatory_investigation", "negative", "ops.li")
    rep = raise_alerts(c, "acme", other)
    assert rep.new_alerts == 0 and rep.repeats == rep.holders > 0
    assert list_tasks(c, OPS, limit=1)["total"] == before
    alerts = list_alerts(c, OPS, limit=1)["items"]
    assert other in alerts[0]["repeat_story_ids"]


def test_not_negative_or_unclassified_is_refused(c: Container, raised: dict) -> None:
    s = _story(c, f"{raised['name']}澄清：公司未收到任何立案告知书",
               "https://news.example.cn/c/3", "2026-01-07 08:00")
    link_story(c, "acme", s)
    classify_story(c, "acme", s, "none", "neutral", "ops.li")
    with pytest.raises(ConfigError, match="no risk event"):
        raise_alerts(c, "acme", s)
    with pytest.raises(ConfigError, match="unknown event type"):
        classify_story(c, "acme", s, "rumour", "negative", "ops.li")


def test_workflow_transitions_are_checked_and_audited(c: Container, raised: dict) -> None:
    tasks = list_tasks(c, OPS, status="open", limit=2)["items"]
    t1, t2 = tasks[0]["task_id"], tasks[1]["task_id"]
    with pytest.raises(ConfigError, match="from open: acknowledged, dismissed"):
        set_status(c, OPS, t1, "contacted")
    for step in ("acknowledged", "contacted", "done"):
        got = set_status(c, OPS, t1, step)
    assert got["status"] == "done" and got["updated_by"] == "ops.li"
    assert [h["to_status"] for h in got["history"]] == ["open", "acknowledged", "contacted",
                                                         "done"]
    with pytest.raises(ConfigError, match="cannot change any more"):
        set_status(c, OPS, t1, "dismissed", "changed my mind")
    with pytest.raises(ConfigError, match="needs a reason"):
        set_status(c, OPS, t2, "dismissed")
    assert set_status(c, OPS, t2, "dismissed", "客户已清仓")["reason"] == "客户已清仓"
    moves = [r.entry for r in audit.records(c, "acme") if r.entry.action == "risk_task"]
    assert [m.reason.split(": ")[1].split(";")[0] for m in moves[-4:]] == [
        "open → acknowledged", "acknowledged → contacted", "contacted → done",
        "open → dismissed"]
    assert moves[-1].actor == "ops.li" and "客户已清仓" in moves[-1].reason
    assert any(r.entry.action == "risk_classify" for r in audit.records(c, "acme"))


def test_scope_advisor_sees_only_his_customers_and_no_other_tenant(c: Container,
                                                                   raised: dict) -> None:
    everything = list_tasks(c, OPS, limit=1000)["items"]
    advisors = sorted({t["advisor_id"] for t in everything if t["advisor_id"]})
    assert len(advisors) >= 2
    a, b = advisors[:2]
    pa_ = Principal("acme", "adv.a", "advisor", advisor_id=a)
    mine = list_tasks(c, pa_, limit=1000)["items"]
    with c.engine.connect() as conn:  # his customers: assigned, or followed on WeCom
        followed = {r[0] for r in conn.exec_driver_sql(
            "SELECT customer_id FROM wecom_follows WHERE tenant_id = 'acme' AND advisor_id = ? "
            "AND status = 'active' AND customer_id IS NOT NULL", (a,))}
    assert mine and all(t["advisor_id"] == a or t["customer_id"] in followed for t in mine)
    assert {t["task_id"] for t in mine} == {t["task_id"] for t in everything
                                            if t["advisor_id"] == a
                                            or t["customer_id"] in followed}
    b_task = next(t for t in everything if t["advisor_id"] == b and t["status"] == "open"
                  and t["customer_id"] not in followed)
    with pytest.raises(NotFoundError):
        set_status(c, pa_, b_task["task_id"], "acknowledged")
    assert list_alerts(c, pa_, limit=1000)["total"] == len(mine)
    other = Principal("other", "ops.o", "ops")
    assert list_tasks(c, other)["total"] == 0 and list_alerts(c, other)["total"] == 0
    with pytest.raises(NotFoundError):
        set_status(c, other, b_task["task_id"], "acknowledged")


def test_a_later_event_of_another_type_is_a_new_alert(c: Container, raised: dict) -> None:
    s = _story(c, f"{raised['name']}收到行政处罚事先告知书", "https://news.example.cn/d/4",
               "2026-01-08 08:00")
    link_story(c, "acme", s)
    classify_story(c, "acme", s, "administrative_penalty", "negative", "ops.li")
    rep = raise_alerts(c, "acme", s)
    assert rep.new_alerts == rep.holders == len(_oracle(c, rep.codes)) > 0
    assert dt.date(2026, 1, 8) > dt.date(2026, 1, 5)
