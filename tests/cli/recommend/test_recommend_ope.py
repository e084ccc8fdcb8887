"""``caifu recommend ope``: the estimates table over a served, clicked log (the logging
policy as the target, whose every estimate is the on-policy clicks per list counted here),
and a clear refusal when the log is empty."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from typer.testing import CliRunner

from caifu.adapters.sor.recommend_models import recommendation_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.cli import app
from caifu.core.clock import FixedClock
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.recommend import serving
from tests.integration.recommend.test_serving_explore import explore_config
from tests.integration.recommend.world import C1_LIST, NOON, seed, write_lists

OPS = Principal("acme", "acme.ops", "ops")


def test_ope_prints_the_estimates(workspace: Container) -> None:
    c = workspace
    seed(c)
    write_lists(c, "acme", {"C1": C1_LIST, "C3": C1_LIST})
    explore_config(c, 0.5)
    for d in range(20):
        c.clock = FixedClock(NOON + dt.timedelta(days=d))
        for cid in ("C1", "C3"):
            serving.for_customer(c, OPS, cid, 2, "sidebar")
    with c.engine.begin() as conn:  # the first item of every list clicked, and N2 wherever
        rows = conn.execute(select(recommendation_log.c.rec_id, recommendation_log.c.rank,
                                   recommendation_log.c.item_id)).all()
        clicked = [r.rec_id for r in rows if r.rank == 1 or r.item_id == "N2"]
        for rec_id in clicked:
            repo.mark(conn, "acme", rec_id, "clicked", NOON)
    got = CliRunner().invoke(app, ["recommend", "ope", "-t", "acme", "-w", str(c.root),
                                   "--target", "logging", "--since", "365"])
    assert got.exit_code == 0, got.output
    per_list = f"{len(clicked) / 40:.4f}"
    assert "clicked per list for target logging" in got.output
    for name in ("IPS", "SNIPS", "clipped IPS (cap 10)", "logging (on-policy)"):
        line = next(x for x in got.output.splitlines() if name in x)
        assert per_list in line, (name, line)
    assert "40 lists of 2 customers" in got.output
    assert "exploration rate(s) 0.5" in got.output and "0.0%" in got.output  # none unsupported


def test_an_empty_log_is_refused_clearly(workspace: Container) -> None:
    got = CliRunner().invoke(app, ["recommend", "ope", "-t", "acme", "-w", str(workspace.root),
                                   "--target", "logging"])
    assert got.exit_code == 2
    assert "no recommendations logged since" in got.output
    assert "explore.epsilon > 0" in got.output
    bad = CliRunner().invoke(app, ["recommend", "ope", "-t", "acme", "-w",
                                   str(workspace.root), "--reward", "opened"])
    assert bad.exit_code == 2 and "unknown reward 'opened'" in bad.output
