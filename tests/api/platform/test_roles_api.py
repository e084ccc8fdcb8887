"""The action table over HTTP: every operation of the OpenAPI document declares one action
of ``core/roles``, and for each of the six roles and each operation the service answers 403
exactly when the table says the role may not — with the message naming who may. Runs on
SQLite and PostgreSQL, with one signed-in user per role."""

from __future__ import annotations

from fastapi.routing import APIRoute

from caifu.api.app import ROUTERS
from caifu.api.deps import Require
from caifu.core import roles
from tests.api.platform.test_isolation import NOWHERE, SKIP, _request
from tests.api.profiles.test_customers import _token

USERS = {"root.admin": "platform_admin", "acme.admin": "tenant_admin", "acme.ops": "ops",
         "acme.bm": "branch_manager", "acme.advisor": "advisor",
         "acme.compliance": "compliance"}


def route_actions() -> dict[str, list[str]]:
    """operation id → the actions its ``require`` dependencies name."""
    out: dict[str, list[str]] = {}
    for module in ROUTERS:
        for route in module.router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                out[route.operation_id or route.name] = [
                    d.dependency.action for d in route.dependencies
                    if isinstance(d.dependency, Require)]
    return out


def test_every_operation_declares_exactly_one_known_action(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    spec = http.get("/openapi.json").json()
    ops = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    actions = route_actions()
    assert ops - set(actions) == set(), "a router the test does not know: add it to ROUTERS"
    for op in sorted(ops - SKIP):
        assert len(actions[op]) == 1, (op, actions[op])
        assert actions[op][0] in roles.POLICY, op
    assert all(actions[op] == [] for op in SKIP)  # health and sign-in: no caller yet


def test_each_role_is_refused_exactly_where_the_table_says(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    spec = http.get("/openapi.json").json()
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()
           if op["operationId"] not in SKIP]
    actions = route_actions()
    refused: dict[str, set[str]] = {}
    for user, role in USERS.items():
        headers = _token(http, user)
        for method, path, op in ops:
            [action] = actions[op["operationId"]]
            r = _request(http, method, path, op, NOWHERE, headers)
            where = (role, op["operationId"], r.status_code, r.text[:200])
            if roles.may(role, action):
                assert r.status_code != 403, where
                assert r.status_code < 500, where
            else:
                assert r.status_code == 403, where
                assert r.json()["detail"][0]["problem"] == (
                    f"a {role} may not {roles.POLICY[action].doing}; roles: "
                    + ", ".join(roles.allowed(action))), where
                refused.setdefault(role, set()).add(op["operationId"])
    # the matrix is not vacuous: the platform admin is refused all but the customer 360
    # (out of his empty scope: 404), the callback refusals no tenant owns and the metrics
    # (every tenant's); an advisor the tenant-wide and the operators' routes
    assert refused["platform_admin"] == {op["operationId"] for _, _, op in ops} - {
        "get_customer", "list_wecom_rejections", "metrics"}
    assert {"redemption_answers", "list_jobs", "submit_job", "export_customer_data",
            "decide_chat_flag", "send_campaign"} <= refused["advisor"]
    assert refused["compliance"] >= {"submit_job", "upload_file", "push_events"}
    assert "decide_chat_flag" in refused["tenant_admin"]
