"""Data-quality thresholds (packaged file, tenant override, clear errors), a load's profile
from Arrow batches, and the rules, judged on hand-made batches."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import yaml

from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.pipelines.quality import (
    Batch,
    LoadProfile,
    Profiler,
    check_table,
    parse_thresholds,
)

SH = ZoneInfo("Asia/Shanghai")
PACKAGED = yaml.safe_load((resources.files("caifu.data") / "quality" / "default.yaml")
                          .read_text(encoding="utf-8"))


def _parse(tenant: object = None):  # type: ignore[no-untyped-def]
    return parse_thresholds(PACKAGED, "default.yaml", registry(), tenant, "acme.yaml")


def test_packaged_thresholds_cover_every_table_with_its_business_date() -> None:
    t = _parse()
    assert t.of("trades").date_column == "trade_date" and t.of("trades").max_lag_days == 4
    assert t.of("cash_flows").date_column == "flow_time"
    assert t.of("customers").date_column == "opened_on"
    assert t.of("tenants").date_column is None and t.of("tenants").max_lag_days is None
    assert t.of("branches").max_lag_days is None  # master data: no freshness rule
    assert t.of("positions").max_quarantine_rate == 0.05
    assert t.of("positions").max_null_rate_rise == 0.20
    assert t.of("positions").null_rate_min_rows == 100


def test_business_dates_agree_with_the_metric_datasets_time_columns() -> None:
    """The metric layer dates each contract table too (datasets.yaml ``time``): one answer."""
    doc = yaml.safe_load((resources.files("caifu.data") / "metrics" / "datasets.yaml")
                         .read_text(encoding="utf-8"))
    t = _parse()
    compared = 0
    for d in doc["datasets"]:
        if "source" not in d and "from" not in d and d.get("time") and d["name"] in registry():
            assert t.of(d["name"]).date_column == d["time"], d["name"]
            compared += 1
    assert compared >= 12


def test_a_tenant_override_lays_only_what_it_names_over_the_packaged_file() -> None:
    t = _parse({"defaults": {"max_quarantine_rate": 0.01, "max_lag_days": 30},
                "tables": {"trades": {"max_lag_days": 1},
                           "positions": {"max_lag_days": None},
                           "app_events": {"max_null_rate_rise": 0.5}}})
    assert t.of("trades").max_lag_days == 1
    assert t.of("positions").max_lag_days is None          # switched off
    assert t.of("cash_flows").max_lag_days == 4            # the packaged table entry wins
    assert t.of("branches").max_lag_days == 30             # over the packaged defaults
    assert t.of("trades").max_quarantine_rate == 0.01
    assert t.of("app_events").max_null_rate_rise == 0.5
    assert t.of("trades").max_null_rate_rise == 0.20
    assert t.of("trades").date_column == "trade_date"
    assert t.sources == ("default.yaml", "acme.yaml")


@pytest.mark.parametrize(("doc", "message"), [
    ({"tables": {"trade": {"max_lag_days": 3}}}, "acme.yaml: tables.trade: no such table"),
    ({"tables": {"trades": {"max_lag_days": -1}}},
     "tables.trades.max_lag_days: Input should be greater than or equal to 0"),
    ({"tables": {"trades": {"max_lag": 3}}}, "tables.trades.max_lag: Extra inputs"),
    ({"defaults": {"max_quarantine_rate": 5}},
     "defaults.max_quarantine_rate: Input should be less than or equal to 1"),
    ({"defaults": {"max_quarantine_rate": "lots"}}, "defaults.max_quarantine_rate: Input "
                                                    "should be a valid number"),
    ({"tables": {"trades": {"date_column": "trade_time"}}},
     "acme.yaml: tables.trades.date_column: the business date of a table is caifu's"),
    ({"version": 2}, "acme.yaml: version: format version 2 is not supported"),
    (["max_lag_days"], "acme.yaml: expected a mapping"),
])
def test_a_bad_tenant_file_is_refused_naming_the_file_and_field(doc: object,
                                                               message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _parse(doc)
    assert message in str(e.value) and "acme.yaml" in str(e.value)


def test_a_packaged_date_column_must_be_a_date_of_its_table() -> None:
    bad = {**PACKAGED, "tables": {"trades": {"date_column": "amount"}}}
    with pytest.raises(ConfigError, match=r"tables.trades.date_column: 'amount' is not a date "
                                          r"or timestamp column of trades \(those: trade_date, "
                                          r"trade_time\)"):
        parse_thresholds(bad, "default.yaml", registry())


def test_the_profiler_counts_nulls_and_dates_as_batches_pass() -> None:
    p = Profiler(["id", "channel", "t"], "t", SH)
    ts = [dt.datetime(2025, 3, 3, 17, 0), dt.datetime(2025, 3, 1, 1, 0), None]
    p.add(pa.table({"id": ["a", "b", "c"], "channel": ["app", None, None],
                    "t": pa.array(ts, pa.timestamp("us"))}))
    p.add(pa.table({"id": ["d"], "channel": [None],
                    "t": pa.array([dt.datetime(2025, 2, 27, 16, 30)], pa.timestamp("us"))}))
    # an update that writes only id and t: its missing channel is no null written
    p.add(pa.table({"id": ["e"], "t": pa.array([None], pa.timestamp("us"))}),
          written=["id", "t"])
    r = p.result()
    assert r.rows == 5 and r.nulls == {"id": 0, "channel": 3, "t": 2}
    # 2025-03-03 17:00 UTC is the 4th in Shanghai; 2025-02-27 16:30 UTC the 28th
    assert (r.oldest, r.newest) == (dt.date(2025, 2, 28), dt.date(2025, 3, 4))
    assert r.null_rate("channel") == pytest.approx(0.6)


def _batch(bid: str, rows_in: int, quarantined: int, rows: int,
           nulls: dict[str, int]) -> Batch:
    return Batch(bid, rows_in, quarantined, LoadProfile(rows, nulls, "trade_date"))


def test_the_rules_judge_quarantine_null_rise_and_freshness() -> None:
    trades = registry()["trades"]
    rules = _parse().of("trades")
    today = dt.date(2026, 12, 8)
    latest = _batch("b2", 1000, 60, 940, {"channel": 470, "amount": 0})
    previous = _batch("b1", 1000, 0, 1000, {"channel": 100, "amount": 0})
    checks = {(c.rule, c.subject): c for c in
              check_table(trades, rules, latest, previous, dt.date(2026, 12, 1), today)}
    q = checks[("quarantine_rate", "")]
    assert q.breached and q.observed == pytest.approx(0.06) and q.threshold == 0.05
    n = checks[("null_rate_rise", "channel")]
    assert n.breached and n.observed == pytest.approx(0.5 - 0.1) and n.batch_id == "b2"
    f = checks[("freshness", "")]
    assert f.breached and f.observed == 7 and f.threshold == 4
    assert set(checks) == {("quarantine_rate", ""), ("null_rate_rise", "channel"),
                           ("freshness", "")}  # required columns have no null rule

    calm = check_table(trades, rules, _batch("b3", 1000, 50, 950, {"channel": 300}), latest,
                       dt.date(2026, 12, 4), today)
    assert [c.breached for c in calm] == [False, False, False]  # 5 % and 4 days: at the limit


def test_loads_too_small_to_compare_leave_the_null_rule_unjudged() -> None:
    trades = registry()["trades"]
    rules = _parse().of("trades")
    small = _batch("b2", 10, 0, 10, {"channel": 10})
    checks = check_table(trades, rules, small, _batch("b1", 500, 0, 500, {"channel": 0}),
                         None, dt.date(2026, 12, 8))
    assert [c.rule for c in checks] == ["quarantine_rate"]  # no dates: freshness unjudged


def test_a_disabled_rule_passes_so_its_open_alert_resolves() -> None:
    trades = registry()["trades"]
    rules = _parse({"tables": {"trades": {"max_lag_days": None, "max_quarantine_rate": None,
                                          "max_null_rate_rise": None}}}).of("trades")
    checks = check_table(trades, rules, _batch("b1", 10, 10, 0, {"channel": 0}), None,
                         dt.date(2020, 1, 1), dt.date(2026, 12, 8))
    assert checks and not any(c.breached for c in checks)
    assert {c.rule for c in checks} == {"quarantine_rate", "null_rate_rise", "freshness"}
