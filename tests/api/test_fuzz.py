"""No input makes the service fail: generated and malformed requests against a live server
(SQLite and PostgreSQL) get a 2xx or a 4xx with the error shape — never a 5xx."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caifu.api import create_app
from caifu.services.container import Container
from caifu.settings import Settings
from tests.api.test_customers import PASSWORD, SECRET, _seed, serving

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
    with serving(create_app(Settings(secret_key=SECRET, max_body_bytes=10_000),
                            workspace)) as http:
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
