"""Off-policy evaluation over the real log, where the truth is known without the estimator:
the small demo broker's 600 customers are served with exploration (ε = 0.5, k = 5 of the
published 20), clicks are stamped on the log from a reward rule this test draws with its own
random numbers (each item a known click probability), then ``offpolicy.evaluate`` must give
the on-policy mean for the logging policy, and for the fitted policy's top 10 an IPS interval
that holds the value the reward rule gives that policy directly."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from caifu.adapters.sor.recommend_models import recommendation_lists, recommendation_log
from caifu.adapters.sor.repos import recommend as repo
from caifu.core.clock import FixedClock
from caifu.core.errors import ConfigError, NotFoundError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.recommend import offpolicy, serving
from tests.integration.recommend.conftest import Published
from tests.integration.recommend.world import explore_config

pytestmark = pytest.mark.slow  # a fitted policy on a demo broker

OPS = Principal("acme", "acme.ops", "ops")
EPS, SHOWN_K, TARGET_K = 0.5, 5, 10


def _serve(c: Container, f_day: dt.date) -> dict[str, list[str]]:
    """Every customer with a list served once at noon (Shanghai) of the policy's day; the
    published lists as stored, by customer."""
    c.clock = FixedClock(dt.datetime.combine(f_day, dt.time(4)))
    explore_config(c, EPS, 16)
    with c.engine.connect() as conn:
        stored = {cid: [x["item_id"] for x in json.loads(text)] for cid, text in conn.execute(
            select(recommendation_lists.c.customer_id, recommendation_lists.c.items_json))}
    for cid, items in stored.items():
        if items:
            served = serving.for_customer(c, OPS, cid, SHOWN_K, "sidebar")
            # served on the policy's own day: the re-check refuses nothing, so every
            # published item is in the customer's eligible set
            assert served.refused == {} and served.withheld == {}, cid
    return stored


def _click(c: Container, p: dict[str, float], rng: np.random.Generator) -> list[tuple]:
    """Each shown row clicked with its item's probability; the rows (customer, clicked)."""
    with c.engine.begin() as conn:
        rows = conn.execute(select(recommendation_log.c.rec_id, recommendation_log.c.customer_id,
                                   recommendation_log.c.item_id)
                            .order_by(recommendation_log.c.customer_id,
                                      recommendation_log.c.rank)).all()  # not by random ids
        out = []
        for r in rows:
            hit = bool(rng.random() < p[r.item_id])
            if hit:
                repo.mark(conn, "acme", r.rec_id, "clicked", c.clock.now())
            out.append((r.customer_id, hit))
    return out


def test_ope_over_the_served_log_finds_the_truth(published: Published, tmp_path: Path) -> None:
    c, f = published.broker.copy(tmp_path / "ws"), published.fitted
    stored = _serve(c, f.day)
    # the reward rule: a third of the items are liked (60 % click), the rest 5 %
    rng = np.random.default_rng(2016)
    items = sorted({i for v in stored.values() for i in v})
    liked = set(rng.choice(items, size=len(items) // 3, replace=False).tolist())
    p = {i: 0.6 if i in liked else 0.05 for i in items}
    clicks = _click(c, p, rng)
    served_customers = {cid for cid, _ in clicks}
    n_lists = len(served_customers)
    assert n_lists > 400

    # the logging policy: IPS and SNIPS are the on-policy mean, clicks per list
    logging = offpolicy.evaluate(c, "acme", target="logging", reward="clicked")
    on_policy = sum(hit for _, hit in clicks) / n_lists
    e = logging.estimate
    assert (e.lists, e.customers) == (n_lists, n_lists)
    assert e.ips.value == pytest.approx(on_policy) and e.logging.value == pytest.approx(on_policy)
    assert e.snips.value == pytest.approx(on_policy)
    assert e.unsupported_pairs == 0 and e.target_items_per_list == pytest.approx(
        sum(min(SHOWN_K, len(stored[cid])) for cid in served_customers) / n_lists)
    assert logging.epsilons == [EPS] and logging.days == [f.day]
    assert abs(logging.explored_lists / n_lists - EPS) < 4.5 * (EPS * (1 - EPS) / n_lists) ** .5

    # the fitted policy's top 10: items 6–10 of a list only ever shown by exploration
    days: list[dt.date] = []

    def policy_at(day: dt.date) -> object:
        days.append(day)
        return f
    newest = offpolicy.evaluate(c, "acme", target="newest", reward="clicked", k=TARGET_K,
                                policy_at=policy_at)  # type: ignore[arg-type]
    assert days == [f.day]
    rows = np.array([f.rows[cid] for cid in sorted(served_customers)])
    target = {cid: [str(f.data.cat.item_id[j]) for j in lst if j >= 0]
              for cid, lst in zip(sorted(served_customers), f.lists(rows, TARGET_K)[0].tolist(),
                                  strict=True)}
    supported = {cid: [i for i in v if i in stored[cid]] for cid, v in target.items()}
    truth = sum(p[i] for v in supported.values() for i in v) / n_lists
    total = sum(map(len, target.values()))
    unsupported = total - sum(map(len, supported.values()))
    e = newest.estimate
    assert e.lists == n_lists and e.target_items_per_list == pytest.approx(total / n_lists)
    assert e.unsupported_pairs == unsupported
    assert e.unsupported_share == pytest.approx(unsupported / total)
    assert e.ips.low <= truth <= e.ips.high, (truth, e.ips)
    assert e.ips.half_width < 0.5 * truth  # explored: informative, not just wide
    # the deterministic list alone would say nothing of items 6–10: the on-policy value of
    # the first five is far from the target's
    assert abs(e.logging.value - truth) > e.ips.half_width
    assert e.effective_sample_size < e.shown_rows  # the explored items' weights


def test_an_empty_log_and_bad_options_are_refused(published: Published, tmp_path: Path
                                                  ) -> None:
    c = published.broker.copy(tmp_path / "ws")
    with pytest.raises(NotFoundError, match="no recommendations logged since"):
        offpolicy.evaluate(c, "acme", target="logging")
    with pytest.raises(ConfigError, match="unknown target 'random'"):
        offpolicy.evaluate(c, "acme", target="random")
    with pytest.raises(ConfigError, match="unknown reward 'opened'"):
        offpolicy.evaluate(c, "acme", reward="opened")
