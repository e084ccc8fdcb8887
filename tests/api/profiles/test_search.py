"""Customer search over HTTP on SQLite and PostgreSQL: each role finds only its scope, results
are masked, unmasked keys are compliance-only with a reason and audited, pages add up, and
bad input is a 4xx naming the field. Uses the seeded tenants of ``test_customers``."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import customer_cards, tag_assignments
from caifu.services.compliance import audit
from caifu.services.container import Container
from tests.api.profiles.test_customers import _token
from tests.api.profiles.test_customers import client as client  # noqa: F401  (the fixture)

pytestmark = pytest.mark.dialect  # LIKE and ordering differ by database

Client = tuple[httpx.Client, Container]


def _ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["customer_id"] for x in r.json()["items"]]


def _search(tc: httpx.Client, user: str, **params: Any) -> httpx.Response:
    return tc.get("/v1/customers", params=params, headers=_token(tc, user))


def test_each_role_finds_only_its_scope_masked(client: Client) -> None:  # noqa: F811
    tc, _ = client
    expected = {"acme.ops": ["C1", "C2", "C3"], "acme.admin": ["C1", "C2", "C3"],
                "acme.compliance": ["C1", "C2", "C3"], "acme.bm": ["C1"],
                "acme.advisor": ["C1", "C2"]}  # B1 (beta) has the same mobile: never found
    for user, ids in expected.items():
        r = _search(tc, user, mobile_last4="5678")
        assert _ids(r) == ids and r.json()["total"] == len(ids), user
        for item in r.json()["items"]:
            assert item["mobile"] == "138****5678" and item["name"] == "王*"
            assert "id_number" not in item
    assert _search(tc, "root.admin", mobile_last4="5678").status_code == 403


def test_masked_keys(client: Client) -> None:  # noqa: F811
    tc, c = client
    with c.engine.begin() as conn:
        conn.execute(insert(tag_assignments).values(
            tenant_id="acme", customer_id="C3", tag_id="dormant", tag_version=1, kind="rule",
            evidence_json="{}", as_of=dt.date(2026, 3, 1), gained_at=dt.datetime(2026, 3, 1),
            updated_at=dt.datetime(2026, 3, 1)))
        conn.execute(insert(customer_cards).values(
            tenant_id="acme", customer_id="C2", as_of=dt.date(2026, 3, 1), card_json="{}",
            built_at=dt.datetime(2026, 3, 1), lifecycle_stage="dormant"))
    ops = "acme.ops"
    assert _ids(_search(tc, ops, customer_id="C2")) == ["C2"]
    assert _ids(_search(tc, ops, customer_id="C")) == []  # exact
    assert _ids(_search(tc, ops, customer_id_prefix="C")) == ["C1", "C2", "C3"]
    assert _ids(_search(tc, ops, customer_id_prefix="%")) == []  # a LIKE wildcard is a char
    assert _ids(_search(tc, ops, branch_id="YYB002")) == ["C2", "C3"]
    assert _ids(_search(tc, ops, advisor_id="TG00001")) == ["C1"]
    assert _ids(_search(tc, ops, mobile_first3="138", mobile_last4="5678")) == ["C1", "C2", "C3"]
    assert _ids(_search(tc, ops, mobile_first3="139", mobile_last4="5678")) == []
    assert _ids(_search(tc, ops, tag_id="dormant")) == ["C3"]
    r = _search(tc, ops, stage="dormant")
    assert _ids(r) == ["C2"] and r.json()["items"][0]["lifecycle_stage"] == "dormant"
    assert _ids(_search(tc, ops, stage="dormant", branch_id="YYB001")) == []  # keys AND
    assert _ids(_search(tc, "acme.bm", tag_id="dormant")) == []  # C3 is not his branch


def test_pages_add_up(client: Client) -> None:  # noqa: F811
    tc, _ = client
    first = _search(tc, "acme.ops", customer_id_prefix="C", limit=2).json()
    second = _search(tc, "acme.ops", customer_id_prefix="C", limit=2, offset=2).json()
    assert (first["total"], second["total"]) == (3, 3)
    assert [x["customer_id"] for x in first["items"] + second["items"]] == ["C1", "C2", "C3"]
    assert (first["limit"], second["offset"]) == (2, 2)
    assert _search(tc, "acme.ops", customer_id_prefix="C", offset=5).json()["items"] == []


def test_unmasked_keys_need_compliance_and_a_reason_and_are_audited(client: Client) -> None:  # noqa: F811
    tc, c = client
    for user in ("acme.ops", "acme.advisor", "acme.bm"):
        r = tc.get("/v1/customers", params={"mobile": "13812345678"},
                   headers={**_token(tc, user), "X-Caifu-Reason": quote("核查")})
        assert r.status_code == 403, user
    r = _search(tc, "acme.compliance", mobile="13812345678")
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "header.X-Caifu-Reason"
    assert audit.records(c, "acme") == []  # refused: nothing searched, nothing recorded
    comp = {**_token(tc, "acme.compliance"), "X-Caifu-Reason": quote("客户投诉核查")}
    r = tc.get("/v1/customers", params={"mobile": "+86 138 1234 5678"}, headers=comp)
    assert _ids(r) == ["C1", "C2", "C3"]
    assert {x["name"] for x in r.json()["items"]} == {"王*"}  # results stay masked
    r = tc.get("/v1/customers", params={"name": "王一"}, headers=comp)
    assert _ids(r) == ["C1"]
    r = tc.get("/v1/customers", params={"id_number": "ec212345"}, headers=comp)
    assert _ids(r) == ["C2"]
    records = [s.entry for s in audit.records(c, "acme")]
    assert [(e.action, e.fields, e.customer_ids) for e in records] == [
        ("search", ("mobile",), ("C1", "C2", "C3")), ("search", ("name",), ("C1",)),
        ("search", ("id_number",), ("C2",))]
    assert all(e.actor == "acme.compliance" and e.reason == "客户投诉核查" for e in records)
    for e in records:  # never the value searched for
        text = repr(e)
        assert "5678" not in text and "王一" not in text and "12345" not in text
    assert audit.verify(c, "acme").ok
    _search(tc, "acme.compliance", mobile_last4="5678")  # masked keys: not audited
    assert len(audit.records(c, "acme")) == 3


def test_bad_input_names_the_field(client: Client) -> None:  # noqa: F811
    tc, _ = client
    cases = [({}, "query"), ({"mobile_last4": "12a4"}, "query.mobile_last4"),
             ({"mobile_last4": "123"}, "query.mobile_last4"),
             ({"mobile_first3": "138"}, "query.mobile_first3"),
             ({"mobile_first3": "123", "mobile_last4": "5678"}, "query.mobile_first3"),
             ({"stage": "sleepy"}, "query.stage"), ({"customer_id": "x" * 33}, "query.customer_id"),
             ({"customer_id": "C1", "limit": 1001}, "query.limit"),
             ({"customer_id": "C1", "limit": 0}, "query.limit"),
             ({"customer_id": "C1", "offset": -1}, "query.offset"),
             ({"customer_id": " "}, "query.customer_id")]
    for params, field in cases:
        r = _search(tc, "acme.ops", **params)
        assert r.status_code == 422, (params, r.text)
        detail = r.json()["detail"]
        assert field in [d["field"] for d in detail] and all(d["problem"] for d in detail), params
    comp = {**_token(tc, "acme.compliance"), "X-Caifu-Reason": quote("核查手机号")}
    r = tc.get("/v1/customers", params={"mobile": "12345"}, headers=comp)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.mobile"
    r = tc.get("/v1/customers", params={"mobile_last4": "5678"},
               headers={**comp, "X-Caifu-Reason": "%E4%B8"})  # broken percent-encoding
    assert r.status_code == 422
    assert tc.get("/v1/customers", params={"customer_id": "C1"}).status_code == 401
