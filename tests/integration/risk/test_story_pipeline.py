"""A new story's whole path without an operator: intake → link → the event classifier →
alerts and tasks for every holder; an operator's classification is never overwritten; a denial
raises nothing. Headlines here are real ones from the risk corpus's test split (their pages
are named in src/caifu/data/risk/corpus) — text the classifier did not train on."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from caifu.adapters.sor.risk_models import risk_alerts, risk_stories, risk_tasks
from caifu.core.clock import FixedClock
from caifu.services.container import Container
from caifu.services.risk.events import new_story_ids, process_stories
from caifu.services.risk.intake import Intake
from caifu.services.risk.linking import classify_story
from tests.integration.risk.holdings import hold


@pytest.fixture
def c(workspace: Container) -> Container:
    workspace.clock = FixedClock(dt.datetime(2026, 1, 6, 8, 0))
    return workspace


def _take(c: Container, title: str, url: str) -> list[str]:
    body = json.dumps({"title": title, "url": url, "published": "2026-01-05 09:30",
                       "body": ""}, ensure_ascii=False)
    return new_story_ids(Intake(c).take_body("acme", body.encode()))


def test_a_risk_story_reaches_every_holder_as_a_task(c: Container) -> None:
    title = "清越科技公告,公司于近日收到中国证监会出具的《立案告知书》。"
    hold(c, "acme", [("C1", "688496", 100, "1000.00", "900.00"),
                     ("C2", "688496", 50, "500.00", "450.00"),
                     ("C3", "600519", 10, "15000.00", "16000.00")])
    stories = _take(c, title, "https://news.example.cn/r/1")
    (out,) = process_stories(c, "acme", stories)
    assert (out.event_type, out.polarity, out.severity) == ("regulatory_investigation",
                                                            "negative", "high")
    assert out.listed == ["688496"] and out.decided_by == "classifier"
    assert (out.holders, out.new_alerts) == (2, 2)
    with c.engine.connect() as conn:
        story = conn.execute(select(risk_stories).where(
            risk_stories.c.story_id == stories[0])).mappings().one()
        tasks = conn.execute(select(risk_tasks.c.customer_id, risk_tasks.c.status)).all()
        alerts = conn.execute(select(risk_alerts.c.customer_id)).scalars().all()
    evidence = json.loads(story["event_evidence_json"])
    assert "立案告知书" in evidence["sentence"]
    assert any(h["phrase"] == "立案告知书" for h in evidence["lexicon"])
    assert story["event_model_version"].startswith(evidence["model_version"])
    assert sorted(tasks) == [("C1", "open"), ("C2", "open")]
    assert sorted(alerts) == ["C1", "C2"]
    # the same story again: nothing new
    (again,) = process_stories(c, "acme", stories)
    assert (again.new_alerts, again.repeats) == (0, 2)


def test_a_denial_raises_nothing(c: Container) -> None:
    hold(c, "acme", [("C1", "688496", 100, "1000.00", "900.00")])
    stories = _take(c, "清越科技澄清:公司未收到中国证监会立案告知书,经营一切正常",
                    "https://news.example.cn/r/2")
    (out,) = process_stories(c, "acme", stories)
    assert out.event_type == "none" and out.polarity in ("neutral", "positive")
    assert out.new_alerts == 0
    with c.engine.connect() as conn:
        assert conn.execute(select(risk_tasks)).first() is None


def test_an_operators_classification_stands(c: Container) -> None:
    hold(c, "acme", [("C1", "688496", 100, "1000.00", "900.00")])
    stories = _take(c, "清越科技公告,公司于近日收到中国证监会出具的《立案告知书》。",
                    "https://news.example.cn/r/3")
    classify_story(c, "acme", stories[0], "none", "neutral", "ops.li")
    (out,) = process_stories(c, "acme", stories)
    assert (out.event_type, out.decided_by, out.new_alerts) == ("none", "operator", 0)


def test_a_storage_only_holder_is_not_alerted(c: Container) -> None:
    """A customer under "storage only" (a data-subject request: his records are kept by law,
    nothing else may use them) holds the security: nobody is asked to contact him."""
    from caifu.adapters.sor.models import restricted_customers

    hold(c, "acme", [("C1", "688496", 100, "1000.00", "900.00"),
                     ("C2", "688496", 50, "500.00", "450.00")])
    with c.engine.begin() as conn:
        conn.execute(restricted_customers.insert().values(
            tenant_id="acme", customer_id="C2", since=dt.datetime(2026, 1, 1),
            request_id="dsr1", legal_basis="证券法: account records kept 20 years"))
    stories = _take(c, "清越科技公告,公司于近日收到中国证监会出具的《立案告知书》。",
                    "https://news.example.cn/r/4")
    (out,) = process_stories(c, "acme", stories)
    assert (out.holders, out.new_alerts) == (2, 1)
    with c.engine.connect() as conn:
        assert conn.execute(select(risk_alerts.c.customer_id)).scalars().all() == ["C1"]
        assert conn.execute(select(risk_tasks.c.customer_id)).scalars().all() == ["C1"]
