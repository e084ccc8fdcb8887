"""The service's bounds, each found by an outside probe: a streamed body is counted, not
trusted to declare its length; credentials and request ids are plain ASCII or refused;
every integer query parameter has a maximum; sign-in failures are throttled."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from caifu.api import create_app
from caifu.services.container import Container
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET, _seed, _token, serving


def chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    """A body with no Content-Length: httpx sends it chunked."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"{" * n


def test_a_chunked_body_over_the_limit_is_413_without_signing_in(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    r = http.post("/v1/auth/login", content=chunks(200_000),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["detail"][0] == {"field": "body", "problem": "larger than 10,000 bytes"}
    # under the limit a chunked body is read as usual
    body = b'{"user_id": "acme.ops", "password": "%s"}' % PASSWORD.encode()
    r = http.post("/v1/auth/login", content=iter([body[:10], body[10:]]),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_a_non_ascii_bearer_token_is_401(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    for raw in (b"Bearer ct_a.\xe9", b"Bearer cf_\xe9\xe9_x", b"Bearer \xff"):
        r = http.get("/v1/customers/C1", headers={"Authorization": raw})
        assert r.status_code == 401, (raw, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"


def test_every_integer_query_parameter_has_a_maximum(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    doc = http.get("/openapi.json").json()
    unbounded = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                kinds = [schema, *schema.get("anyOf", [])]
                if param["in"] == "query" and any(k.get("type") == "integer" for k in kinds) \
                        and not any("maximum" in k for k in kinds):
                    unbounded.append(f"{method.upper()} {path} ?{param['name']}")
    assert unbounded == []
    comp = _token(http, "acme.compliance")
    r = http.get("/v1/privacy/requests", params={"offset": "9223372036854775808"},
                 headers=comp)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.offset"


def test_repeated_wrong_passwords_are_throttled_per_user_and_per_address(
        workspace: Container) -> None:
    _seed(workspace)
    settings = Settings(secret_key=SECRET, login_failures_per_user=3,
                        login_failures_per_address=10, login_failure_window_seconds=600)
    with serving(create_app(settings, workspace)) as http:
        def login(user: str, password: str) -> httpx.Response:
            return http.post("/v1/auth/login", json={"user_id": user, "password": password})

        assert [login("acme.ops", "wrong").status_code for _ in range(3)] == [401] * 3
        r = login("acme.ops", PASSWORD)  # even the right password, until the window passes
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 600
        assert "too many failed sign-ins" in r.json()["detail"][0]["problem"]
        # another user (from the same address, under its own limit) is not held back by him
        other = login("acme.admin", "wrong")
        assert other.status_code == 401
        # a success resets the count of its user and address
        assert login("acme.admin", PASSWORD).status_code == 200
        assert [login("acme.admin", "wrong").status_code for _ in range(2)] == [401, 401]
        assert login("acme.admin", PASSWORD).status_code == 200
        # the address's failures are not reset by a success: 6 so far, 4 more stop everyone
        assert [login("acme.bm", "wrong").status_code for _ in range(2)] == [401, 401]
        assert [login("acme.advisor", "wrong").status_code for _ in range(2)] == [401, 401]
        assert login("acme.compliance", PASSWORD).status_code == 429


def test_the_address_is_throttled_across_user_ids(workspace: Container) -> None:
    """Guessing through many user ids from one address: the address's count stops it."""
    _seed(workspace)
    settings = Settings(secret_key=SECRET, login_failures_per_user=3,
                        login_failures_per_address=5)
    with serving(create_app(settings, workspace)) as http:
        codes = [http.post("/v1/auth/login", json={"user_id": f"guess{i}", "password": "x"}
                           ).status_code for i in range(25)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}


@pytest.mark.parametrize("given,kept", [
    ("req-abc-12345", True), ("abcdefgh\n", False), ("a" * 65, False), ("bad id;x", False),
    ("ünïcödé-id", False),
])
def test_a_request_id_is_kept_only_when_it_is_a_plain_token(given: str, kept: bool) -> None:
    """Checked at the ASGI level: a value an HTTP client could not even send (a trailing
    newline passed ``re.match(...$)``) must not reach the log or the audit trail."""
    import asyncio

    from caifu.api.logs import AccessLog
    from caifu.services.compliance import audit

    seen: dict[str, str | None] = {}

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen["audit"] = audit.current_request.get()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []  # type: ignore[type-arg]

    async def send(message) -> None:  # type: ignore[no-untyped-def]
        sent.append(message)

    async def receive() -> dict:  # type: ignore[type-arg]
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/x",
             "headers": [(b"x-request-id", given.encode("utf-8"))]}
    asyncio.run(AccessLog(app)(scope, receive, send))
    echoed = dict(sent[0]["headers"])[b"x-request-id"].decode()
    assert echoed == seen["audit"]
    if kept:
        assert echoed == given
    else:
        assert echoed != given and len(echoed) == 32 and echoed.isalnum()
