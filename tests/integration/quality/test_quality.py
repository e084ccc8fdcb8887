"""Data-quality history end to end: each load's profile against an independent count of the
file, alerts raised once and resolved by a later load or check, the tenant's override, and
a bad thresholds file refused before anything is written."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from caifu.adapters.sor.models import ingest_log
from caifu.adapters.sor.quality_models import ingest_profiles, quality_alerts
from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.quality import checks, history
from tests.factories import (
    CUSTOMER_HEADER,
    TRADE_HEADER,
    customer_row,
    seed_reference,
    trade_row,
    write,
)

pytestmark = pytest.mark.dialect  # the one-open-alert index and savepoint differ by database

CHANNELS = ("app", "pc", "phone")


def _trades(ids: range, *, day: dt.date, null_every: int = 0, bad: int = 0) -> str:
    """Trades on ``day`` with a ``channel`` column, blank in every ``null_every``-th row, and
    ``bad`` rows with an unknown security (quarantined)."""
    rows = []
    for i in ids:
        channel = "" if null_every and i % null_every == 0 else CHANNELS[i % 3]
        rows.append(trade_row(i, trade_date=day.isoformat(),
                              trade_time=f"{day.isoformat()} 02:15:00") + "," + channel)
    rows += [trade_row(900_000 + k, security_code="999999", trade_date=day.isoformat())
             + ",app" for k in range(bad)]
    return TRADE_HEADER + ",channel\n" + "\n".join(rows) + "\n"


class Ticking(FixedClock):
    """A fixed clock that moves a second each time it is read: batches keep their order."""

    def now(self) -> dt.datetime:
        self.advance(dt.timedelta(seconds=1))
        return self.at


def _open(c: Container) -> list[dict]:  # type: ignore[type-arg]
    """The open alerts of trades (the reference data's 2020 accounts are stale anyway)."""
    return history.alerts(c, "acme", "open", "trades")


def _alert_rows(c: Container) -> int:
    with c.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(quality_alerts)).scalar_one())


@pytest.fixture
def ws(workspace: Container, tmp_path: Path) -> Container:
    workspace.clock = Ticking(dt.datetime(2025, 3, 5, 2))  # 10:00 on the 5th in Shanghai
    Ingest(workspace).ingest("acme", seed_reference(tmp_path / "ref"))
    return workspace


def test_the_profile_is_the_files_own_count(ws: Container, tmp_path: Path) -> None:
    """Nulls and dates of the loaded rows, counted here from the CSV text itself."""
    days = [dt.date(2025, 2, 24) + dt.timedelta(days=k) for k in range(5)]
    rows = [trade_row(i, trade_date=days[i % 5].isoformat(),
                      trade_time=f"{days[i % 5].isoformat()} 02:15:00")
            + "," + ("" if i % 7 == 0 else "app") for i in range(1, 121)]
    rows.append(trade_row(500, security_code="999999") + ",app")  # quarantined: not loaded
    text = TRADE_HEADER + ",channel\n" + "\n".join(rows) + "\n"
    [r] = Ingest(ws).ingest("acme", [write(tmp_path / "trades.csv", text)])
    loaded = [row for row in csv.DictReader(io.StringIO(text))
              if row["security_code"] != "999999"]
    assert r.loaded == len(loaded) == 120 and r.quarantined == 1

    [h] = history.history(ws, "acme", "trades")
    assert h["batch_id"] == r.batch_id and h["profiled"]
    assert h["loaded"] == 120 and h["rows_in"] == 121
    assert h["quarantine_rate"] == pytest.approx(1 / 121)
    assert h["null_counts"]["channel"] == sum(1 for row in loaded if row["channel"] == "") == 17
    assert h["null_rates"]["channel"] == pytest.approx(17 / 120)
    assert all(h["null_counts"][col] == 0 for col in ("trade_id", "amount", "trade_date"))
    assert h["date_column"] == "trade_date"
    assert h["oldest_date"] == min(dt.date.fromisoformat(x["trade_date"]) for x in loaded)
    assert h["newest_date"] == max(dt.date.fromisoformat(x["trade_date"]) for x in loaded)
    assert (h["oldest_date"], h["newest_date"]) == (days[0], days[-1])

    # a system-of-record table: inserts and updates streamed to the database, counted alike
    cust = (CUSTOMER_HEADER + "\n" + customer_row(1, gender="", mobile="") + "\n"
            + customer_row(6, mobile="", opened_on="2024-12-31") + "\n"
            + customer_row(7, opened_on="2021-06-30") + "\n")
    [r2] = Ingest(ws).ingest("acme", [write(tmp_path / "customers.csv", cust)])
    assert (r2.inserted, r2.updated) == (2, 1)
    h2 = history.history(ws, "acme", "customers")[0]
    assert h2["loaded"] == 3 and h2["null_counts"]["mobile"] == 2
    assert h2["null_counts"]["gender"] == 1 and h2["null_counts"]["name"] == 0
    assert (h2["oldest_date"], h2["newest_date"]) == (dt.date(2020, 3, 1), dt.date(2024, 12, 31))

    with ws.engine.connect() as conn:  # one profile per committed batch, in its commit
        profiles = conn.execute(select(func.count()).select_from(ingest_profiles)).scalar_one()
        batches = conn.execute(select(func.count()).select_from(ingest_log)
                               .where(ingest_log.c.status == "committed")).scalar_one()
    assert profiles == batches == 7

    fresh = {f["table"]: f for f in history.freshness(ws, "acme")}
    assert fresh["trades"]["newest_date"] == dt.date(2025, 2, 28)
    assert fresh["trades"]["lag_days"] == 5 and fresh["trades"]["stale"]  # over 4 days
    assert fresh["customers"]["newest_date"] == dt.date(2024, 12, 31)


def test_an_alert_is_raised_once_and_resolved_by_a_later_load(ws: Container,
                                                             tmp_path: Path) -> None:
    ing = Ingest(ws)
    day = dt.date(2025, 3, 4)
    ing.ingest("acme", [write(tmp_path / "trades_1.csv", _trades(range(1, 201), day=day))])
    assert _open(ws) == []

    # 20 of 220 rows quarantined (9.1 %): over the 5 % a batch may quarantine
    ing.ingest("acme", [write(tmp_path / "trades_2.csv", _trades(range(201, 401), day=day,
                                                           bad=20))])
    [a] = _open(ws)
    assert (a["table_name"], a["rule"], a["subject"]) == ("trades", "quarantine_rate", "")
    assert a["observed"] == pytest.approx(20 / 220) and a["threshold"] == 0.05
    assert a["detail"] == "20 of 220 rows quarantined"

    # judged again (on demand, twice): still the one open alert, no second row
    for _ in range(2):
        run = checks.check(ws, "acme")
        assert run.count("still open") == 3 and run.count("raised") == 0  # with the 2 stale
    assert [x["alert_id"] for x in _open(ws)] == [a["alert_id"]]
    assert _alert_rows(ws) == 1 + 2  # and the stale customers' and accounts' alerts

    # the next load: channel blank in half its rows (0 % before) and no bad rows
    t3 = ing.ingest("acme", [write(tmp_path / "trades_3.csv", _trades(range(401, 601), day=day,
                                                                null_every=2))])[0]
    by_rule = {x["rule"]: x for x in _open(ws)}
    assert set(by_rule) == {"null_rate_rise"}
    n = by_rule["null_rate_rise"]
    assert n["subject"] == "channel" and n["observed"] == pytest.approx(0.5)
    assert n["batch_id"] == t3.batch_id
    resolved = history.alerts(ws, "acme", "resolved")
    assert [x["alert_id"] for x in resolved] == [a["alert_id"]]
    assert resolved[0]["resolved_by"] == t3.batch_id and resolved[0]["status"] == "resolved"

    # channel back: the null-rate alert resolves; a new quarantine breach is a new alert
    ing.ingest("acme", [write(tmp_path / "trades_4.csv", _trades(range(601, 801), day=day,
                                                           bad=30))])
    [q2] = _open(ws)
    assert q2["rule"] == "quarantine_rate" and q2["alert_id"] != a["alert_id"]
    assert len(history.alerts(ws, "acme", "all", "trades")) == 3

    # freshness: a week later the trades are stale; a check raises it, newer trades resolve it
    ws.clock = Ticking(dt.datetime(2025, 3, 12, 2))
    run = checks.check(ws, "acme")
    stale = [ch for ch, o in run.outcomes if ch.rule == "freshness" and ch.breached]
    assert {ch.table for ch in stale} == {"trades", "customers", "accounts"}
    f = next(x for x in _open(ws) if x["rule"] == "freshness")
    assert f["observed"] == 8 and f["threshold"] == 4
    ing.ingest("acme", [write(tmp_path / "trades_5.csv", _trades(range(801, 1001),
                                                           day=dt.date(2025, 3, 11)))])
    assert _open(ws) == []  # clean and fresh: t4's quarantine alert resolves too
    assert {x["rule"] for x in history.alerts(ws, "acme", "resolved", "trades")} == {
        "quarantine_rate", "null_rate_rise", "freshness"}


def test_the_tenants_override_changes_the_thresholds(ws: Container, tmp_path: Path) -> None:
    (ws.root / "quality").mkdir()
    (ws.root / "quality" / "acme.yaml").write_text(
        "tables:\n  trades: {max_quarantine_rate: 0.5, max_lag_days: 30}\n", encoding="utf-8")
    ing = Ingest(ws)
    day = dt.date(2025, 2, 1)  # 32 days before the clock's today
    ing.ingest("acme", [write(tmp_path / "trades_.csv", _trades(range(1, 101), day=day, bad=25))])
    run = checks.check(ws, "acme", ["trades"])
    by = {ch.rule: ch for ch, _ in run.outcomes}
    assert not by["quarantine_rate"].breached and by["quarantine_rate"].threshold == 0.5
    assert by["freshness"].breached and by["freshness"].threshold == 30
    assert by["freshness"].observed == 32
    assert [x["rule"] for x in _open(ws)] == ["freshness"]


def test_a_bad_thresholds_file_stops_the_load_before_anything_is_written(
        ws: Container, tmp_path: Path) -> None:
    (ws.root / "quality").mkdir()
    bad = ws.root / "quality" / "acme.yaml"
    bad.write_text("tables:\n  trades: {max_quarantine_rate: high}\n", encoding="utf-8")
    with ws.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(ingest_log)).scalar_one()
    with pytest.raises(ConfigError) as e:
        Ingest(ws).ingest("acme", [write(tmp_path / "trades_.csv",
                                         _trades(range(1, 11), day=dt.date(2025, 3, 4)))])
    assert str(bad) in str(e.value)
    assert "tables.trades.max_quarantine_rate: Input should be a valid number" in str(e.value)
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ingest_log)).scalar_one() == before
    with pytest.raises(ConfigError, match="tables.trades.max_quarantine_rate"):
        checks.check(ws, "acme")
    bad.write_text("tables: [", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        history.freshness(ws, "acme")


def test_reading_refuses_an_unknown_table_or_status(ws: Container) -> None:
    with pytest.raises(ConfigError, match="table: no such table 'trade'"):
        history.history(ws, "acme", "trade")
    with pytest.raises(ConfigError, match="status: 'closed' is not one of open, resolved, all"):
        history.alerts(ws, "acme", "closed")
    with pytest.raises(ConfigError, match="table: no such table 'nope'"):
        checks.check(ws, "acme", ["nope"])
