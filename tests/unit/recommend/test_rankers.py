"""Rankers on interaction logs with a structure planted by hand (not by the code under test):
two tastes of customers over two disjoint sets of items."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from caifu.recommend import config
from caifu.recommend import rankers as rk
from caifu.recommend.catalogue import ACTION, build
from caifu.recommend.interactions import CLICKED, CONVERTED, VIEWED, collect
from caifu.recommend.topk import top_k


def _taste_log(seed: int = 1) -> tuple[sp.csr_matrix, np.ndarray]:
    """60 customers × 20 items; customers 0–29 take items 0–9, customers 30–59 items 10–19,
    each some 5 of his 10 (and one off-taste item now and then)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((60, 20), np.float32)
    for c in range(60):
        own = np.arange(10) + (0 if c < 30 else 10)
        m[c, rng.choice(own, 5, replace=False)] = 1.0
        if rng.random() < 0.2:
            m[c, rng.integers(0, 20)] = 1.0
    return sp.csr_matrix(m), np.arange(60) >= 30


def test_collaborative_ranks_the_customers_own_taste_first() -> None:
    log, second = _taste_log()
    model = rk.Collaborative(factors=4, iterations=20).fit(log)
    scores = model.score(np.arange(60))
    seen = log.toarray() > 0
    scores[seen] = -np.inf  # rank what he has not taken yet
    top = np.argsort(-scores, axis=1)[:, :3]
    own = np.where(second[:, None], top >= 10, top < 10)
    assert own.mean() > 0.9  # chance would be 0.5


def test_popularity_is_counted_per_segment_and_shrunk_to_the_tenant() -> None:
    log, second = _taste_log()
    pop = rk.Popularity(prior=0.0).fit(log, second.astype(np.int64), 2)
    taken = (log.toarray() > 0)
    assert np.allclose(pop.by_segment[0], taken[~second].sum(0) / taken[~second].sum())
    shrunk = rk.Popularity(prior=1e9).fit(log, second.astype(np.int64), 2)
    assert np.allclose(shrunk.by_segment[0], taken.sum(0) / taken.sum(), atol=1e-6)


def test_rank_normalised_keeps_the_order_within_a_row() -> None:
    s = np.array([[3.0, -1.0, 10.0], [0.0, 0.5, 0.25]])
    assert rk.rank_normalised(s).tolist() == [[2 / 3, 1 / 3, 1.0], [1 / 3, 1.0, 2 / 3]]


def test_interactions_grade_views_clicks_and_purchases() -> None:
    content = pa.table({
        "content_id": ["CT1", "CT2"], "content_type": ["research_report", "product_intro"],
        "title": ["策略", "基金介绍"], "risk_level": ["R3", "R2"],
        "published_at": pa.array([dt.datetime(2026, 11, 1), dt.datetime(2026, 11, 2)]),
        "security_code": pa.array([None, None], pa.string()), "fund_code": [None, "000001"]})
    funds = pa.table({"fund_code": ["000001"], "name": ["甲债券"], "fund_type": ["bond"],
                      "risk_level": ["R2"], "launched_on": pa.array([dt.date(2020, 1, 1)])})
    cat = build(content, funds, config.default())
    assert cat.horizon[cat.index["CT2"]] == cat.horizon[cat.index["F000001"]] == 1  # bond: short
    events = pa.table({
        "customer_id": ["c1", "c1", "c2", "c2"],
        "event_time": pa.array([dt.datetime(2026, 11, 3, 9)] * 4),
        "event_type": ["view_content", "view_fund", "view_content", "login"],
        "content_id": ["CT1", None, "CT9", None], "fund_code": [None, "000001", None, None]})
    txns = pa.table({"customer_id": ["c2", "c2"], "fund_code": ["000001", "000001"],
                     "txn_date": pa.array([dt.date(2026, 11, 4)] * 2),
                     "txn_type": ["purchase", "redeem"]})
    touches = pa.table({"customer_id": ["c1", "c3"], "campaign_id": ["K1", "K1"],
                        "touched_at": pa.array([dt.datetime(2026, 11, 5)] * 2),
                        "stage": ["clicked", "opened"]})
    campaigns = pa.table({"campaign_id": ["K1"], "content_id": ["CT2"]})
    got = collect(cat, app_events=events, fund_transactions=txns, campaign_touches=touches,
                  campaigns=campaigns)
    rows = sorted(zip(got.customer_id.tolist(), [str(cat.item_id[i]) for i in got.item],
                      got.grade.tolist(), strict=True))
    # CT9 is not in the catalogue, a login is no interaction, a redemption no uptake, an
    # opened push no click
    assert rows == [("c1", "CT1", VIEWED), ("c1", "CT2", CLICKED), ("c1", "F000001", VIEWED),
                    ("c2", "F000001", CONVERTED)]
    best = got.matrix({"c1": 0, "c2": 1}, len(cat)).toarray()
    assert best[0, cat.index["CT2"]] == CLICKED and best[1, cat.index["F000001"]] == CONVERTED


def _context(seed: int = 3) -> rk.Context:
    """A small context: 200 customers × 40 items (three kinds, two boards), a random log."""
    from caifu.recommend.catalogue import NEVER, Catalogue

    rng = np.random.default_rng(seed)
    n, m = 200, 40
    kinds = np.array(["research_report", "bond", "open_chinext"], dtype=object)[
        rng.integers(0, 3, m)]
    topics = ("创业板成长", "债券稳健", "科创板半导体", "消费白马")
    titles = np.array([f"{topics[i % 4]}观点第{i}期" for i in range(m)], dtype=object)
    cat = Catalogue(np.array([f"I{i}" for i in range(m)], dtype=object),
                    rng.integers(0, 3, m).astype(np.int8), kinds, titles,
                    rng.integers(1, 6, m).astype(np.int8), rng.integers(0, 4, m).astype(np.int8),
                    rng.integers(-1, 5, m).astype(np.int8), rng.integers(0, 100, m).astype(np.int32),
                    np.full(m, NEVER, np.int32), np.full(m, "", dtype=object),
                    np.full(m, "", dtype=object), np.ones(m, bool))
    history = sp.csr_matrix(rng.poisson(0.4, (n, m)).astype(np.float32))
    level = rng.integers(0, 6, n).astype(np.int8)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    return rk.Context(cat, history, history.multiply(rng.random((n, m)) < 0.3).tocsr(), x,
                      level, rng.integers(-1, 2, m), 120,
                      rk.Popularity().fit(history, level, 6),
                      rk.Collaborative(factors=4, iterations=3).fit(history),
                      ["a", "b", "c", "d"])


def test_cheap_scores_are_the_four_standardised_scorers_summed() -> None:
    """Popularity is standardised once per segment and the history's share once per item
    group; the sum must be exactly the definition's, customer by customer."""
    ctx = _context()
    rows = np.arange(20, 180)
    total = ctx._total[rows, None] + 1.0
    affinity = sum(h[rows][:, g] / total
                   for h, g in zip(ctx._hist_by[:3], ctx.groups[:3], strict=True))
    want = (rk.standardised(ctx.popularity.score(ctx.level[rows]))
            + rk.standardised(ctx.collaborative.score(rows))
            + rk.standardised(np.asarray(affinity, np.float64))
            + rk.standardised(np.asarray(ctx.customer_text[rows] @ ctx.item_text.T,
                                         np.float64)))
    assert np.array_equal(rk.cheap_scores(ctx, rows), want)


def test_standardised_rows_have_mean_0_and_spread_1_or_are_0_when_flat() -> None:
    x = np.array([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    z = rk.standardised(x)
    assert np.allclose(z[0].mean(), 0) and np.isclose(z[0].std(), 1)
    assert np.allclose(z[0], (x[0] - 3.0) / np.sqrt(3.5))
    assert z[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_pair_features_gather_each_named_column() -> None:
    ctx = _context()
    rows = np.array([0, 0, 5, 199, 42])
    items = np.array([3, 39, 0, 17, 17])
    names = ctx.customer_names + list(rk.ITEM_FEATURES) + list(rk.PAIR_FEATURES)
    x = rk.pair_features(ctx, rows, items)
    assert x.dtype == np.float32 and x.shape == (5, len(names))
    col = {name: x[:, j] for j, name in enumerate(names)}
    assert np.array_equal(x[:, :4], ctx.customer_x[rows], equal_nan=True)
    assert np.array_equal(col["risk"], ctx.cat.risk[items].astype(np.float32))
    assert np.array_equal(col["seen_item"], ctx.history.toarray()[rows, items])
    assert np.array_equal(col["segment_share"], np.float32(
        ctx.popularity.by_segment[ctx.level[rows], items]))
    assert np.array_equal(col["risk_minus_level"], ctx.cat.risk[items] - ctx.level[rows])
    kind_count = np.array([ctx.history.toarray()[r, ctx.kind_code == ctx.kind_code[i]].sum()
                           for r, i in zip(rows, items, strict=True)], np.float32)
    assert np.array_equal(col["hist_kind"], kind_count)
    assert np.allclose(col["share_kind"], kind_count / (ctx.history.toarray()[rows].sum(1) + 1))
    assert rk.pair_features(ctx, rows[:0], items[:0]).shape == (0, len(names))


def _with_propensity(ctx: rk.Context) -> tuple[rk.Context, np.ndarray]:
    """Items 0–3 made actions: 0 and 1 scored by target column 0, 2 by column 1, 3 unscored;
    propensities drawn by hand (customer 7 has none for target 1)."""
    rng = np.random.default_rng(8)
    ctx.cat.item_type[:4] = ACTION
    ctx.cat.item_type[4:][ctx.cat.item_type[4:] == ACTION] = 0
    target = np.full(len(ctx.cat), -1)
    target[[0, 1, 2]] = [0, 0, 1]
    p = rng.random((len(ctx.level), 2)).astype(np.float32)
    p[7, 1] = np.nan
    ctx.propensity, ctx.item_target = p, target
    return ctx, p


def test_the_propensity_pair_feature_is_the_action_targets_score_only_when_switched_on() -> None:
    ctx, p = _with_propensity(_context())
    rows, items = np.array([0, 5, 5, 7, 9]), np.array([0, 1, 2, 2, 20])
    names = ctx.customer_names + list(rk.ITEM_FEATURES) + list(rk.PAIR_FEATURES)
    assert rk.pair_features(ctx, rows, items).shape == (5, len(names))  # off by default
    ctx.propensity_feature = True
    x = rk.pair_features(ctx, rows, items)
    assert x.shape == (5, len(names) + 1)
    # 0 and 1 share target 0; 2 is target 1; customer 7 has none; item 20 is no action
    np.testing.assert_array_equal(x[:, -1], [p[0, 0], p[5, 0], p[5, 1], np.nan, np.nan])


def test_the_propensity_ranker_orders_actions_by_the_models_scores() -> None:
    ctx, p = _with_propensity(_context())
    rows = np.arange(0, 50)
    s = rk.propensity_scores(ctx, rows)
    action = ctx.cat.item_type == ACTION
    lists = top_k(s, np.broadcast_to(action, s.shape), ctx.cat.item_type, 4)
    for i, r in enumerate(rows):
        scored = {0: p[r, 0], 1: p[r, 0], 2: p[r, 1]}
        known = sorted((v, item) for item, v in scored.items() if np.isfinite(v))
        # the scored actions first, by probability (0 and 1 tie: either order), then 3
        got = lists[i].tolist()
        assert [scored[j] for j in got[:len(known)]] == sorted(
            (v for v, _ in known), reverse=True), (r, got)
        assert set(got) == {0, 1, 2, 3} and got[len(known)] in ({3} if len(known) == 3
                                                                 else {2, 3})
