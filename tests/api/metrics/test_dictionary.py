"""``GET /v1/dictionary``: the caller's tenant's data dictionary, its own metrics included;
every tenant role may read it, nobody without a token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from caifu.api import create_app
from caifu.data.contracts import registry
from caifu.services.container import Container
from caifu.services.platform import users
from caifu.settings import Settings
from tests.api.profiles.test_customers import PASSWORD, SECRET, _token
from tests.serving import serving, wants_socket


@pytest.fixture
def client(request: pytest.FixtureRequest, sqlite_workspace: Container
           ) -> Iterator[tuple[httpx.Client, Container]]:
    c = sqlite_workspace
    users.add_user(c, "acme.compliance", "compliance", PASSWORD, tenant="acme")
    users.add_user(c, "acme.ops", "ops", PASSWORD, tenant="acme")
    users.add_user(c, "root.admin", "platform_admin", PASSWORD, tenant=None)
    folder = c.root / "metrics" / "acme"
    folder.mkdir(parents=True)
    (folder / "extra.yaml").write_text(yaml.safe_dump({"metrics": [{
        "name": "sell_fees", "version": 1, "owner": "brokerage",
        "label": {"zh": "卖出手续费", "en": "Fees on sales"},
        "description": {"zh": "卖出成交的手续费", "en": "Fees of sell trades"},
        "format": "money", "dataset": "trades", "measure": "SUM(fee)",
        "filter": "side = 'sell'"}]}, allow_unicode=True), encoding="utf-8")
    with serving(create_app(Settings(secret_key=SECRET), c), wants_socket(request)) as http:
        yield http, c


def test_the_dictionary_over_http(client) -> None:  # type: ignore[no-untyped-def]
    tc, _ = client
    r = tc.get("/v1/dictionary", headers=_token(tc, "acme.compliance"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["tenant"] == "acme" and d["default_owner"] == "data-office"
    tables = {t["name"]: t for t in d["tables"]}
    assert set(tables) >= {t.name for t in registry()} | {"sor:ingest_log"}
    trades = {c["name"]: c for c in tables["trades"]["columns"]}
    assert trades["fee"]["description"] == {"zh": "手续费（佣金+规费+印花税）",
                                            "en": "Fees (commission, levies and stamp duty)"}
    assert {"sell_fees", "commission_revenue"} <= set(trades["fee"]["metrics"])
    assert "sell_fees" in trades["side"]["metrics"]  # its filter reads the side
    assert tables["trades"]["owner"] == "brokerage"
    ids = {c["name"]: c for c in tables["customers"]["columns"]}["id_number"]
    assert (ids["level"], ids["pii"]) == (3, True)


def test_every_tenant_role_may_read_it_and_nobody_else(client) -> None:  # type: ignore[no-untyped-def]
    tc, _ = client
    assert tc.get("/v1/dictionary").status_code == 401
    r = tc.get("/v1/dictionary", headers=_token(tc, "root.admin"))
    assert r.status_code == 403 and "advisor" in r.text
    r = tc.get("/v1/dictionary", headers=_token(tc, "acme.ops"))
    assert r.status_code == 200 and r.json()["tenant"] == "acme"
