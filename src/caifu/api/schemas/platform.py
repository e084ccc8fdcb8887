"""Jobs: what ``POST /v1/jobs``, ``GET /v1/jobs[/{id}]`` and an upload answer."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from caifu.api.schemas.common import PageOf, Schema


class JobPublic(Schema):
    job_id: str
    kind: str
    status: str = Field(description="queued | running | succeeded | failed")
    error: str | None = Field(description="why it failed, for the user")
    submitted_by: str
    submitted_at: str = Field(description="UTC, ISO 8601 with Z")
    started_at: str | None
    finished_at: str | None
    params: dict[str, Any] | None
    result: dict[str, Any] | None = Field(description="what the job did, once succeeded")


class JobPage(PageOf):
    items: list[JobPublic]
