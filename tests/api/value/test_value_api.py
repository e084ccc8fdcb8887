"""Value endpoints on the scored demo broker: jobs compute, endpoints answer within scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.api import create_app
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.platform import access, users
from caifu.services.value.customer_value import VALUE_TABLE
from caifu.settings import Settings
from tests.api.ingest.test_jobs_api import _wait
from tests.api.profiles.test_customers import PASSWORD, SECRET, _token
from tests.serving import serving

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it


@pytest.fixture(scope="module")
def api(scored) -> Iterator[tuple[httpx.Client, Container, dict[str, Any], str]]:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:  # the advisor with the most customers
        advisor = conn.execute(select(t.c.advisor_id).where(
            t.c.tenant_id == "acme", t.c.advisor_id.is_not(None)).group_by(t.c.advisor_id)
            .order_by(func.count().desc()).limit(1)).scalar_one()
    for user, role, kw in (("val.ops", "ops", {}), ("val.advisor", "advisor",
                                                    {"advisor_id": advisor})):
        users.add_user(c, user, role, PASSWORD, tenant="acme", **kw)
    # the value router's smoke test: one uvicorn server for the module
    with serving(create_app(Settings(secret_key=SECRET), c), real_socket=True) as http:
        h = {u: _token(http, u) for u in ("val.ops", "val.advisor")}
        # the study's period is written out: its default ends on the tenant's newest data,
        # which a real-time event pushed by another test of the shared broker moves to today
        ledger = ds.dataset(c.lake.files("acme", "fund_transactions"), format="parquet"
                            ).to_table(columns=["txn_type", "txn_date"]).to_pylist()
        end = max(r["txn_date"] for r in ledger if r["txn_type"] == "redeem")
        period = {"from": (end - dt.timedelta(days=29)).isoformat(), "to": end.isoformat()}
        for kind, params in (("value", {}), ("redemption", period)):
            r = http.post("/v1/jobs", json={"kind": kind, **params}, headers=h["val.ops"])
            assert r.status_code == 202, r.text
            job = _wait(http, h["val.ops"], r.json()["job_id"])
            assert job["status"] == "succeeded", job
        yield http, c, h, advisor


def test_customer_values_are_ranked_and_scoped(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h, advisor = api
    every = http.get("/v1/value/customers", params={"limit": 1000}, headers=h["val.ops"]).json()
    assert every["total"] > 3000 and len(every["items"]) == 1000
    clv = [Decimal(str(i["clv"])) for i in every["items"]]
    assert clv == sorted(clv, reverse=True) and clv[0] > 0
    mine = http.get("/v1/value/customers", params={"limit": 1000},
                    headers=h["val.advisor"]).json()
    allowed = access.visible_ids(c, Principal("acme", "val.advisor", "advisor",
                                              advisor_id=advisor))
    assert allowed and 0 < mine["total"] <= len(allowed)
    assert {i["customer_id"] for i in mine["items"]} <= allowed
    assert mine["total"] < every["total"]


def _by_group(c: Container, column: str) -> dict[str, tuple[int, Decimal]]:
    """The oracle: customers and CLV per group of the newest value run, in plain Python over
    the lake snapshot (a missing group is "(none)")."""
    run = c.lake.latest_snapshot("acme", VALUE_TABLE)
    assert run is not None
    out: dict[str, tuple[int, Decimal]] = {}
    for r in run.select([column, "clv"]).to_pylist():
        n, clv = out.get(r[column] or "(none)", (0, Decimal(0)))
        out[r[column] or "(none)"] = (n + 1, clv + r["clv"])
    return out


def test_rollups_are_the_runs_figures_with_small_groups_withheld(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h, advisor = api
    every = http.get("/v1/value/customers", params={"limit": 1}, headers=h["val.ops"]).json()
    for by, column in (("channel", "channel"), ("advisor", "advisor_id"),
                       ("cohort", "cohort")):
        r = http.get(f"/v1/value/rollups/{by}", headers=h["val.ops"]).json()
        want = _by_group(c, column)
        assert sum(g["customers"] for g in r["items"]) == every["total"] == r["customers"]
        assert Decimal(r["totals"]["clv"]) == sum(clv for _, clv in want.values())
        assert {g["group"] for g in r["items"]} == set(want)
        for g in r["items"]:  # a level-3 figure of fewer than 10 customers is withheld
            n, clv = want[g["group"]]
            assert g["customers"] == n
            assert (g["clv"] is None) == g["suppressed"] == (n < 10)
            assert g["suppressed"] or Decimal(g["clv"]) == clv
        assert {m["metric"] for m in r["metrics"]} >= {"clv_total", "value_customers"}
    # an advisor's roll-up covers his customers: assigned to him, or following him on WeCom
    theirs = http.get("/v1/value/rollups/advisor", headers=h["val.advisor"]).json()
    mine = http.get("/v1/value/customers", params={"limit": 1},
                    headers=h["val.advisor"]).json()["total"]
    groups = {g["group"]: g["customers"] for g in theirs["items"]}
    assert theirs["customers"] == sum(groups.values()) == mine < every["total"]
    assert groups[advisor] == max(groups.values())
    assert http.get("/v1/value/rollups/planet", headers=h["val.ops"]).status_code == 422


def test_redemption_answers_and_the_reassurance_list(api) -> None:  # type: ignore[no-untyped-def]
    http, c, h, advisor = api
    answers = http.get("/v1/value/redemption", headers=h["val.ops"])
    assert answers.status_code == 200, answers.text
    a = answers.json()
    assert a["funds"] and a["comparison"] and dt.date.fromisoformat(a["period"]["end"])
    assert "customer_id" not in str(a["funds"][0])  # aggregates only
    # question 1 from the metric layer: the top fund's redeemed amount is what its confirmed
    # redemptions of the period add up to
    start, end = (dt.date.fromisoformat(a["period"][k]) for k in ("start", "end"))
    top = a["funds"][0]
    ledger = ds.dataset(c.lake.files("acme", "fund_transactions"), format="parquet").to_table(
        columns=["fund_code", "txn_type", "txn_date", "amount"]).to_pylist()
    assert Decimal(top["redeemed_amount"]) == sum(
        r["amount"] for r in ledger if r["fund_code"] == top["fund_code"]
        and r["txn_type"] == "redeem" and start <= r["txn_date"] <= end) > 0
    assert {m["metric"] for m in a["metrics"]} >= {"study_redeemed_amount", "study_holdings"}
    assert any(r["kind"] == "numeric" for r in a["comparison"])  # the job's rank statistics
    assert a["holding_summary"][0]["fund_type"] == "all"
    assert http.get("/v1/value/redemption", headers=h["val.advisor"]).status_code == 403
    every = http.get("/v1/value/reassurance", params={"limit": 1000},
                     headers=h["val.ops"]).json()
    assert every["total"] == a["reassurance_tasks"] > 0
    assert [i["rank"] for i in every["items"]] == sorted(i["rank"] for i in every["items"])
    mine = http.get("/v1/value/reassurance", params={"limit": 1000},
                    headers=h["val.advisor"]).json()
    allowed = access.visible_ids(c, Principal("acme", "val.advisor", "advisor",
                                              advisor_id=advisor))
    assert {i["customer_id"] for i in mine["items"]} <= allowed
    assert mine["total"] < every["total"]
    assert all(i["reasons"] for i in mine["items"])


def test_before_any_value_job_the_answer_says_what_to_run(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    ops = _token(http, "acme.ops")
    for path in ("/v1/value/customers", "/v1/value/rollups/channel", "/v1/value/redemption",
                 "/v1/value/reassurance"):
        r = http.get(path, headers=ops)
        assert r.status_code == 404 and "POST /v1/jobs" in r.json()["detail"][0]["problem"]
