"""``serving.publish`` on the small demo broker (600 customers): every customer's list stored
as the fitted policy ranks it, every stored pair suitable by ``judge`` against the system of
record, exactly k whenever k are eligible; replaced whole; a stale mask publishes nothing;
then a list served after a lower assessment, with the spares filling in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from caifu.adapters.sor.models import restricted_customers
from caifu.adapters.sor.recommend_models import recommendation_lists
from caifu.adapters.sor.repos import recommend as repo
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.adapters.sor.repos.customer_scope import Scope
from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError
from caifu.core.identity import Principal
from caifu.core.suitability import judge
from caifu.services.container import Container
from caifu.services.recommend import serving
from tests.integration.recommend.conftest import SPARES, K, Published
from tests.integration.recommend.world import assess

pytestmark = pytest.mark.slow  # a fitted policy on a demo broker

OPS = Principal("acme", "acme.ops", "ops")


def _lists(c: Container) -> dict[str, list[dict[str, object]]]:
    with c.engine.connect() as conn:
        rows = conn.execute(select(recommendation_lists.c.customer_id,
                                   recommendation_lists.c.items_json)).all()
    return {cid: json.loads(text) for cid, text in rows}


def test_every_customer_gets_the_policys_list(published: Published, tmp_path: Path) -> None:
    c, f = published.broker.copy(tmp_path / "ws"), published.fitted
    stored = _lists(c)
    assert sorted(stored) == f.ids
    rows = np.arange(len(f.ids))
    lists, scores = f.lists(rows, K + SPARES)
    eligible = f.elig.of(rows).sum(axis=1)
    for r, cid in enumerate(f.ids):
        want = [str(f.data.cat.item_id[i]) for i in lists[r] if i >= 0]
        got = stored[cid]
        assert [x["item_id"] for x in got] == want, cid
        assert [x["score"] for x in got] == pytest.approx(
            [float(s) for s, i in zip(scores[r], lists[r], strict=True) if i >= 0], abs=1e-6)
        assert len(got) == min(K + SPARES, eligible[r])  # short only when fewer are eligible
        assert all(isinstance(x["reason"], str) and x["reason"] for x in got)
    with c.engine.connect() as conn:
        meta = conn.execute(select(recommendation_lists.c.as_of,
                                   recommendation_lists.c.policy_version,
                                   recommendation_lists.c.k).distinct()).all()
        latest = scrm_repo.latest_assessments(conn, "acme", f.ids)
        everyone = Scope(tenant="acme", kind="tenant", include_restricted=True)
        masters = {cid: repo.customer_row(conn, everyone, cid) for cid in f.ids}
        funds = repo.fund_rows(conn, "acme", [x["item_id"][1:] for v in stored.values()
                                              for x in v if x["item_type"] == "fund"])
    assert meta == [(f.day, f.version, K)]
    assert sum(map(len, stored.values())) > 5000 and sum(1 for v in stored.values() if v) > 400
    # every stored pair, judged from the system of record (not from the mask's columns)
    for cid, items in stored.items():
        m = masters[cid]
        inv = serving.investor(latest.get(cid), bool(m is not None and m.professional))
        for x in items:
            level = funds[x["item_id"][1:]].risk_level if x["item_type"] == "fund" \
                else x["risk_level"]
            verdict = judge(inv, str(level), f.day, horizon=x["horizon"], variety=x["variety"])
            assert verdict.may_recommend, (cid, x["item_id"], verdict.rule)
            assert m is not None and m.marketing_consent is not False


def test_a_publish_replaces_the_lists_without_storage_only_customers(
        published: Published, tmp_path: Path) -> None:
    c, f = published.broker.copy(tmp_path / "ws"), published.fitted
    gone = next(cid for cid, v in _lists(c).items() if v)
    with c.engine.begin() as conn:
        conn.execute(insert(restricted_customers).values(
            tenant_id="acme", customer_id=gone, since=dt.datetime(2026, 11, 1), request_id="R1",
            legal_basis="证券法：交易记录保存不少于二十年"))
    done = serving.publish(c, f, 5, 0)
    stored = _lists(c)
    assert gone not in stored and len(stored) == len(f.ids) - 1
    assert (done.customers, done.skipped_restricted, done.k, done.spares) == (
        len(f.ids) - 1, 1, 5, 0)
    assert done.items == sum(map(len, stored.values()))
    assert done.short == sum(1 for v in stored.values() if len(v) < 5)
    assert done.empty == sum(1 for v in stored.values() if not v)
    assert max(map(len, stored.values())) == 5
    with c.engine.connect() as conn:
        assert set(conn.execute(select(recommendation_lists.c.k)).scalars()) == {5}


def test_a_stale_mask_publishes_nothing(published: Published, tmp_path: Path) -> None:
    """The mask judged at a day ten years back lets expired assessments through; the re-check
    by ``judge`` at the policy's day refuses them, and the lists already published stay."""
    c, f = published.broker.copy(tmp_path / "ws"), published.fitted
    stale = dataclasses.replace(f, elig=dataclasses.replace(
        f.elig, day=f.day - dt.timedelta(days=3650)))
    with c.engine.connect() as conn:
        before = conn.execute(select(func.count(), func.max(recommendation_lists.c.generated_at))
                              ).one()
    with pytest.raises(ConfigError, match="ASSESSMENT_EXPIRED"):
        serving.publish(c, stale, K, SPARES)
    with c.engine.connect() as conn:
        after = conn.execute(select(func.count(), func.max(recommendation_lists.c.generated_at))
                             ).one()
    assert tuple(after) == tuple(before) and before[0] == len(f.ids)


def test_a_lower_assessment_this_morning_is_served_at_once(published: Published,
                                                           tmp_path: Path) -> None:
    c, f = published.broker.copy(tmp_path / "ws"), published.fitted
    c.clock = FixedClock(dt.datetime.combine(f.day, dt.time(4)))  # noon in Shanghai
    stored = _lists(c)
    low = ("R1", "R2")
    cid = next(cid for cid, v in stored.items()
               if any(x["risk_level"] not in low for x in v[:K])
               and sum(x["risk_level"] in low for x in v) >= K)
    assess(c, "acme", "ZZ-today", cid, "C2", on=f.day, objective="income")
    served = serving.for_customer(c, OPS, cid, K, "sidebar")
    expected = [x["item_id"] for x in stored[cid] if x["risk_level"] in low][:K]
    assert [i["item_id"] for i in served.items] == expected and len(expected) == K
    high = sum(x["risk_level"] not in low for x in stored[cid])
    assert served.refused == {"LEVEL_MISMATCH": high} and served.investor_level == "C2"
    assert c.counters.value(serving.REFUSED, tenant="acme", surface="sidebar") == high
    with c.engine.connect() as conn:
        logged = repo.log_rows(conn, "acme", cid)
    assert [(r.rank, r.item_id, r.propensity, r.policy_version) for r in logged] == [
        (n, i, 1.0, f.version) for n, i in enumerate(expected, 1)]
