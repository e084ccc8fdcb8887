"""Lifecycle stages on a small demo broker (2,000 customers, seed 5), checked against the
ground truth the product never reads (``_ground_truth/latent_traits.parquet``).

What the generator plants (``data/demo/people.py``, ``activity.py``, ``funds.py``):

- ``transfer_out`` churners: the account is closed and marked transferred out 1–5 days after
  ``churn_date``, with a transfer-out cash flow that day → they must be ``churned`` from then;
- ``dormant`` churners: trades and fund purchases stop at ``churn_date`` (cash may still leave)
  → no trade for ``active.days`` makes them ``declining``, no activity for ``dormant.days``
  ``dormant``;
- ``never_trades`` customers have no trades at all → never ``active`` (nor first loss).

Seed 5 gives 72/72 transfer-outs churned, 110/110 long-dormant churners dormant, 0 never-traders
active; the thresholds below leave room for a different seed, not for a lost effect.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.cli import app
from caifu.core.errors import ConfigError
from caifu.data.contracts import registry
from caifu.data.demo import generate
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.profiles.lifecycle import (
    STAGE_TABLE,
    TRANSITION_TABLE,
    Lifecycle,
    LifecycleResult,
    config_path,
)
from caifu.settings import Settings

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

AS_OF = dt.date(2026, 10, 30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Container, LifecycleResult, list[dict]]]:
    out = tmp_path_factory.mktemp("demo") / "exports"
    generate(out, customers=2000, seed=5)
    c = init_workspace(tmp_path_factory.mktemp("ws") / "ws", Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    Ingest(c).ingest("acme", [out])
    result = Lifecycle(c).run("acme")
    truth = ds.dataset(out / "_ground_truth" / "latent_traits.parquet").to_table().to_pylist()
    yield c, result, truth
    c.close()


def _stage(r: LifecycleResult) -> dict[str, str]:
    return dict(zip(r.stages["customer_id"].to_pylist(), r.stages["stage"].to_pylist(),
                    strict=True))


def test_every_customer_has_exactly_one_current_stage(demo) -> None:  # type: ignore[no-untyped-def]
    c, r, _ = demo
    assert r.as_of == AS_OF
    with c.engine.connect() as conn:
        customers = ingest_repo.rows(conn, "acme", registry()["customers"])
    ids = r.stages["customer_id"].to_pylist()
    assert len(ids) == len(set(ids)) == customers.num_rows == 2000
    assert sum(r.counts.values()) == 2000
    last = r.monthly.filter(pc.equal(r.monthly["month_end"], AS_OF)).to_pylist()
    assert {x["stage"]: x["customers"] for x in last} == r.counts


def test_transfer_outs_are_churned_on_their_closing_day(demo) -> None:  # type: ignore[no-untyped-def]
    _, r, truth = demo
    stage = _stage(r)
    gone = [t for t in truth if t["churn_kind"] == "transfer_out"]
    assert len(gone) >= 40
    churned = [t for t in gone if stage[t["customer_id"]] == "churned"]
    assert len(churned) / len(gone) >= 0.95  # seed 5: 72/72
    # the transition is dated on the closing day, 1–5 days after the hidden churn date
    # (or on the tracking start when the customer left before it)
    rows = r.transitions.filter(pc.equal(r.transitions["to_stage"], "churned")).to_pylist()
    when = {x["customer_id"]: x for x in rows}
    on_time = 0
    for t in churned:
        x = when[t["customer_id"]]
        if x["trigger"] == "tracking_start":
            assert x["date"] >= t["churn_date"]
            continue
        assert x["trigger"] == "account_transferred_out"
        assert json.loads(x["values_json"])["closed_on"] == x["date"].isoformat()
        on_time += 1 <= (x["date"] - t["churn_date"]).days <= 5
    assert on_time >= 0.9 * len([t for t in churned
                                 if when[t["customer_id"]]["trigger"] != "tracking_start"])
    # nobody who never left is churned (seed 5: 0 of 1,786)
    stayed = [t for t in truth if t["churn_kind"] == "none"]
    assert sum(stage[t["customer_id"]] == "churned" for t in stayed) <= 0.01 * len(stayed)


def test_dormant_churners_are_dormant_once_the_threshold_has_passed(demo) -> None:  # type: ignore[no-untyped-def]
    _, r, truth = demo
    stage = _stage(r)
    n = r.rules.dormant.days
    quiet = [t for t in truth if t["churn_kind"] == "dormant"]
    long_ago = [t for t in quiet if t["churn_date"] <= AS_OF - dt.timedelta(days=n + 14)]
    assert len(long_ago) >= 50
    assert sum(stage[t["customer_id"]] == "dormant" for t in long_ago) / len(long_ago) >= 0.95
    # stopped more than active.days (+ slack) ago but not yet dormant.days: lapsed, not active
    lapsed = [t for t in quiet
              if AS_OF - dt.timedelta(days=n + 14) < t["churn_date"]
              <= AS_OF - dt.timedelta(days=r.rules.active.days + 14)]
    assert all(stage[t["customer_id"]] in ("declining", "dormant") for t in lapsed)


def test_never_traders_are_never_active(demo) -> None:  # type: ignore[no-untyped-def]
    _, r, truth = demo
    never = {t["customer_id"] for t in truth if t["never_trades"]}
    assert len(never) >= 300
    entered = Counter(x["to_stage"] for x in r.transitions.to_pylist()
                      if x["customer_id"] in never)
    assert entered["active"] == entered["first_loss"] == 0
    stage = _stage(r)
    assert Counter(stage[c] for c in never)["active"] == 0


def test_transitions_are_dated_on_their_triggers(demo) -> None:  # type: ignore[no-untyped-def]
    c, r, _ = demo
    trades = ds.dataset(c.lake.files("acme", "trades"), format="parquet").to_table(
        columns=["customer_id", "trade_date"])
    first = trades.group_by("customer_id").aggregate([("trade_date", "min")])
    first_trade = dict(zip(first["customer_id"].to_pylist(),
                           first["trade_date_min"].to_pylist(), strict=True))
    rows = r.transitions.to_pylist()
    firsts = [x for x in rows if x["trigger"] == "first_trade"]
    assert len(firsts) >= 200
    assert all(x["date"] == first_trade[x["customer_id"]] for x in firsts)
    dormant = [json.loads(x["values_json"]) | {"date": x["date"]}
               for x in rows if x["trigger"] == "no_activity"]
    assert dormant and all(v["days_without_activity"] == r.rules.dormant.days for v in dormant)
    # an active customer lapses exactly active.days after the last trade; one leaving a
    # timed stage (reactivated, first loss) may have lapsed during it: never earlier
    lapsed = [(x["from_stage"], json.loads(x["values_json"]), x["date"])
              for x in rows if x["trigger"] == "no_recent_trade"]
    gap = [(s, (d - dt.date.fromisoformat(v["last_trade_date"])).days) for s, v, d in lapsed]
    assert [g for s, g in gap if s == "active"].count(r.rules.active.days) >= 100
    assert all(g == r.rules.active.days for s, g in gap if s == "active")
    assert all(g >= r.rules.active.days for _, g in gap)
    # a customer's rows chain: each starts where the previous one ended
    by: dict[str, list[dict]] = {}
    for x in rows:
        by.setdefault(x["customer_id"], []).append(x)
    for chain in by.values():
        assert chain[0]["from_stage"] is None
        for a, b in zip(chain, chain[1:], strict=False):
            assert b["from_stage"] == a["to_stage"] and b["date"] >= a["date"]


def test_lake_snapshots_hold_stages_and_transitions(demo) -> None:  # type: ignore[no-untyped-def]
    c, r, _ = demo
    stages = ds.dataset(c.lake.files("acme", STAGE_TABLE), format="parquet").to_table()
    assert stages.num_rows == 2000
    assert set(stages["as_of"].to_pylist()) == {AS_OF}
    moves = ds.dataset(c.lake.files("acme", TRANSITION_TABLE), format="parquet").to_table()
    assert moves.num_rows == r.transitions.num_rows
    assert moves.column_names[:4] == ["as_of", "customer_id", "seq", "date"]


def test_tenant_thresholds_and_a_bad_file(demo) -> None:  # type: ignore[no-untyped-def]
    c, r, _ = demo
    path = config_path(c, "acme")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text("dormant:\n  days: 120\n", encoding="utf-8")
        quick = Lifecycle(c).run("acme", write=False)
        assert quick.rules_source == str(path) and quick.rules.dormant.days == 120
        assert quick.counts["dormant"] > r.counts["dormant"]
        path.write_text("dormant:\n  days: 60\n", encoding="utf-8")  # not above active.days
        with pytest.raises(ConfigError, match=r"acme\.yaml: invalid lifecycle configuration"):
            Lifecycle(c).run("acme", write=False)
    finally:
        path.unlink()


def test_cli_counts_flows_and_one_customer_without_names(demo) -> None:  # type: ignore[no-untyped-def]
    c, r, _ = demo
    moved = Counter(r.transitions["customer_id"].to_pylist()).most_common(1)[0][0]
    res = CliRunner().invoke(app, ["lifecycle", "-t", "acme", "-w", str(c.root), "--customer",
                                   moved])
    assert res.exit_code == 0, res.output
    for text in ("生命周期阶段（2026-10-30）", "阶段流转 2026-07-31 → 2026-10-30", "休眠",
                 f"客户 {moved} 的阶段变化", f"{r.counts['active']:,}",
                 "lifecycle_customers v1", "lifecycle_flow_customers v1"):
        assert text in res.output
    # the counts printed are the metrics over what the run wrote, equal to the run's own
    row = next(x for x in res.output.splitlines() if " dormant " in x)
    assert f" {r.counts['dormant']:,} " in row
    flows = r.flows(r.flow_start).to_pylist()
    top = max(flows, key=lambda f: f["customers"])
    assert f"{top['customers']:,}" in res.output
    assert r.flow_start == dt.date(2026, 7, 31)
    with c.engine.connect() as conn:
        names = ingest_repo.rows(conn, "acme", registry()["customers"])["name"].to_pylist()
    assert not [n for n in names if len(n) >= 2 and n in res.output]
    bad = CliRunner().invoke(app, ["lifecycle", "-t", "acme", "-w", str(c.root), "--as-of",
                                   "2020-01-01"])
    assert bad.exit_code == 2 and "before the first fact" in bad.output
