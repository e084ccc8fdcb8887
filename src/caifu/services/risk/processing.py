"""Real time: the stories an intake batch founded are processed at once, by whichever channel
took them in.

    CLI ingest / POST /v1/risk/documents / watched folder
        └─► Intake.take (documents and stories committed: nothing processed can lose them)
              └─► after_intake: for each story the batch founded, in order,
                    process_stories (services/risk/events): link → classify → alerts and
                    advisor tasks for every holder (direct positions, funds' top holdings)
                      ok     → processing_error cleared
                      raises → the story keeps its documents; ``processing_error`` and
                               ``processing_failed_at`` say why and when; the other stories
                               go on; ``caifu risk process -t T`` runs it again

Inline, not queued: the API answers once every exposed holder's advisor has a task, so the
receipt carries each story's outcome (event, severity, holders, new alerts) and the caller
knows the alerts exist when it returns. The job queue (``services/platform/jobs``) runs one
job at a time behind builds that take minutes, and the real-time inbox
(``services/ingest/realtime``) appends chat messages and APP events to the lake and
recomputes profiles — neither fits a story whose goal is "a task within seconds".
``process_stories`` is idempotent (a story seen again raises nothing new), so a retry after a
failure, or a story processed twice by two channels, is safe.

A story is *unprocessed* when it was never classified (``classified_at`` null: it arrived
before this path existed, or its processing failed before the classifier ran) or its last
processing failed (``processing_error`` set).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caifu.adapters.sor.repos import risk as repo
from caifu.core.errors import CaifuError
from caifu.core.tracebacks import frames
from caifu.services.container import Container
from caifu.services.risk.events import StoryOutcome, new_story_ids, process_stories

log = logging.getLogger("caifu.risk")
ERROR_CHARS = 1000


@dataclass
class StoryProcessed:
    """One story through link → classify → alerts: its outcome, or why it failed."""

    story_id: str
    title: str
    outcome: StoryOutcome
    error: str | None = None
    seconds: float = 0.0

    def plain(self) -> dict[str, Any]:
        o = self.outcome
        return {"story_id": self.story_id, "title": self.title, "event_type": o.event_type,
                "polarity": o.polarity, "severity": o.severity, "decided_by": o.decided_by,
                "listed": o.listed, "holders": o.holders, "new_alerts": o.new_alerts,
                "repeats": o.repeats, "error": self.error, "seconds": round(self.seconds, 4)}


def process(c: Container, tenant: str, story_ids: Sequence[str]) -> list[StoryProcessed]:
    """Process each story on its own (one failing does not stop the others), record a failure
    on the story and clear it on success."""
    out = []
    for sid in story_ids:
        started = time.perf_counter()
        error = None
        try:
            (outcome,) = process_stories(c, tenant, [sid])
        except CaifuError as exc:
            outcome, error = StoryOutcome(sid), str(exc)[:ERROR_CHARS]
        except Exception as exc:  # a bug or the database away: kept on the story, logged
            outcome = StoryOutcome(sid)
            error = f"internal error ({type(exc).__name__}): {exc}"[:ERROR_CHARS]
            log.error("risk story processing failed", extra={
                "tenant": tenant, "story_id": sid, "error_type": type(exc).__name__,
                "trace": frames(exc.__traceback__)})
        with c.engine.begin() as conn:
            repo.set_processing_error(conn, tenant, sid, error,
                                      c.clock.now() if error else None)
            story = repo.story(conn, tenant, sid)
        out.append(StoryProcessed(sid, story["title"] if story else "", outcome, error,
                                  time.perf_counter() - started))
    return out


def after_intake(c: Container, tenant: str, report: Any) -> list[StoryProcessed]:
    """Process the stories an intake batch (``IntakeReport``) founded."""
    return process(c, tenant, new_story_ids(report))


def unprocessed(c: Container, tenant: str, limit: int = 1000) -> list[str]:
    """Stories never classified or whose last processing failed, earliest first."""
    with c.engine.connect() as conn:
        return repo.unprocessed_stories(conn, tenant, limit)
