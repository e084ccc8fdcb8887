"""Data-subject requests over HTTP (a real uvicorn server), on SQLite and PostgreSQL: who may
file them, the reason they need, export, erasure and storage only, the request list."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.services.compliance import audit
from tests.api.profiles.test_customers import _token, client

pytestmark = pytest.mark.dialect  # privacy erasure deletes across every table

__all__ = ["client"]  # the fixture, shared with the customer 360 tests

REASON = {"X-Caifu-Reason": quote("客户书面申请（编号 2026-118）")}
ROUTES = (("post", "/v1/customers/C1/export"), ("post", "/v1/customers/C1/erasure"),
          ("get", "/v1/privacy/requests"))


@pytest.mark.parametrize("user", ["acme.ops", "acme.advisor", "acme.bm", "root.admin"])
def test_only_compliance_and_the_tenant_admin_may_file_requests(client, user) -> None:  # type: ignore[no-untyped-def]
    tc, c = client
    headers = {**_token(tc, user), **REASON}
    for method, path in ROUTES:
        r = getattr(tc, method)(path, headers=headers)
        assert r.status_code == 403, (user, path, r.text)
        assert any(w in r.json()["detail"][0]["problem"] for w in ("may not", "sees no"))
    assert audit.records(c, "acme") == []  # nothing was read, nothing recorded


def test_another_tenants_customer_is_404_and_a_reason_is_required(client) -> None:  # type: ignore[no-untyped-def]
    tc, c = client
    for user in ("acme.compliance", "acme.admin"):
        headers = _token(tc, user)
        for cid in ("B1", "NOPE"):
            for action in ("export", "erasure"):
                r = tc.post(f"/v1/customers/{cid}/{action}", headers={**headers, **REASON})
                assert r.status_code == 404, (user, cid, action, r.text)
                assert r.json() == {"error": {"code": "not_found", "message": f"no customer {cid!r}"},
                                    "detail": [{"problem": f"no customer {cid!r}"}]}
        r = tc.post("/v1/customers/C1/export", headers=headers)
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "header.X-Caifu-Reason"
        r = tc.post("/v1/customers/C1/erasure", headers={**headers, "X-Caifu-Reason": "%FF"})
        assert r.status_code == 422 and "percent-encoded UTF-8" in r.text
    assert tc.get("/v1/customers/C1", headers=_token(tc, "acme.ops")).status_code == 200


@pytest.mark.real_socket  # the compliance router over uvicorn
def test_export_then_storage_only_and_deletion(client) -> None:  # type: ignore[no-untyped-def]
    tc, c = client
    comp, admin = _token(tc, "acme.compliance"), _token(tc, "acme.admin")
    r = tc.post("/v1/customers/C2/export", headers={**comp, **REASON})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["customer_id"] == "C2" and doc["sor"]["customers"][0]["name"] == "王二"
    assert doc["manifest"]["sor.customers"] == 1 and doc["manifest"]["sor.wecom_follows"] == 1
    assert doc["manifest"]["sor.accounts"] == 0 and doc["lake"] == {}

    with c.engine.begin() as conn:  # C2 opens an account: his records must now be kept
        conn.execute(insert(CONTRACT_TABLES["accounts"]).values(
            tenant_id="acme", fund_account="F0000002", customer_id="C2",
            opened_on=dt.date(2024, 1, 3), status="normal"))
    r = tc.post("/v1/customers/C2/erasure", headers={**admin, **REASON})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "storage_only" and body["kept"]["sor.accounts"] == 1
    assert body["deleted"]["sor.wecom_follows"] == 1
    assert tc.get("/v1/customers/C2", headers=_token(tc, "acme.ops")).status_code == 404
    assert tc.get("/v1/customers/C2", headers=admin).status_code == 404
    assert tc.get("/v1/customers/C2", headers=comp).status_code == 200

    r = tc.post("/v1/customers/C1/erasure", headers={**comp, **REASON})
    assert r.status_code == 200 and r.json()["outcome"] == "deleted"
    assert r.json()["deleted"]["sor.customers"] == 1
    assert tc.get("/v1/customers/C1", headers=comp).status_code == 404

    r = tc.get("/v1/privacy/requests?limit=2", headers=comp)
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["total"], page["limit"], len(page["items"])) == (3, 2, 2)
    rest = tc.get("/v1/privacy/requests?limit=2&offset=2", headers=admin).json()["items"]
    items = page["items"] + rest
    assert sorted((i["customer_id"], i["kind"], i["outcome"]) for i in items) == [
        ("C1", "erasure", "deleted"), ("C2", "erasure", "storage_only"),
        ("C2", "export", "exported")]
    assert all(i["completed_at"] and i["reason"] == "客户书面申请（编号 2026-118）" for i in items)
    assert {i["requested_by"] for i in items} == {"acme.compliance", "acme.admin"}
    records = audit.records(c, "acme")
    assert [e.entry.action for e in records] == ["export", "delete_request", "delete_request"]
    assert audit.verify(c, "acme").ok
