"""Tenant isolation over every endpoint, generated from the OpenAPI document.

For each operation the service publishes and each of acme's roles, the test calls it with
the ids of tenant beta's objects and with ids that exist nowhere. Nothing of beta's may
appear in any answer, and the two answers must be the same — an id of another tenant is
indistinguishable from a missing one (404, never 403). A new endpoint is covered the moment
it is added; a new path parameter fails the test until it gets an id here. Runs on SQLite
and on PostgreSQL (where row-level security is the second wall).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES, ingest_log, ingest_quarantine
from caifu.adapters.sor.repos import quality as quality_repo
from caifu.adapters.sor.repos.profiles import save_segment
from caifu.adapters.sor.risk_models import (
    risk_alert_evidence,
    risk_alert_messages,
    risk_alerts,
    risk_tasks,
)
from caifu.adapters.sor.scrm_models import (
    campaign_decisions,
    campaign_runs,
    chat_compliance_flags,
    preference_groups,
)
from caifu.services.container import Container
from caifu.services.platform.jobs import Jobs
from caifu.services.risk.intake import Intake
from tests.api.profiles.test_customers import _token
from tests.factories import BRANCHES

pytestmark = pytest.mark.dialect  # row-level security and tenant isolation

USERS = ("acme.ops", "acme.admin", "acme.compliance", "acme.bm", "acme.advisor", "root.admin")
# beta's data that only a leak could put in an answer to acme
MARKERS = ("赵一", "EB112345", "丙丁专属客群", "beta.ops", "beta_source.csv", "beta")
SKIP = {"healthz", "readyz", "login"}  # no tenant data, no credentials


def _seed_beta(c: Container) -> dict[str, str]:
    now = dt.datetime(2026, 11, 1, 8)
    with c.engine.begin() as conn:
        save_segment(conn, "beta", "vip_x1", "丙丁专属客群", "aum >= 1", now)
        conn.execute(insert(ingest_log).values(
            tenant_id="beta", batch_id="bbatch0001", table_name="customers",
            source_path="/srv/beta_source.csv", source_sha256="0" * 64, source_bytes=10,
            status="committed", rows_in=1, loaded=0, inserted=0, updated=0, quarantined=1,
            duplicates=0, reasons_json="{}", timings_json="{}", started_at=now))
        conn.execute(insert(ingest_quarantine).values(
            tenant_id="beta", batch_id="bbatch0001", row_number=1, table_name="customers",
            source_path="/srv/beta_source.csv", line=2, reasons="id_number:ID_CHECKSUM",
            raw_json=json.dumps({"name": "赵一", "id_number": "EB112345"},
                                ensure_ascii=False)))
        # its data quality: a profile and an alert of the batch above
        quality_repo.add_profile(conn, "beta", "bbatch0001", "customers", rows=0,
                                 nulls={"name": 0}, date_column="opened_on", oldest=None,
                                 newest=None, now=now)
        quality_repo.apply(conn, "beta", "customers", "quarantine_rate", "", breached=True,
                           observed=1.0, threshold=0.05, batch_id="bbatch0001",
                           detail="赵一 beta_source.csv", now=now, by="bbatch0001")
        conn.execute(insert(chat_compliance_flags).values(
            tenant_id="beta", flag_id="bflag0001", msg_id="bmsg1", msg_time=now,
            advisor_id="TG00001", external_userid="wmB1", customer_id="B1", sender="advisor",
            category="guaranteed_return", phrase="保本", action="review",
            excerpt="赵一 这只保本", lexicon_version="2026.1", status="open", created_at=now))
        conn.execute(insert(CONTRACT_TABLES["campaigns"]).values(
            tenant_id="beta", campaign_id="BCAMP1", name="丙丁专属客群活动",
            channel="mass_send", goal="funded", starts_on=now.date()))
        conn.execute(insert(campaign_runs).values(
            tenant_id="beta", campaign_id="BCAMP1", status="gated", attribution_days=14,
            rule_version="x", created_by="beta.ops", created_at=now))
        conn.execute(insert(campaign_decisions).values(
            tenant_id="beta", campaign_id="BCAMP1", customer_id="B1", outcome="send",
            rule="OK", reasons_json="[]", rule_version="x", decided_at=now))
        conn.execute(insert(risk_alert_evidence).values(
            tenant_id="beta", evidence_hash="e" * 32, evidence_json="{}"))
        conn.execute(insert(risk_alert_messages).values(
            tenant_id="beta", message_hash="m" * 32, message="赵一", message_may_send=True,
            message_notes=""))
        conn.execute(insert(risk_alerts).values(
            tenant_id="beta", alert_id="ra" + "b" * 30, story_id="sbeta", security_code="600519",
            company_name="贵州茅台", event_type="regulatory_investigation", event_at=now,
            customer_id="B1", advisor_id="TG00001", via="position", snapshot_date=now.date(),
            quantity=100, market_value=1, cost=1, unrealised_pnl=0, evidence_hash="e" * 32,
            message_hash="m" * 32, repeat_story_ids_json="[]", created_at=now))
        conn.execute(insert(risk_tasks).values(
            tenant_id="beta", task_id="rt" + "b" * 30, alert_id="ra" + "b" * 30,
            customer_id="B1", advisor_id="TG00001", status="open", created_at=now,
            updated_at=now, updated_by="beta.ops"))
        conn.execute(insert(preference_groups).values(
            tenant_id="beta", group_id="bgroup1", name="丙丁专属客群交流群",
            rule="tag:interest_chinext", level_policy="lowest_member", created_at=now,
            updated_at=now))
    job = Jobs(c).submit("beta", "build", {}, "beta.ops")
    story = Intake(c).take_body("beta", json.dumps({
        "title": "丙丁专属客群 risk story", "url": "https://beta.example.com/1",
        "published": "2025-10-30T09:00:00+08:00", "body": "beta"}).encode())
    return {"customer_id": "B1", "segment_id": "vip_x1", "job_id": job["job_id"],
            "batch": "bbatch0001", "flag_id": "bflag0001", "campaign_id": "BCAMP1",
            "story_id": story.documents[0]["story_id"], "task_id": "rt" + "b" * 30,
            "group_id": "bgroup1"}


NOWHERE = {"customer_id": "NX404", "segment_id": "no_such_seg", "job_id": "0" * 16,
           "batch": "nobatch99", "flag_id": "noflag99", "campaign_id": "NOCAMP99",
           "story_id": "snostory404", "task_id": "rt" + "0" * 30, "group_id": "nogroup99"}
FIXED = {"kind": "chat_message", "by": "channel", "name": "aum"}  # path parameters that are not
# objects (a metric is the same definition in every tenant)


def _request(http: httpx.Client, method: str, path: str, op: dict[str, Any],
             ids: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    params: dict[str, str] = {}
    for prm in op.get("parameters", []):
        name, where = prm["name"], prm["in"]
        if where == "path":
            value = ids.get(name) or FIXED.get(name)
            assert value, f"{op['operationId']}: give the isolation test an id for {name!r}"
            path = path.replace("{" + name + "}", value)
        elif where == "query" and name in ("customer_id", "batch"):
            params[name] = ids[name]  # filters by another tenant's id: must find nothing
        elif where == "query" and prm.get("required"):
            params[name] = {"filename": "branches.csv"}.get(name, "x")
    h = {**headers, "X-Caifu-Reason": "isolation%20test"}
    if op["operationId"] == "upload_file":
        return http.post(path, params=params, content=BRANCHES.encode(), headers=h)
    body: Any = None
    if op["operationId"] == "push_events":
        body = {"events": [{"customer_id": ids["customer_id"], "event_type": "login",
                            "occurred_at": "2026-11-01T09:00:00+08:00"}]}
    elif op["operationId"] == "submit_job":
        body = {"kind": "lifecycle"}
    elif op["operationId"] == "decide_chat_flag":
        body = {"decision": "dismissed"}
    elif op["operationId"] == "set_risk_task_status":
        body = {"status": "acknowledged"}
    elif op["operationId"] == "classify_risk_story":
        body = {"event_type": "regulatory_investigation", "polarity": "negative"}
    elif method == "post" and "requestBody" in op:
        body = {}
    return http.request(method.upper(), path, params=params, json=body, headers=h)


def _comparable(r: httpx.Response, ids: dict[str, str]) -> tuple[int, str]:
    text = r.text
    for key, value in ids.items():
        text = text.replace(value, f"<{key}>")
    return r.status_code, text


@pytest.mark.slow
def test_no_endpoint_tells_another_tenants_objects_from_missing_ones(client) -> None:  # type: ignore[no-untyped-def]
    http, c = client
    beta = _seed_beta(c)
    spec = http.get("/openapi.json").json()
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()
           if op["operationId"] not in SKIP]
    assert len(ops) >= 15  # the matrix covers the API, not a corner of it
    tried = 0
    for user in USERS:
        headers = _token(http, user)
        for method, path, op in ops:
            other = _request(http, method, path, op, beta, headers)
            missing = _request(http, method, path, op, NOWHERE, headers)
            where = (user, op["operationId"], other.status_code, other.text[:300])
            assert other.status_code < 500, where
            for marker in MARKERS:
                assert marker not in other.text, (marker, *where)
            names = {prm["name"] for prm in op.get("parameters", [])
                     if prm["in"] == "path" or prm["name"] in ("customer_id", "batch")}
            if method == "get" and names - set(FIXED):
                assert _comparable(other, beta) == _comparable(missing, NOWHERE), where
            else:  # a write creates its own ids and times, a list may move between calls
                assert other.status_code == missing.status_code, where
            assert other.status_code != 403 or any(
                "may not" in d["problem"] or "sees no" in d["problem"]
                for d in other.json()["detail"]), where  # a 403 is about the role, never the id
            tried += 1
    assert tried == len(USERS) * len(ops)


def test_on_postgresql_a_service_that_forgets_its_tenant_filter_still_leaks_nothing(
        client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Defence in depth: the same bug leaks on SQLite (service filters are the only wall
    there) and is stopped by row-level security on PostgreSQL."""
    from sqlalchemy import select

    from caifu.adapters.sor.models import jobs as jobs_table
    from caifu.core.errors import NotFoundError
    from caifu.services.platform.jobs import _row

    http, c = client
    beta = _seed_beta(c)

    def careless_get(self: Jobs, tenant: str, job_id: str) -> dict[str, Any]:
        with self.c.engine.connect() as conn:  # the bug: no tenant in the WHERE
            row = conn.execute(select(jobs_table).where(jobs_table.c.job_id == job_id)).first()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return _row(row)  # the whole job, as the route's response model wants it

    monkeypatch.setattr(Jobs, "get", careless_get)
    r = http.get(f"/v1/jobs/{beta['job_id']}", headers=_token(http, "acme.ops"))
    if c.engine.dialect.name == "postgresql":
        assert r.status_code == 404, r.text
    else:
        assert r.status_code == 200 and r.json()["submitted_by"] == "beta.ops"


@pytest.mark.slow
def test_no_console_page_shows_another_tenants_data(client) -> None:  # type: ignore[no-untyped-def]
    """The console's routes, enumerated from the app like the operations above: each of acme's
    users, signed in (the session cookie), gets nothing of beta's from any of them — a page,
    a cut of a metric by every dimension that names people or places, a write without its
    CSRF token — and no 500."""
    from caifu.api.app import create_app
    from caifu.settings import Settings
    from tests.api.profiles.test_customers import SECRET
    from tests.unit.console.test_console_routes import console_routes

    http, c = client
    _seed_beta(c)
    routes = console_routes(create_app(Settings(secret_key=SECRET)))
    assert len(routes) >= 8
    cuts = [{}, {"by": "branch"}, {"by": "advisor"}, {"by": "channel"}, {"to": "2026-11-01"}]
    tried = 0
    for user in USERS:
        token = _token(http, user)["Authorization"].removeprefix("Bearer ")
        cookie = {"Cookie": f"caifu_console={token}"}
        for method, path, _ in routes:
            url = path.replace("{name}", FIXED["name"])
            for params in cuts if "{name}" in path and "static" not in path else [{}]:
                r = http.request(method, url, params=params, headers=cookie,
                                 data={"user_id": "acme.nobody", "password": "x"}
                                 if method == "POST" else None)
                where = (user, method, url, params, r.status_code, r.text[:300])
                assert r.status_code < 500, where
                for marker in MARKERS:
                    assert marker not in r.text, (marker, *where)
                if r.status_code == 403:  # about the role or the missing token, never data
                    assert any(w in r.text for w in ("may not", "sees no", "tenant-wide",
                                                     "安全令牌", "登录表单已过期")), where
                tried += 1
    assert tried >= len(USERS) * (len(routes) + 4)
