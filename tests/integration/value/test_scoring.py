"""Scoring on a small demo broker: no leakage, eligible customers only, models that beat the
heuristic and recover the hidden traits, scores that become model tags with reasons."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import ibis
import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.analytics import propensity
from caifu.pipelines.profile import ProfileInputs, local_date, profile_features
from caifu.services.container import Container
from caifu.services.profiles.build import SCORE_TABLE, Build
from caifu.services.value.scoring import latest_run

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

AS_OF = dt.date(2026, 10, 30)


def _scores(c: Container) -> dict[str, dict[str, float]]:
    t = ds.dataset(c.lake.files("acme", SCORE_TABLE), format="parquet").to_table()
    out: dict[str, dict[str, float]] = {}
    for row in t.select(["score", "customer_id", "value"]).to_pylist():
        out.setdefault(row["score"], {})[row["customer_id"]] = row["value"]
    return out


def _cut(inputs: ProfileInputs, cutoff: dt.date) -> ProfileInputs:
    """The same inputs as they were on the cutoff: facts after it removed, dated master data
    (permissions, Level-2, assessments, WeCom follows) undone where it happened later."""
    def upto(t, column, ts=False):  # type: ignore[no-untyped-def]
        if t is None:
            return None
        day = local_date(t[column], 8) if ts else t[column]
        return t.filter(day <= cutoff)

    def undo_later(t, *columns):  # type: ignore[no-untyped-def]
        return t.mutate(**{c: ibis.ifelse(t[c] > cutoff, ibis.null(t[c].type()), t[c])
                           for c in columns})

    a = undo_later(inputs.accounts, "chinext_opened_on", "star_opened_on", "bse_opened_on",
                   "margin_opened_on", "level2_since")
    a = a.mutate(level2_until=ibis.ifelse(a.level2_since.isnull(),
                                          ibis.null("date"), a.level2_until))
    f = upto(inputs.wecom_follows, "added_at", True)
    f = f.mutate(removed_at=ibis.ifelse(local_date(f.removed_at, 8) > cutoff,
                                        ibis.null("timestamp"), f.removed_at))
    return ProfileInputs(
        customers=inputs.customers, accounts=a, securities=inputs.securities,
        fund_products=inputs.fund_products,
        suitability_assessments=upto(inputs.suitability_assessments, "assessed_on"),
        wecom_follows=f,
        trades=upto(inputs.trades, "trade_date"), positions=upto(inputs.positions, "snapshot_date"),
        cash_flows=upto(inputs.cash_flows, "flow_time", True),
        fund_transactions=upto(inputs.fund_transactions, "txn_date"),
        app_events=upto(inputs.app_events, "event_time", True))


def test_features_at_a_cutoff_ignore_everything_after_it(scored) -> None:  # type: ignore[no-untyped-def]
    """The leakage guard: a training row's features are what was knowable at its cutoff."""
    c, result, _ = scored
    cutoff = dt.date.fromisoformat(result.cutoffs["backtest_train"][0])
    with c.scratch("leak") as scratch:
        s = c.session("duckdb", scratch)
        inputs = Build(c).load_inputs(s, "acme")
        full = s.to_arrow(profile_features(inputs, cutoff, 8)).sort_by("customer_id")
        cut = s.to_arrow(profile_features(_cut(inputs, cutoff), cutoff, 8)).sort_by("customer_id")
        later = s.to_arrow(inputs.trades.filter(inputs.trades.trade_date > cutoff).count()
                           .as_table())
        a = inputs.accounts
        opened_later = s.to_arrow(a.filter((a.chinext_opened_on > cutoff)
                                           | (a.level2_since > cutoff)).count().as_table())
        s.close()
    assert later.column(0)[0].as_py() > 10_000  # there was plenty to leak
    assert opened_later.column(0)[0].as_py() > 50  # … through permissions too
    columns = propensity.feature_columns(full)
    assert full.select(columns).equals(cut.select(columns))
    # and the label windows start after the training cutoffs and end by the data's end
    for cut_date in result.cutoffs["backtest_train"] + result.cutoffs["production_train"]:
        assert dt.date.fromisoformat(cut_date) + dt.timedelta(days=90) <= AS_OF


def test_only_eligible_customers_are_scored(scored) -> None:  # type: ignore[no-untyped-def]
    c, result, _ = scored
    assert result.as_of == AS_OF and not [t.problem for t in result.targets if t.problem]
    scores = _scores(c)
    with c.scratch("elig") as scratch:
        s = c.session("duckdb", scratch)
        inputs = Build(c).load_inputs(s, "acme")
        f = s.to_arrow(profile_features(inputs, AS_OF, 8))
        s.close()
    has_chinext = set(pc.filter(f["customer_id"], f["chinext_opened"]).to_pylist())
    has_level2 = set(pc.filter(f["customer_id"], f["level2_active"]).to_pylist())
    active = set(pc.filter(f["customer_id"], pc.greater(f["trades_90d"], 0)).to_pylist())
    assert scores["chinext_90d"] and not has_chinext & scores["chinext_90d"].keys()
    assert scores["level2_90d"] and not has_level2 & scores["level2_90d"].keys()
    assert set(scores["churn_90d"]) <= active  # churn is about customers still trading
    for values in scores.values():
        v = np.array(list(values.values()))
        assert ((v >= 0) & (v <= 1)).all()


def test_models_beat_the_heuristic_and_write_their_files(scored) -> None:  # type: ignore[no-untyped-def]
    c, result, _ = scored
    by = {t.target: t for t in result.targets}
    for name in ("chinext_90d", "churn_90d", "fund_purchase_90d"):
        b = by[name].backtest
        assert b["lightgbm"]["auc"] > 0.7, (name, b["lightgbm"])
        assert b["lightgbm"]["auc"] > b["heuristic"]["auc"], (name, b)
        assert b["lightgbm"]["lift_top_decile"] > 2
    run = latest_run(c, "acme")
    assert run is not None and run["as_of"] == AS_OF.isoformat()
    folder = Path(result.folder)
    meta = json.loads((folder / "churn_90d.json").read_text())
    assert "trades_90d" in meta["features"] and "channel_app" in meta["features"]
    assert not set(meta["features"]) & propensity.NOT_FEATURES  # today's state never a feature
    assert (folder / "churn_90d.txt").read_text().startswith("tree")
    assert meta["calibration"]["x"] == sorted(meta["calibration"]["x"])
    # the production model learnt from the profiles at as-of − 180 and − 90 days and their
    # 90-day outcomes: they end on the as-of date (what the recommender's leak guard reads)
    assert meta["labels_until"] == AS_OF.isoformat() == run["cutoffs"]["scored"][0]


def test_scores_recover_the_hidden_traits(scored) -> None:  # type: ignore[no-untyped-def]
    """The demo broker's latent traits (never read by the product) against the scores: the
    top decile of the churn and fund-purchase scores holds customers with clearly more of
    the trait behind them. (ChiNext and Level-2 interest are not asserted: customers with
    strong interest opened the permission before the cutoff, so the eligible pool left has
    little of it to find — bench/propensity.py reports those figures.)"""
    c, _, exports = scored
    truth = pq.read_table(exports / "_ground_truth" / "latent_traits.parquet")
    trait = {"churn_90d": ("churn_hazard", 1.15), "fund_purchase_90d": ("fund_affinity", 1.3)}
    scores = _scores(c)
    for name, (column, margin) in trait.items():
        latent = dict(zip(truth["customer_id"].to_pylist(), truth[column].to_pylist(),
                          strict=True))
        values = scores[name]
        ids = sorted(values, key=lambda k: (-values[k], k))
        top = np.mean([latent[k] for k in ids[: len(ids) // 10]])
        everyone = np.mean([latent[k] for k in ids])
        assert top > margin * everyone, (name, top, everyone)


def test_scores_become_model_tags_with_reasons(scored) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    Build(c).build("acme")
    with c.engine.connect() as conn:
        rows = [r for r in profiles_repo.assignments(conn, "acme") if r["kind"] == "model"]
    assert rows
    scores = _scores(c)
    thresholds = {"churn_risk": ("churn_90d", 0.6), "chinext_lead": ("chinext_90d", 0.3),
                  "level2_lead": ("level2_90d", 0.15),
                  "fund_purchase_lead": ("fund_purchase_90d", 0.5)}
    for tag_id, (score, minimum) in thresholds.items():
        expected = {k for k, v in scores[score].items() if v >= minimum}
        got = {r["customer_id"] for r in rows if r["tag_id"] == tag_id}
        assert got == expected, tag_id
    evidence = [json.loads(r["evidence_json"]) for r in rows]
    assert all(e["reasons"] and e["model_version"] for e in evidence)
    assert all(r["contribution"] > 0 for e in evidence for r in e["reasons"])
