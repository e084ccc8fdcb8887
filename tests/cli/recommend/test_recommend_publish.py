"""``caifu recommend publish``, ``show`` and ``outcomes`` on the small demo broker: the lists
published for every customer, one customer's list as the sidebar would show it (a preview,
nothing logged), conversions attributed from the interaction log within the window."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from caifu.adapters.sor.recommend_models import recommendation_lists, recommendation_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.cli import app
from caifu.core.identity import Principal
from caifu.recommend.catalogue import CONTENT, EPOCH, FUND
from caifu.recommend.interactions import CONVERTED, VIEWED
from caifu.services.recommend import inputs as rin
from caifu.services.recommend import serving
from tests.conftest import Broker

pytestmark = pytest.mark.slow  # fits the policy on a demo broker


def _shown(rec_id: str, customer_id: str, item_id: str, item_type: str, at: dt.datetime
           ) -> dict[str, object]:
    return {"rec_id": rec_id, "customer_id": customer_id, "item_id": item_id,
            "item_type": item_type, "surface": "sidebar", "rank": 1, "score": 1.0,
            "propensity": 1.0, "policy_version": "v", "shown_at": at, "shown_by": "test"}


def test_publish_show_and_outcomes(small_broker: Broker, tmp_path: Path) -> None:
    c = small_broker.copy(tmp_path / "ws")
    ws = str(c.root)
    run = CliRunner()
    got = run.invoke(app, ["recommend", "publish", "-t", "acme", "-w", ws, "--k", "5",
                           "--spares", "3"])
    assert got.exit_code == 0, got.output
    assert "recommendation lists as of 2026-10-30" in got.output and "600" in got.output
    with c.engine.connect() as conn:
        rows = conn.execute(select(recommendation_lists.c.customer_id,
                                   recommendation_lists.c.k,
                                   recommendation_lists.c.items_json)).all()
    assert len(rows) == 600 and {r.k for r in rows} == {5}
    assert max(len(json.loads(r.items_json)) for r in rows) == 8
    full = {r.customer_id: r.items_json for r in rows if len(json.loads(r.items_json)) == 8}
    with c.engine.connect() as conn:  # the longest-valid assessment: shown at today's date
        latest = scrm_repo.latest_assessments(conn, "acme", list(full))
    cid = max(full, key=lambda x: (latest[x].valid_until, x))
    text = full[cid]

    got = run.invoke(app, ["recommend", "show", "-t", "acme", "-w", ws, cid, "--k", "5",
                           "--text"])
    assert got.exit_code == 0, got.output
    # judged at the wall clock's today: what the service shows now, from the published list
    now = serving.for_customer(c, Principal("acme", "t", "ops"), cid, 5, record=False)
    assert 0 < len(now.items) <= 5
    assert {i["item_id"] for i in now.items} <= {x["item_id"] for x in json.loads(text)}
    for i in now.items:
        assert i["item_id"] in got.output and i["reason"] in got.output
    assert got.output.count("市场有风险，投资需谨慎。") == len(now.items)
    with c.engine.connect() as conn:  # a preview: nothing logged
        assert conn.execute(select(func.count()).select_from(recommendation_log)).scalar() == 0
    missing = run.invoke(app, ["recommend", "show", "-t", "acme", "-w", ws, "NOPE"])
    assert missing.exit_code == 2 and "no customer 'NOPE'" in missing.output

    # recommendations shown before uptakes the broker's records hold
    data = rin.read(c, "acme", rin.load_config(c, "acme")[0])
    inter, cat = data.interactions, data.cat
    def first(kind: int, grade: int) -> tuple[str, str, dt.date]:  # in the last 14 days
        for cust, i, d, g in zip(inter.customer_id, inter.item, inter.day, inter.grade,
                                 strict=True):
            day = EPOCH + dt.timedelta(days=int(d))
            if cat.item_type[i] == kind and g == grade and day >= dt.date(2026, 10, 20):
                return str(cust), str(cat.item_id[i]), day
        raise AssertionError("no such interaction in the demo")
    bought = first(FUND, CONVERTED)
    read = first(CONTENT, VIEWED)
    viewed_fund = first(FUND, VIEWED)
    noon = dt.time(4)
    shown = [
        _shown("a" * 32, bought[0], bought[1], "fund",
               dt.datetime.combine(bought[2] - dt.timedelta(days=2), noon)),  # converts
        _shown("b" * 32, read[0], read[1], "content",
               dt.datetime.combine(read[2], dt.time(0, 5))),  # the same day: converts
        _shown("c" * 32, bought[0], bought[1], "fund",
               dt.datetime.combine(bought[2] + dt.timedelta(days=1), noon)),  # after: no
    ]
    if not any(c_ == viewed_fund[0] and i == viewed_fund[1] and g == CONVERTED for c_, i, g in
               zip(inter.customer_id, cat.item_id[inter.item], inter.grade, strict=True)):
        shown.append(_shown("d" * 32, viewed_fund[0], viewed_fund[1], "fund",  # viewed only
                            dt.datetime.combine(viewed_fund[2] - dt.timedelta(days=1), noon)))
    with c.engine.begin() as conn:
        repo.add_shown(conn, "acme", shown)
    got = run.invoke(app, ["recommend", "outcomes", "-t", "acme", "-w", ws, "--window", "14"])
    assert got.exit_code == 0, got.output
    assert f"2 of {len(shown)} open recommendations converted within 14 days" in got.output
    with c.engine.connect() as conn:
        converted = {r.rec_id: r.converted_at for r in conn.execute(
            select(recommendation_log.c.rec_id, recommendation_log.c.converted_at))}
    assert converted["a" * 32] == dt.datetime.combine(bought[2], dt.time())
    assert converted["b" * 32] == dt.datetime.combine(read[2], dt.time(0, 5))
    assert converted["c" * 32] is None and converted.get("d" * 32) is None
