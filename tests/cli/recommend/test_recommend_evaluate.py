"""``caifu recommend evaluate`` on the scored 4,000-customer demo broker: every ranker's lists
re-checked by suitability (0 violations), the metrics computed on a real time split."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from caifu.services.recommend.evaluate import latest


def test_evaluate_prints_every_ranker_with_zero_violations(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c, _, exports = scored
    out = tmp_path / "rec.json"
    got = CliRunner().invoke(app, ["recommend", "evaluate", "-t", "acme", "-w", str(c.root),
                                   "--json", str(out), "--truth",
                                   str(exports / "_ground_truth")])
    assert got.exit_code == 0, got.output
    for name in ("popularity", "collaborative", "lambdarank", "NDCG@10", "violations"):
        assert name in got.output
    result = json.loads(out.read_text("utf-8"))
    assert [r["name"] for r in result["rankers"]] == ["popularity", "collaborative",
                                                      "lambdarank", "propensity (actions)",
                                                      "oracle"]
    by = {r["name"]: r for r in result["rankers"]}
    # ranked by the hidden utilities, the oracle's lists are the hidden ideal exactly
    assert by["oracle"]["hidden"]["ndcg"] == 1.0
    # the policy learns more of the hidden preferences than the segment's popularity
    assert by["lambdarank"]["hidden"]["ndcg"] > by["popularity"]["hidden"]["ndcg"]
    assert result["customers"] > 100 and 0 < result["eligible_items"] <= result["items"]
    for r in result["rankers"]:
        assert r["violations"] == 0
        o = r["observed"]
        if r["name"] == "propensity (actions)":  # lists actions only: judged below
            assert 0 <= o["ndcg"] <= 1 and o["coverage"] <= 5 / result["eligible_items"]
            continue
        assert o["evaluated"] == result["customers"]
        assert 0 < o["ndcg"] <= 1 and 0 < o["recall"] <= 1 and 0 < o["map"] <= 1
        assert 0 < o["coverage"] <= 1
    # the test window follows the cutoff: nothing a ranker learnt comes from after it
    assert result["cutoff"] < result["newest"]
    # kept in the workspace for the value report's section 5
    assert latest(c, "acme") == result
    assert "actions only" in got.output


def test_evaluate_ranks_actions_with_propensity_models_from_before_the_cutoff(
        scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c, scoring, _ = scored
    out = tmp_path / "rec.json"
    got = CliRunner().invoke(app, ["recommend", "evaluate", "-t", "acme", "-w", str(c.root),
                                   "--json", str(out)])
    assert got.exit_code == 0, got.output
    result = json.loads(out.read_text("utf-8"))
    actions = result["actions"]
    # the default rules hold at most 2 actions in a list: the actions-only lists are as long
    assert actions["k"] == 2
    assert [r["name"] for r in actions["rankers"]] == ["popularity", "collaborative",
                                                       "lambdarank", "propensity (actions)"]
    for r in actions["rankers"]:
        assert r["violations"] == 0
        o = r["observed"]
        assert 0 < o["evaluated"] <= result["customers"]
        for key in ("ndcg", "recall", "map", "coverage"):
            assert 0 <= o[key] <= 1, (r["name"], key, o[key])
    level2 = {a["item_id"]: a for a in actions["customers_by_action"]}["A:subscribe_level2"]
    assert 0 < level2["took_up"] < level2["eligible"]
    for m in level2["rankers"].values():
        assert 0 <= m["auc"] <= 1 and 0 <= m["pr_auc"] <= 1 and m["lift_top_decile"] >= 0
    # who subscribes is what the Level-2 model was made for: it ranks the eligible customers
    # better than chance and than the segment's popularity (one number per segment)
    assert level2["rankers"]["propensity (actions)"]["auc"] > max(
        0.6, level2["rankers"]["popularity"]["auc"])
    # the scoring run's models learnt from outcomes up to the newest day, after the cutoff:
    # passed over, and models trained with outcomes to the cutoff are used instead
    assert scoring.as_of.isoformat() == result["newest"]
    used = [n for n in result["notes"] if n.startswith("propensity level2_90d")]
    assert used == [f"propensity level2_90d as of {result['cutoff']}: trained for this day "
                    f"(outcomes to {result['cutoff']}); passed over: "
                    f"{c.root}/models/acme/{result['newest']}/level2_90d.json: trained on "
                    f"outcomes up to {result['newest']}, after {result['cutoff']}; use a model "
                    f"trained with outcomes up to {result['cutoff']} at the latest"]


def test_evaluate_explains_a_bad_tenant_config(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    path = c.root / "recommend" / "acme.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("caps: {per_customer_per_7_days: -1}\n", "utf-8")
    try:
        got = CliRunner().invoke(app, ["recommend", "evaluate", "-t", "acme", "-w",
                                       str(c.root)])
    finally:
        path.unlink()
    assert got.exit_code == 2
    assert "acme.yaml" in got.output and "caps.per_customer_per_7_days" in got.output
