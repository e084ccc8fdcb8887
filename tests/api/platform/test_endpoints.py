"""Tags, segments (members scoped per role) and the events endpoint on the scored demo broker."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import CONTRACT_TABLES, event_inbox, tag_assignments
from caifu.api import create_app
from caifu.services.ingest.realtime import inbox_counts
from caifu.services.platform import users
from caifu.services.profiles.build import Build
from caifu.services.profiles.segments import Segments
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET
from tests.serving import serving

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it


@pytest.fixture(scope="module")
def api(scored) -> Iterator[tuple[httpx.Client, object, dict[str, dict[str, str]]]]:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    Segments(c).save("acme", "active_traders", "活跃交易", "trades_90d >= 1")
    Build(c).build("acme")  # sizes the segment
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        advisor = conn.execute(select(t.c.advisor_id).where(t.c.tenant_id == "acme",
                                                            t.c.advisor_id.is_not(None))
                               .limit(1)).scalar_one()
    for user, role, kw in (("api.ops", "ops", {}), ("api.advisor", "advisor",
                                                    {"advisor_id": advisor}),
                           ("api.compliance", "compliance", {})):
        users.add_user(c, user, role, PASSWORD, tenant="acme", **kw)
    users.add_user(c, "api.root", "platform_admin", PASSWORD, tenant=None)
    # the platform router's smoke test: one uvicorn server for the module
    with serving(create_app(Settings(secret_key=SECRET), c), real_socket=True) as http:
        headers = {}
        for user in ("api.ops", "api.advisor", "api.compliance", "api.root"):
            token = http.post("/v1/auth/login", json={"user_id": user, "password": PASSWORD}
                              ).json()["token"]
            headers[user] = {"Authorization": f"Bearer {token}"}
        yield http, c, headers


def _holders(c, ids: set[str] | None = None) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Customers per tag in force at the end of the tenant's today (acme: UTC+8), counted
    here from the rows."""
    today = (c.clock.now() + dt.timedelta(hours=8)).date()
    a = tag_assignments
    with c.engine.connect() as conn:
        rows = conn.execute(select(a.c.customer_id, a.c.tag_id, a.c.gained_at, a.c.expires_at)
                            .where(a.c.tenant_id == "acme")).all()
    out: dict[str, set[str]] = {}
    for cid, tag, gained, expires in rows:
        if (gained + dt.timedelta(hours=8)).date() <= today and (
                expires is None or (expires + dt.timedelta(hours=8)).date() > today) and (
                ids is None or cid in ids):
            out.setdefault(tag, set()).add(cid)
    return {tag: len(held) for tag, held in out.items()}


def test_tags_and_segments_lists(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h = api
    body = http.get("/v1/tags", headers=h["api.ops"]).json()
    by_id = {t["tag_id"]: t for t in body["items"]}
    expected = _holders(c)
    assert by_id["dormant"]["name"] == "沉睡客户" and by_id["dormant"]["customers"] > 0
    assert {t: x["customers"] for t, x in by_id.items() if x["customers"]} == expected
    assert [m["metric"] for m in body["metrics"]] == ["tag_holders"]
    assert len(body["metrics"][0]["definition_hash"]) == 16
    # an advisor: his customers' tags only
    advisor = users.login(c, "api.advisor", PASSWORD)
    assert advisor is not None
    from caifu.services.platform.access import visible_ids

    mine = http.get("/v1/tags", headers=h["api.advisor"]).json()["items"]
    assert {t["tag_id"]: t["customers"] for t in mine if t["customers"]} == \
        _holders(c, visible_ids(c, advisor))
    assert sum(t["customers"] for t in mine) < sum(expected.values())
    # segments: the members on the newest build date
    body = http.get("/v1/segments", headers=h["api.ops"]).json()
    day, members = Segments(c).members("acme", "active_traders")
    assert body["items"][0]["latest"] == {"as_of": day.isoformat(),
                                          "members": members.num_rows}
    assert members.num_rows > 0 and body["metrics"][0]["metric"] == "segment_size"
    ids = set(members["customer_id"].to_pylist()) & (visible_ids(c, advisor) or set())
    mine_s = http.get("/v1/segments", headers=h["api.advisor"]).json()["items"][0]
    assert mine_s["latest"]["members"] == len(ids) < members.num_rows
    assert http.get("/v1/tags", headers=h["api.root"]).status_code == 403


def test_segment_members_are_scoped_and_paged(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h = api
    everyone = http.get("/v1/segments/active_traders/members?limit=1000",
                        headers=h["api.ops"]).json()
    mine = http.get("/v1/segments/active_traders/members?limit=1000",
                    headers=h["api.advisor"]).json()
    assert 0 < mine["total"] < everyone["total"]
    advisor = users.login(c, "api.advisor", PASSWORD)
    assert advisor is not None
    from caifu.services.platform.access import visible_ids

    allowed = visible_ids(c, advisor)
    _, members = Segments(c).members("acme", "active_traders")
    expected = sorted(set(members["customer_id"].to_pylist()) & (allowed or set()))
    assert mine["items"] == expected and mine["total"] == len(expected)  # exactly his share
    assert everyone["total"] == members.num_rows
    page2 = http.get("/v1/segments/active_traders/members?limit=10&offset=10",
                     headers=h["api.ops"]).json()
    assert page2["items"] == everyone["items"][10:20]
    assert http.get("/v1/segments/nope/members", headers=h["api.ops"]).status_code == 404
    assert http.get("/v1/segments/active_traders/members?limit=0",
                    headers=h["api.ops"]).status_code == 422


def test_events_are_taken_or_explained(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h = api
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        cid = conn.execute(select(t.c.customer_id).where(t.c.tenant_id == "acme").limit(1)
                           ).scalar_one()
    now = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(tzinfo=None)
    good = {"event_id": "E-api-1", "customer_id": cid, "event_time": now.isoformat(),
            "event_type": "login", "device": "ios"}
    bad = {"event_id": "E-api-2", "customer_id": cid, "event_time": now.isoformat(),
           "event_type": "teleport"}
    before = inbox_counts(c, "acme")
    r = http.post("/v1/events/app_event", json={"events": [good, bad]}, headers=h["api.ops"])
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["items"][1]["reasons"] and "event_type" in body["items"][1]["reasons"][0]
    after = inbox_counts(c, "acme")
    assert sum(after.values()) == sum(before.values()) + 2  # both kept: nothing dropped
    # the service's own real-time worker applies the good one, no one else is asked to
    seq, status = body["items"][0]["event_seq"], "pending"
    for _ in range(600):
        with c.engine.connect() as conn:
            status = conn.execute(select(event_inbox.c.status).where(
                event_inbox.c.event_seq == seq)).scalar_one()
        if status != "pending":
            break
        time.sleep(0.1)
    assert status == "applied"
    assert http.post("/v1/events/app_event", json={"events": [good]},
                     headers=h["api.advisor"]).status_code == 403
    assert http.post("/v1/events/teleport", json={"events": [good]},
                     headers=h["api.ops"]).status_code == 422
    assert http.post("/v1/events/app_event", json={"events": []},
                     headers=h["api.ops"]).status_code == 422
