"""Every JSON answer of the API has a named shape in the OpenAPI document — a component
with its properties, never a bare ``{}`` — and the one route that encodes its own JSON
(the customer 360) sends what its documented shape says."""

from __future__ import annotations

from typing import Any

from caifu.api import create_app
from caifu.api.schemas.profiles import CustomerView
from caifu.settings import Settings
from tests.api.profiles.test_customers import SECRET, _token


def _spec() -> dict[str, Any]:
    return create_app(Settings(secret_key=SECRET)).openapi()


def _unnamed(schema: dict[str, Any], components: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a named shape with properties, or None when it is."""
    ref = schema.get("$ref")
    if ref is None:
        return f"not a named schema: {schema}"
    component = components[ref.rsplit("/", 1)[1]]
    if component.get("type") != "object" or not component.get("properties"):
        return f"{ref} has no properties"
    return None


def test_every_json_answer_names_its_schema() -> None:
    spec = _spec()
    components = spec["components"]["schemas"]
    problems, answers = [], 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                content = response.get("content", {})
                if not status.startswith("2") or "application/json" not in content:
                    continue
                answers += 1
                why = _unnamed(content["application/json"].get("schema", {}), components)
                if why:
                    problems.append(f"{method.upper()} {path} {status}: {why}")
    assert problems == []
    assert answers >= 30  # every JSON route of the API, not a corner of it


def test_the_detector_refuses_a_bare_object() -> None:
    components = {"Named": {"type": "object", "properties": {"a": {"type": "string"}}},
                  "Empty": {"type": "object", "properties": {}}}
    assert _unnamed({"$ref": "#/components/schemas/Named"}, components) is None
    assert _unnamed({}, components) == "not a named schema: {}"
    assert _unnamed({"type": "object", "additionalProperties": True}, components)
    assert _unnamed({"$ref": "#/components/schemas/Empty"}, components)


def test_the_customer_360_has_its_documented_shape(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    r = http.get("/v1/customers/C1", headers=_token(http, "acme.ops"))
    assert r.status_code == 200, r.text
    view = CustomerView.model_validate(r.json())  # extra keys forbidden: all are declared
    assert view.customer["customer_id"] == "C1"
    assert set(r.json()) == set(CustomerView.model_fields)
