"""``GET /v1/quality`` and ``/v1/quality/history``: the services' answers for tenant-wide
roles, 403 for the others, nothing of another tenant."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from caifu.adapters.sor.models import ingest_log
from caifu.adapters.sor.repos import quality as repo
from caifu.core.clock import FixedClock
from caifu.services.container import Container
from tests.api.profiles.test_customers import _token

NOW = dt.datetime(2026, 11, 10, 1)  # the 10th, 09:00 in Shanghai


def _batch(c: Container, tenant: str, batch: str, newest: dt.date, quarantined: int) -> None:
    with c.engine.begin() as conn:
        conn.execute(insert(ingest_log).values(
            tenant_id=tenant, batch_id=batch, table_name="trades", source_path="/srv/t.csv",
            source_sha256="0" * 64, source_bytes=10, status="committed", rows_in=100,
            loaded=100 - quarantined, inserted=100 - quarantined, updated=0,
            quarantined=quarantined, duplicates=0, reasons_json="{}", timings_json="{}",
            started_at=NOW - dt.timedelta(hours=1), finished_at=NOW))
        repo.add_profile(conn, tenant, batch, "trades", rows=100 - quarantined,
                         nulls={"channel": 20, "amount": 0}, date_column="trade_date",
                         oldest=newest - dt.timedelta(days=2), newest=newest, now=NOW)
        repo.apply(conn, tenant, "trades", "quarantine_rate", "", breached=True,
                   observed=quarantined / 100, threshold=0.05, batch_id=batch,
                   detail=f"{quarantined} of 100 rows quarantined", now=NOW, by=batch)


@pytest.mark.dialect  # every request runs under row-level security on PostgreSQL
def test_quality_for_tenant_wide_roles_only(client) -> None:  # type: ignore[no-untyped-def]
    http, c = client
    c.clock = FixedClock(NOW)
    _batch(c, "acme", "abatch01", dt.date(2026, 11, 3), 20)
    _batch(c, "beta", "bbatch01", dt.date(2026, 11, 9), 50)
    for user in ("acme.ops", "acme.admin", "acme.compliance"):
        h = _token(http, user)
        r = http.get("/v1/quality", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        [t] = body["tables"]
        assert t == {"table": "trades", "date_column": "trade_date", "newest_date": "2026-11-03",
                     "today": "2026-11-10", "lag_days": 7, "max_lag_days": 4, "stale": True,
                     "last_load": "2026-11-10T00:00:00", "batches": 1}
        [a] = body["alerts"]
        assert (a["table_name"], a["rule"], a["observed"], a["batch_id"], a["status"]) == (
            "trades", "quarantine_rate", 0.2, "abatch01", "open")
        hist = http.get("/v1/quality/history", params={"table": "trades"}, headers=h).json()
        [b] = hist["items"]
        assert b["batch_id"] == "abatch01" and b["quarantine_rate"] == 0.2
        assert b["null_counts"] == {"amount": 0, "channel": 20}
        assert b["null_rates"]["channel"] == 0.25 and b["oldest_date"] == "2026-11-01"
        assert "/srv" not in r.text + str(hist)  # no server paths
    for user in ("acme.bm", "acme.advisor", "root.admin"):
        assert http.get("/v1/quality", headers=_token(http, user)).status_code == 403
        assert http.get("/v1/quality/history",
                        headers=_token(http, user)).status_code == 403
    h = _token(http, "acme.ops")
    assert http.get("/v1/quality/history", params={"since": "2026-11-11"},
                    headers=h).json() == {"items": []}
    r = http.get("/v1/quality/history", params={"table": "trade"}, headers=h)
    assert r.status_code == 422 and "no such table 'trade'" in r.text
