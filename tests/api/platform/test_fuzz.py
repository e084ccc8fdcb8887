"""No input makes the service fail: generated and malformed requests against a live server
(SQLite and PostgreSQL) get a 2xx or a 4xx with the error shape — never a 5xx."""

from __future__ import annotations

import itertools
import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from caifu.api import create_app
from caifu.services.container import Container
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET, _seed
from tests.serving import serving

pytestmark = pytest.mark.dialect  # PostgreSQL refuses NUL characters and over-long strings that SQLite stores

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=4),
    max_leaves=10)
# printable ASCII without edge spaces: what an HTTP client can send at all
HEADER = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ok(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text)
    if r.status_code >= 400:
        body = r.json()
        assert isinstance(body["detail"], list) and all("problem" in d for d in body["detail"])


def test_no_input_gives_a_server_error(workspace: Container) -> None:
    _seed(workspace)
    with serving(create_app(Settings(secret_key=SECRET, max_body_bytes=10_000,
                                     session_quota_per_minute=1_000_000), workspace)) as http:
        token = http.post("/v1/auth/login", json={"user_id": "acme.compliance",
                                                  "password": PASSWORD}).json()["token"]

        @FUZZ
        @given(body=JSON, raw=st.binary(max_size=300), use_raw=st.booleans(),
               content_type=st.sampled_from(["application/json", "text/plain", "", "x/y"]))
        def login(body: object, raw: bytes, use_raw: bool, content_type: str) -> None:
            data = raw if use_raw else json.dumps(body).encode()
            _ok(http.post("/v1/auth/login", content=data,
                          headers={"Content-Type": content_type} if content_type else {}))

        @FUZZ
        @given(cid=st.text(max_size=50), unmask=st.text(max_size=8), reason=HEADER,
               auth=st.one_of(st.just(f"Bearer {token}"), HEADER))
        def customer(cid: str, unmask: str, reason: str, auth: str) -> None:
            path = "/v1/customers/" + quote(cid, safe="")
            _ok(http.get(path, params={"unmask": unmask},
                         headers={"Authorization": auth, "X-Caifu-Reason": reason}))

        login()
        customer()


# every operation the service publishes, positive and negative cases from its own schema
# derandomized: the same cases every run, so a failure is a change in the code, never luck
SCHEMA_FUZZ = settings(max_examples=15, deadline=None, database=None, derandomize=True,
                       suppress_health_check=list(HealthCheck))
NO_CREDENTIALS = {"login", "healthz", "readyz"}


@pytest.mark.slow
def test_every_operation_in_the_openapi_document_survives_generated_requests(
        workspace: Container) -> None:
    """schemathesis turns each operation of /openapi.json into valid and invalid requests
    (paths, queries, headers, bodies); each is sent over HTTP as the tenant admin (who may
    write most) and as compliance (who may unmask and erase), and must get a 2xx or a 4xx
    in the error shape."""
    from schemathesis import GenerationMode, openapi

    _seed(workspace)
    settings_ = Settings(secret_key=SECRET, max_body_bytes=10_000, max_upload_bytes=10_000,
                         run_jobs=False, session_quota_per_minute=1_000_000)
    # schemathesis loads the document and sends its cases over HTTP itself: a real socket
    with serving(create_app(settings_, workspace), real_socket=True) as http:
        base = str(http.base_url).rstrip("/")
        tokens = [http.post("/v1/auth/login", json={"user_id": user, "password": PASSWORD}
                            ).json()["token"] for user in ("acme.admin", "acme.compliance")]
        schema = openapi.from_url(f"{base}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 15
        sent = 0
        for op, token, mode in itertools.product(
                operations, tokens, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
            auth = {"Authorization": f"Bearer {token}", "X-Caifu-Reason": "fuzz"}

            @SCHEMA_FUZZ
            @given(case=op.as_strategy(mode))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                nonlocal sent
                headers = {**auth, **(case.headers or {})}  # noqa: B023 (run right here)
                r = case.call(base_url=base, headers=headers, timeout=30)
                sent += 1
                assert r.status_code < 500, (case.method, case.formatted_path,
                                             r.status_code, r.text[:300])
                if r.status_code >= 400:
                    detail = r.json()["detail"]
                    assert isinstance(detail, list) and all("problem" in d for d in detail)

            try:
                run()
            except Unsatisfiable:
                # nothing to make invalid (no parameters, no body): positive cases only
                assert mode is GenerationMode.NEGATIVE, op.label
        assert sent >= len(operations) * 2 * 12


def test_nul_characters_are_refused_everywhere(workspace: Container) -> None:
    """PostgreSQL text cannot hold NUL: found by the schema fuzzing as a 500 at sign-in; each
    way in now refuses it with a 4xx naming the field, or rejects the event with a reason."""
    _seed(workspace)
    with serving(create_app(Settings(secret_key=SECRET), workspace)) as http:
        token = http.post("/v1/auth/login", json={"user_id": "acme.compliance",
                                                  "password": PASSWORD}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = http.post("/v1/auth/login", json={"user_id": "acme\u0000ops", "password": "x"})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body.user_id"
        r = http.get("/v1/customers/C1%00", headers=auth)
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "path"
        r = http.get("/v1/customers", params={"name": "王\u0000"}, headers=auth)
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query"
        r = http.get("/v1/customers/C1", params={"unmask": "true"},
                     headers={**auth, "X-Caifu-Reason": "why%00not"})
        assert r.status_code == 422 and "control characters" in r.text
        ops = {"Authorization": "Bearer " + http.post(
            "/v1/auth/login", json={"user_id": "acme.ops", "password": PASSWORD}
        ).json()["token"]}
        r = http.post("/v1/events/app_event", headers=ops, json={"events": [{
            "event_id": "E\u0000", "customer_id": "C1", "event_type": "login",
            "event_time": "2026-10-30T10:00:00+08:00"}]})
        assert r.status_code == 202, r.text
        assert r.json()["items"][0]["reasons"] == ["event_id:NUL_CHARACTER"]


def test_a_lone_surrogate_in_an_event_is_a_rejection_kept_with_its_reason(
        workspace: Container) -> None:
    """Found by an outside probe: JSON ``"\\ud800"`` decodes to a lone surrogate, no UTF-8
    text can hold it, and storing the event gave a 500. Now the event is stored as rejected
    with the field named, its payload kept as the same JSON (the escape as text)."""
    from sqlalchemy import select

    from caifu.adapters.sor.models import event_inbox

    _seed(workspace)
    with serving(create_app(Settings(secret_key=SECRET, run_events=False), workspace)) as http:
        ops = {"Authorization": "Bearer " + http.post(
            "/v1/auth/login", json={"user_id": "acme.ops", "password": PASSWORD}
        ).json()["token"], "Content-Type": "application/json"}
        body = (b'{"events": [{"event_id": "E1", "customer_id": "C1", "event_type": "login",'
                b' "event_time": "2026-10-30T10:00:00+08:00", "device": "ios\\ud800"},'
                b' {"event_id": "E2", "customer_id": "C1", "event_type": "login",'
                b' "event_time": "2026-10-30T10:00:00+08:00"}]}')
        r = http.post("/v1/events/app_event", headers=ops, content=body)
        assert r.status_code == 202, r.text
        items = r.json()["items"]
        assert [i["status"] for i in items] == ["rejected", "pending"]
        assert items[0]["reasons"] == ["device:INVALID_UNICODE(lone surrogate)"]
        with workspace.engine.connect() as conn:
            row = conn.execute(select(event_inbox).where(
                event_inbox.c.event_seq == items[0]["event_seq"])).one()
        assert row.status == "rejected"
        assert json.loads(row.payload_json)["device"] == "ios\ud800"  # the same JSON
