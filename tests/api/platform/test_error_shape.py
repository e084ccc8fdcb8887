"""One error shape for every refusal of the real app, and the OpenAPI document says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caifu.api import create_app
from caifu.core.errors import TenantError, WorkspaceError
from caifu.services.container import Container
from caifu.services.platform import users
from caifu.settings import Settings
from tests.api.profiles.test_customers import serving

SECRET = "k3y-for-tests-only-0123456789abcdefghijklmnop"
PASSWORD = "correct horse battery"
SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture
def http(sqlite_workspace: Container) -> Iterator[httpx.Client]:
    users.add_user(sqlite_workspace, "acme.ops", "ops", PASSWORD, tenant="acme")
    app = create_app(Settings(secret_key=SECRET, max_body_bytes=10_000), sqlite_workspace)

    # the handler is the app's; only the raise is staged (no route answers 400 on its own)
    @app.get("/test/tenant-error")
    def tenant_error() -> None:
        raise TenantError("no tenant 'gone' (create it with `caifu tenant create gone`)")

    @app.get("/test/workspace-error")
    def workspace_error() -> None:
        raise WorkspaceError("cannot open the system of record at '/srv/secret/path.db'")

    with serving(app) as client:
        yield client


def _shape(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    assert set(body["error"]) == {"code", "message"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["detail"] and all(isinstance(d["problem"], str) for d in body["detail"]), body
    assert all(set(d) <= {"field", "problem"} for d in body["detail"]), body
    return dict(body)


def test_every_refusal_has_the_one_shape(http: httpx.Client) -> None:
    body = _shape(http.get("/v1/customers/C1"), 401, "unauthenticated")
    assert "Bearer" in body["error"]["message"]
    login = http.post("/v1/auth/login", json={"user_id": "acme.ops", "password": PASSWORD})
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    body = _shape(http.get("/v1/privacy/requests", headers=auth), 403, "forbidden")
    assert "a ops may not" in body["error"]["message"]
    body = _shape(http.get("/v1/customers/NOPE", headers=auth), 404, "not_found")
    assert body["detail"] == [{"problem": "no customer 'NOPE'"}]
    _shape(http.get("/v1/no/such/path"), 404, "not_found")
    body = _shape(http.delete("/v1/auth/login"), 405, "method_not_allowed")
    assert body["error"]["message"] == "Method Not Allowed"
    body = _shape(http.post("/v1/auth/login", content=b"x" * 10_001,
                            headers={"Content-Type": "application/json"}),
                  413, "payload_too_large")
    assert body["detail"] == [{"field": "body", "problem": "larger than 10,000 bytes"}]
    body = _shape(http.post("/v1/auth/login", json={"password": "x"}), 422, "invalid")
    assert body["detail"] == [{"field": "body.user_id", "problem": "Field required"}]
    assert body["error"]["message"] == "body.user_id: Field required"
    body = _shape(http.get("/v1/customers/C1%00", headers=auth), 422, "invalid")
    assert body["detail"] == [{"field": "path", "problem": "contains a NUL character"}]
    body = _shape(http.get("/test/tenant-error"), 400, "tenant")
    assert body["error"]["message"].startswith("no tenant 'gone'")
    assert body["detail"] == [{"problem": body["error"]["message"]}]


def test_a_500_error_keeps_server_paths_out_of_the_answer(http: httpx.Client) -> None:
    body = _shape(http.get("/test/workspace-error"), 500, "workspace")
    assert "/srv/secret" not in str(body) and "service log" in body["error"]["message"]


def test_openapi_declares_the_shape_for_every_refusal() -> None:
    schema = create_app(Settings(secret_key=SECRET)).openapi()
    declared = schema["components"]["schemas"]["ErrorResponse"]
    assert set(declared["required"]) == {"error", "detail"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    operations = [(path, method, op) for path, ops in schema["paths"].items()
                  for method, op in ops.items()]
    assert len(operations) > 20
    for path, method, op in operations:
        for status in ("400", "401", "403", "404", "413", "422", "429"):
            content = op["responses"][status]["content"]["application/json"]
            assert content["schema"] == SCHEMA, (path, method, status)
