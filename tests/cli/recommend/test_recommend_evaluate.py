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
                                                      "lambdarank", "oracle"]
    by = {r["name"]: r for r in result["rankers"]}
    # ranked by the hidden utilities, the oracle's lists are the hidden ideal exactly
    assert by["oracle"]["hidden"]["ndcg"] == 1.0
    # the policy learns more of the hidden preferences than the segment's popularity
    assert by["lambdarank"]["hidden"]["ndcg"] > by["popularity"]["hidden"]["ndcg"]
    assert result["customers"] > 100 and 0 < result["eligible_items"] <= result["items"]
    for r in result["rankers"]:
        assert r["violations"] == 0
        o = r["observed"]
        assert o["evaluated"] == result["customers"]
        assert 0 < o["ndcg"] <= 1 and 0 < o["recall"] <= 1 and 0 < o["map"] <= 1
        assert 0 < o["coverage"] <= 1
    # the test window follows the cutoff: nothing a ranker learnt comes from after it
    assert result["cutoff"] < result["newest"]
    # kept in the workspace for the value report's section 5
    assert latest(c, "acme") == result


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
