"""Preference groups: a group's content plan (issue 16) — counts over its members, no
customer shown, nothing written."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.scrm import GroupContentPlan
from caifu.services.platform import access
from caifu.services.scrm.group_content import content_plan

router = APIRouter()
GroupId = Annotated[str, PathParam(min_length=1, max_length=64)]


@router.get("/v1/groups/{group_id}/content-plan", operation_id="group_content_plan",
            tags=["groups"], response_model=GroupContentPlan,
            dependencies=[Depends(require("groups.content"))])
def get_content_plan(group_id: GroupId, p: CurrentPrincipal, c: ContainerDep,
                     n: Annotated[int, Query(ge=1, le=50)] = 5,
                     k: Annotated[int, Query(ge=1, le=100)] = 10,
                     on: Annotated[dt.date | None, Query(
                         description="plan day; default today in the tenant's time zone")
                     ] = None) -> dict[str, Any]:
    """The next n content items to post in the group's chat, ranked by its members' published
    recommendation lists (each member's top k votes, weighted by place), restricted to what
    may be pushed to the group as a whole: its level policy, validity on the plan day, the
    compliance lexicon, not posted to the group within the resend window. Falls back to
    popularity within the eligible set, and says so. 404 for an unknown group."""
    return dataclasses.asdict(content_plan(c, access.tenant_of(p), group_id, n, k, on))
