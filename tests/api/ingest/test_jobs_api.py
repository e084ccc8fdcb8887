"""Ingest through the API (upload → job → batches, quarantine) and jobs, on SQLite and
PostgreSQL (where every request runs under row-level security)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caifu.api import create_app
from caifu.services.container import Container
from caifu.services.platform.jobs import Jobs, uploads_dir
from caifu.settings import Settings
from tests.api.profiles.test_customers import SECRET, _seed, _token
from tests.factories import ADVISORS, BRANCHES, customer_row, customers_csv
from tests.serving import serving, wants_socket

pytestmark = pytest.mark.dialect  # claiming a job is an optimistic update under each database's isolation

UPLOAD_LIMIT = 50_000


@pytest.fixture
def api(request: pytest.FixtureRequest, workspace: Container
        ) -> Iterator[tuple[httpx.Client, Container, dict[str, Any]]]:
    _seed(workspace)
    settings = Settings(secret_key=SECRET, max_upload_bytes=UPLOAD_LIMIT)
    with serving(create_app(settings, workspace), wants_socket(request)) as http:
        users = ("acme.ops", "acme.advisor", "acme.compliance", "acme.bm", "root.admin")
        yield http, workspace, {u: _token(http, u) for u in users}


def _wait(http: httpx.Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job = http.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']}")


def _upload(http: httpx.Client, headers: dict[str, str], name: str, body: bytes,
            **params: str) -> httpx.Response:
    return http.post("/v1/ingest/files", params={"filename": name, **params}, content=body,
                     headers={**headers, "Content-Type": "application/octet-stream"})


@pytest.mark.real_socket  # the ingest router (a streamed upload) over uvicorn
def test_an_upload_is_ingested_by_a_job_and_its_bad_row_quarantined(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h = api
    ops = h["acme.ops"]
    for name, body in (("branches.csv", BRANCHES), ("advisors.csv", ADVISORS)):
        r = _upload(http, ops, name, body.encode())
        assert r.status_code == 202, r.text
        assert r.json()["kind"] == "ingest" and r.json()["status"] in ("queued", "running",
                                                                       "succeeded")
        assert _wait(http, ops, r.json()["job_id"])["status"] == "succeeded"

    bad = customer_row(9, id_number="110105194912310021")  # wrong GB 11643 check digit
    r = _upload(http, ops, "customers.csv", customers_csv(4, [bad]).encode("utf-8"))
    job = _wait(http, ops, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    (batch,) = job["result"]["batches"]
    assert (batch["table"], batch["rows_in"], batch["inserted"], batch["quarantined"]) == (
        "customers", 5, 4, 1)
    assert batch["reasons"] == {"id_number:ID_CHECKSUM": 1}

    listed = http.get("/v1/ingest/batches", headers=ops).json()["items"]
    assert [b["batch_id"] for b in listed][:1] == [batch["batch_id"]]
    assert listed[0]["source_path"] == "customers.csv"  # the server's folders stay private

    q = http.get("/v1/ingest/quarantine", params={"batch": batch["batch_id"]},
                 headers=ops).json()
    assert q["total"] == 1
    (item,) = q["items"]
    assert item["reasons"] == ["id_number:ID_CHECKSUM"] and item["file"] == "customers.csv"
    assert item["row"]["customer_id"] == "C00009"  # level 1: as sent
    assert item["row"]["id_number"] != "110105194912310021"
    assert item["row"]["id_number"].startswith("1101") and "*" in item["row"]["id_number"]
    assert item["row"]["mobile"] == "138****0009"
    assert "*" in item["row"]["name"]


def test_uploads_and_jobs_need_the_right_role(api) -> None:  # type: ignore[no-untyped-def]
    http, _, h = api
    for user in ("acme.advisor", "acme.bm", "acme.compliance", "root.admin"):
        assert _upload(http, h[user], "branches.csv", BRANCHES.encode()).status_code == 403
        assert http.post("/v1/jobs", json={"kind": "build"},
                         headers=h[user]).status_code == 403
    for user in ("acme.advisor", "acme.bm", "root.admin"):
        for path in ("/v1/jobs", "/v1/ingest/batches", "/v1/ingest/quarantine"):
            assert http.get(path, headers=h[user]).status_code == 403, (user, path)
    assert http.get("/v1/jobs", headers=h["acme.compliance"]).status_code == 200


def test_bad_uploads_are_refused_and_leave_nothing(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h = api
    ops = h["acme.ops"]
    too_big = b"branch_id,name\n" + b"B9,x\n" * (UPLOAD_LIMIT // 5)
    r = _upload(http, ops, "branches.csv", too_big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"][0]["problem"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"x" * 5000
    r = http.post("/v1/ingest/files", params={"filename": "branches.csv"}, content=chunks(),
                  headers=ops)
    assert r.status_code == 413, r.text
    for name in ("../sor.db.csv", "a/b.csv", "branches.exe", ""):
        assert _upload(http, ops, name, BRANCHES.encode()).status_code == 422, name
    assert _upload(http, ops, "x.csv", b"").status_code == 422
    r = _upload(http, ops, "x.csv", BRANCHES.encode(), table="no_such_table")
    assert r.status_code == 422 and "no_such_table" in r.text
    folder = uploads_dir(c, "acme")
    assert not folder.exists() or not any(folder.iterdir())
    assert http.get("/v1/jobs", headers=ops).json()["total"] == 0


def test_a_failed_job_says_why_and_jobs_are_per_tenant(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h = api
    ops = h["acme.ops"]
    r = _upload(http, ops, "customers.csv", b"no_such_column\n1\n")
    job = _wait(http, ops, r.json()["job_id"])
    assert job["status"] == "failed" and "customers" in job["error"]
    r = http.post("/v1/jobs", json={"kind": "build", "as_of": "2026-13-01"}, headers=ops)
    assert r.status_code == 422 and r.json()["detail"][0]["field"].endswith("as_of")
    assert http.post("/v1/jobs", json={"kind": "drop_tables"}, headers=ops).status_code == 422
    # a job of another tenant is not found, not forbidden
    other = Jobs(c).submit("beta", "build", {}, "beta.ops")
    assert http.get(f"/v1/jobs/{other['job_id']}", headers=ops).status_code == 404
    assert other["job_id"] not in {j["job_id"] for j in
                                    http.get("/v1/jobs", headers=ops).json()["items"]}


def test_a_job_left_running_by_a_stopped_service_is_marked_failed(workspace: Container
                                                                  ) -> None:
    jobs = Jobs(workspace)
    job = jobs.submit("acme", "build", {}, "acme.ops")
    assert jobs._claim() is not None  # the service took it … and stopped
    assert jobs.recover() == 1
    after = jobs.get("acme", job["job_id"])
    assert after["status"] == "failed" and "interrupted" in after["error"]
    assert jobs.run_next() is None  # nothing queued: a failed job is not rerun by itself


@pytest.mark.parametrize("params,field", [
    ({"kind": "redemption", "to": 0}, "body.to"),
    ({"kind": "redemption", "from": 20260101}, "body.from"),
    ({"kind": "build", "as_of": "2026-1-5"}, "body.as_of"),
    ({"kind": "build", "as_of": "2026-01-05T00:00:00"}, "body.as_of"),
    ({"kind": "redemption", "from": "2026-03-01", "to": "2026-01-31"}, "body.to"),
])
def test_job_parameters_are_checked_when_submitted(api, params, field) -> None:  # type: ignore[no-untyped-def]
    """Found by an outside probe: ``to=0`` was read as 1970-01-01 and ``from`` after ``to``
    was queued, then failed. Dates are ISO ``YYYY-MM-DD`` text, ``from`` ≤ ``to``."""
    http, _, h = api
    r = http.post("/v1/jobs", json=params, headers=h["acme.ops"])
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == field
    assert http.get("/v1/jobs", headers=h["acme.ops"]).json()["total"] == 0
    ok = http.post("/v1/jobs", json={"kind": "redemption", "from": "2026-01-01",
                                     "to": "2026-01-01"}, headers=h["acme.ops"])
    assert ok.status_code == 202 and ok.json()["params"] == {"from": "2026-01-01",
                                                             "to": "2026-01-01"}


def test_a_failed_jobs_error_names_the_file_not_the_server_path(api) -> None:  # type: ignore[no-untyped-def]
    """Found by an outside probe: the error quoted the upload's absolute path on the server
    and the whole raw header cell. Now: the file name, and a bounded, escaped excerpt."""
    http, c, h = api
    ops = h["acme.ops"]
    cell = "\x1b[31m" + "Z" * 3000
    r = _upload(http, ops, "customers.csv", f"{cell},branch_id\n1,2\n".encode())
    job = _wait(http, ops, r.json()["job_id"])
    error = job["error"]
    assert job["status"] == "failed" and error.startswith("customers.csv, line 1")
    assert str(c.root) not in error and "/uploads/" not in error
    assert "\x1b" not in error and "\\x1b[31mZZZ" in error  # escaped
    assert "Z" * 100 not in error and re.search(r"…' \(3,0\d\d characters\)", error)
    assert len(error) < 600
    assert Jobs(c).get("acme", job["job_id"])["error"] == error  # stored as shown
