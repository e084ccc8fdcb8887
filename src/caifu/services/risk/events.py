"""A story's event by the classifier, and the whole path a new story takes.

    classify_stories(c, tenant, story_ids)   founding document's title + body → the event
                                             classifier (caifu.risk.events) → event_type,
                                             polarity, severity, evidence, model version
    process_stories(c, tenant, story_ids)    link → classify → alerts and tasks for every
                                             holder when the event is a negative risk

An operator's classification (``caifu risk classify-story``, audited) is never overwritten by
the classifier. ``process_stories`` is what intake runs for the stories a batch created, so a
story that arrives reaches every exposed holder's advisor as a task without anyone asking.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from caifu.adapters.sor.repos import risk as repo
from caifu.risk.events import EventClassifier, RiskEvent, default_classifier
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant


@dataclass
class StoryOutcome:
    story_id: str
    event_type: str | None = None
    polarity: str | None = None
    severity: str | None = None
    decided_by: str = ""  # classifier | operator (kept)
    listed: list[str] = field(default_factory=list)
    new_alerts: int = 0
    repeats: int = 0
    holders: int = 0

    def plain(self) -> dict[str, Any]:
        return dict(self.__dict__)


def classify_stories(c: Container, tenant: str, story_ids: Sequence[str],
                     classifier: EventClassifier | None = None) -> dict[str, RiskEvent | None]:
    """The classifier's event for each story (None: an operator's classification stands)."""
    get_tenant(c, tenant)
    using = classifier or default_classifier()
    texts, todo = [], []
    with c.engine.connect() as conn:
        for sid in story_ids:
            story = repo.story(conn, tenant, sid)
            if story is None or str(story["classified_by"] or "").startswith("operator:"):
                continue
            docs = repo.story_documents(conn, tenant, sid)
            first = next((d for d in docs if d["document_id"] == story["first_document_id"]),
                         docs[0])
            texts.append(f"{first['title']}\n{first['body']}" if first["body"]
                         else first["title"])
            todo.append(sid)
    events = using.classify(texts)
    now = c.clock.now()
    version = f"{using.version}+{using.lexicon.digest}"
    with c.engine.begin() as conn:
        for sid, e in zip(todo, events, strict=True):
            repo.set_classification(conn, tenant, sid, e.event_type, e.polarity, "classifier",
                                    now, e.severity,
                                    json.dumps(e.evidence(), ensure_ascii=False), version)
    out: dict[str, RiskEvent | None] = dict.fromkeys(story_ids)
    out.update(zip(todo, events, strict=True))
    return out


def process_stories(c: Container, tenant: str, story_ids: Sequence[str]
                    ) -> list[StoryOutcome]:
    """Link, classify and (for a negative risk naming a listed company) raise the alerts and
    tasks of each story, in order. Idempotent: a story seen again raises nothing new."""
    from caifu.services.risk.exposure import raise_alerts
    from caifu.services.risk.linking import link_story

    outcomes = []
    for sid in story_ids:
        companies = link_story(c, tenant, sid)
        outcomes.append(StoryOutcome(sid, listed=sorted(
            {m["code"] for m in companies if m["listed"] and m["code"]})))
    classify_stories(c, tenant, story_ids)
    with c.engine.connect() as conn:
        stories = {sid: repo.story(conn, tenant, sid) for sid in story_ids}
    for o in outcomes:
        s = stories[o.story_id] or {}
        o.event_type, o.polarity, o.severity = s.get("event_type"), s.get("polarity"), \
            s.get("severity")
        o.decided_by = "operator" if str(s.get("classified_by") or "").startswith(
            "operator:") else "classifier"
        if o.event_type not in (None, "none") and o.polarity == "negative" and o.listed:
            report = raise_alerts(c, tenant, o.story_id)
            o.new_alerts, o.repeats, o.holders = report.new_alerts, report.repeats, \
                report.holders
    return outcomes


def new_story_ids(report: Any) -> list[str]:
    """The stories an intake batch (``IntakeReport``) founded, in the order it took them."""
    return [str(d["story_id"]) for d in report.documents if d["fold"] == "first"]
