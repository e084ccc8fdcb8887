"""``GET /v1/metrics`` and ``/v1/metrics/{name}`` on the demo broker: the same definitions and
answers as the service, in the caller's scope, with clear refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.api import create_app
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.query import answer
from caifu.services.platform import users
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET, _token
from tests.conftest import Broker
from tests.serving import serving

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

RANGE = {"from": "2025-11-01", "to": "2026-10-31"}


@pytest.fixture(scope="module")
def api(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[httpx.Client, Container, dict[str, Any], str]]:
    c = small_broker.copy(tmp_path_factory.mktemp("metrics-api") / "ws")
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        advisor = conn.execute(select(t.c.advisor_id).where(
            t.c.tenant_id == "acme", t.c.advisor_id.is_not(None)).group_by(t.c.advisor_id)
            .order_by(func.count().desc()).limit(1)).scalar_one()
    users.add_user(c, "met.ops", "ops", PASSWORD, tenant="acme")
    users.add_user(c, "met.adv", "advisor", PASSWORD, tenant="acme", advisor_id=advisor)
    with serving(create_app(Settings(secret_key=SECRET), c)) as http:
        h = {u: _token(http, u) for u in ("met.ops", "met.adv")}
        yield http, c, h, advisor
    c.close()


def test_the_catalog_lists_every_metric_with_its_identity(api: Any) -> None:
    http, _, h, _ = api
    r = http.get("/v1/metrics", headers=h["met.ops"])
    assert r.status_code == 200, r.text
    body = r.json()
    cat = shipped()
    assert body["catalog_version"] == cat.version
    by_name = {m["name"]: m for m in body["metrics"]}
    assert set(by_name) == set(cat.metrics)
    aum = by_name["aum"]
    assert aum["level"] == 3 and aum["owner"] == "wealth-ops"
    assert aum["definition_hash"] == cat.definition_hash("aum") and "branch" in aum["dimensions"]


def test_a_metric_answers_as_the_service_does(api: Any) -> None:
    http, c, h, _ = api
    r = http.get("/v1/metrics/turnover", params={**RANGE, "by": "board"}, headers=h["met.ops"])
    assert r.status_code == 200, r.text
    body = r.json()
    direct = answer(c, Principal("acme", "met.ops", "ops"), "turnover", by=("board",),
                    start=dt.date(2025, 11, 1), end=dt.date(2026, 10, 31))
    assert body["from"] == "2025-11-01" and body["by"] == ["board"] and body["scope"] == "tenant"
    assert body["definition_hash"] == shipped().definition_hash("turnover")
    got = {(r["period"], r["board"]): r["value"] for r in body["rows"]}
    want = {(r["period"].isoformat(), r["board"]): None if r["value"] is None
            else format(r["value"], "f") for r in direct.rows}
    assert got == want and any(v is not None for v in got.values())
    assert all(Decimal(v) > 0 for v in got.values() if v is not None)


def test_an_advisor_gets_his_customers_figure(api: Any) -> None:
    http, _, h, advisor = api
    mine = http.get("/v1/metrics/active_traders", params={**RANGE, "grain": "all"},
                    headers=h["met.adv"]).json()
    every = http.get("/v1/metrics/active_traders", params={**RANGE, "grain": "all"},
                     headers=h["met.ops"]).json()
    assert mine.get("scope") == f"advisor {advisor}", mine
    assert 0 < mine["rows"][0]["customers"] < every["rows"][0]["customers"]
    r = http.get("/v1/metrics/quarantine_rate", params=RANGE, headers=h["met.adv"])
    assert r.status_code == 403 and "tenant-wide" in r.json()["error"]["message"]


@pytest.mark.parametrize(("path", "params", "status", "text"), [
    ("/v1/metrics/aun", {}, 422, "did you mean aum"),
    ("/v1/metrics/aum", {"by": "nothing"}, 422, "unknown dimension 'nothing'"),
    ("/v1/metrics/aum", {"grain": "fortnight"}, 422, ""),
    ("/v1/metrics/aum", {"from": "2026-13-01"}, 422, ""),
    ("/v1/metrics/aum", {"from": "2026-10-01", "to": "2026-01-01"}, 422, "before it starts"),
    ("/v1/metrics/customers_total", {"grain": "day", "from": "1900-01-01"}, 422,
     "at most 1,200 in one query"),
    ("/v1/metrics/turnover", {"where": "board > 5"}, 422, "compares number with text"),
    ("/v1/metrics/turnover", {"where": "board"}, 422, "is not a condition"),
])
def test_bad_requests_say_why(api: Any, path: str, params: dict[str, str], status: int,
                              text: str) -> None:
    http, _, h, _ = api
    r = http.get(path, params=params, headers=h["met.ops"])
    assert r.status_code == status, r.text
    assert text in r.text


def test_no_token_no_figures(api: Any) -> None:
    http, _, _, _ = api
    assert http.get("/v1/metrics/aum").status_code == 401
