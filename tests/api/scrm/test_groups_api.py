"""``GET /v1/groups/{id}/content-plan``: the plan of ``services/scrm/group_content`` over
HTTP for every tenant role, one tenant's group invisible to another, bad queries refused."""

from __future__ import annotations

import httpx
import pytest

from caifu.api.schemas.scrm import GroupContentPlan
from caifu.core.clock import FixedClock
from caifu.services.container import Container
from caifu.services.platform import users
from tests.api.profiles.test_customers import PASSWORD, _token
from tests.integration.scrm.group_world import NOW, seed


@pytest.mark.dialect
def test_every_tenant_role_gets_the_plan_and_no_other_tenants_group(
        client: tuple[httpx.Client, Container]) -> None:
    tc, c = client
    seed(c, branch=False)
    c.clock = FixedClock(NOW)
    for user in ("acme.ops", "acme.admin", "acme.compliance", "acme.bm", "acme.advisor"):
        r = tc.get("/v1/groups/low/content-plan?n=3&k=3&on=2026-10-30",
                   headers=_token(tc, user))
        assert r.status_code == 200, (user, r.text)
        plan = GroupContentPlan.model_validate(r.json())
        assert [i.item_id for i in plan.items] == ["A1", "A2", "A3"]
        assert (plan.max_level, plan.refused["COMPLIANCE"]) == ("R3", 1)
    r = tc.get("/v1/groups/low/content-plan", headers=_token(tc, "root.admin"))
    assert r.status_code == 403
    users.add_user(c, "beta.ops", "ops", PASSWORD, tenant="beta")
    r = tc.get("/v1/groups/low/content-plan", headers=_token(tc, "beta.ops"))
    assert r.status_code == 404 and "no preference group 'low' in tenant 'beta'" in r.text
    r = tc.get("/v1/groups/nope/content-plan", headers=_token(tc, "acme.ops"))
    assert r.status_code == 404 and "no preference group 'nope'" in r.text
    r = tc.get("/v1/groups/low/content-plan?n=0", headers=_token(tc, "acme.ops"))
    assert r.status_code == 422
