"""``batch.write`` on a small policy fitted in memory: the file is the same however many
threads list it and however it is cut into blocks, every list is as long as the customer's
eligible items allow, and the re-check finds nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caifu.recommend import config
from caifu.recommend import eligibility as el
from caifu.recommend import rankers as rk
from caifu.recommend.catalogue import EPOCH, build
from caifu.recommend.interactions import Interactions
from caifu.recommend.reasons import explain
from caifu.recommend.topk import Rules
from caifu.services.recommend import batch, policy
from caifu.services.recommend import inputs as rin

DAY = dt.date(2026, 12, 4)
TOPICS = ("创业板成长", "债券稳健", "科创板半导体", "消费白马", "红利低波")


@pytest.fixture(scope="module")
def fitted() -> policy.Fitted:
    rng = np.random.default_rng(4)
    n_content, n_funds, n = 40, 12, 400
    published = [dt.datetime(2026, 11, 1) + dt.timedelta(days=int(d))
                 for d in rng.integers(0, 33, n_content)]
    content = pa.table({
        "content_id": [f"CT{i}" for i in range(n_content)],
        "content_type": rng.choice(["research_report", "advisor_view", "event"], n_content),
        "title": [f"{TOPICS[i % 5]}第{i}期" for i in range(n_content)],
        "risk_level": [f"R{r}" for r in rng.integers(1, 5, n_content)],
        "published_at": pa.array(published, pa.timestamp("us")),
        "security_code": pa.array([None] * n_content, pa.string()),
        "fund_code": pa.array([None] * n_content, pa.string())})
    funds = pa.table({
        "fund_code": [f"{i:06d}" for i in range(n_funds)],
        "name": [f"{TOPICS[i % 5]}基金{i}" for i in range(n_funds)],
        "fund_type": rng.choice(["money", "bond", "equity"], n_funds),
        "risk_level": [f"R{r}" for r in rng.integers(1, 5, n_funds)],
        "launched_on": pa.array([dt.date(2020, 1, 1)] * n_funds)})
    cat = build(content, funds, config.default())
    ids = np.array([f"c{i:03d}" for i in range(n)], dtype=object)
    level = rng.integers(0, 6, n).astype(np.int8)
    day = (DAY - EPOCH).days
    cust = el.Customers(ids, level, rng.random(n) < 0.05,
                        np.full(n, day + 300, np.int32), rng.random(n) < 0.05,
                        rng.integers(0, 6, n).astype(np.int8), rng.integers(0, 4, n).astype(np.int8),
                        rng.integers(0, 32, n).astype(np.int16), rng.random(n) < 0.5,
                        rng.random(n) < 0.95)
    count = rng.integers(0, 15, n)
    who = np.repeat(np.arange(n), count)
    inter = Interactions(ids[who], rng.integers(0, len(cat), len(who)),
                         (day - rng.integers(0, 90, len(who))).astype(np.int32),
                         rng.choice(np.array([1, 1, 1, 2, 3], np.int8), len(who)))
    rows = {str(c): i for i, c in enumerate(ids)}
    excl = el.Exclusions((rng.integers(0, n, 300), rng.integers(0, len(cat), 300)),
                         (rng.integers(0, n, 100), rng.integers(0, len(cat), 100)),
                         (np.arange(n), np.full(n, cat.index["A:open_star"])),
                         rng.random(n) < 0.02)
    rules = Rules.of(cat, config.default())
    empty = pa.table({"customer_id": pa.array([], pa.string())})
    board = np.where(cat.item_type == 0, rng.integers(-1, 5, len(cat)), -1)
    data = rin.TenantData(cat, config.default(), empty, empty, empty, inter, None, board)
    elig = policy.Eligibility(data, cust, excl, DAY, rules)
    names = ["trades_90d", "traded_chinext_365d", "aum"]
    x = rng.normal(size=(n, 3)).astype(np.float32)
    ctx = policy.context(data, rows, DAY, x, level, names)
    labels = inter.window(day - 30, day).matrix(rows, len(cat))
    ranker = rk.LambdaRank(negatives=10, trees=20).fit(
        ctx, labels, elig.of, names + list(rk.ITEM_FEATURES) + list(rk.PAIR_FEATURES))
    return policy.Fitted("t", DAY, data, list(ids), rows, elig, ctx, ranker, rules, "v/test")


def test_the_file_is_the_same_for_any_workers_and_blocks(fitted: policy.Fitted,
                                                          tmp_path: Path) -> None:
    files = []
    for workers, block in ((1, 400), (3, 37), (2, 64)):
        out = tmp_path / f"{workers}-{block}.parquet"
        result = batch.write(fitted, out, 10, workers=workers, block=block)
        assert result.violations == 0 and result.customers == 400
        assert set(result.stages) >= {"mask", "LightGBM predict", "reasons", "re-check"}
        files.append(pq.read_table(out))
    assert files[0].num_rows > 1000
    assert files[1].equals(files[0]) and files[2].equals(files[0])


def test_each_list_is_as_long_as_the_eligible_items_allow(fitted: policy.Fitted,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "lists.parquet"
    result = batch.write(fitted, out, 10, block=150)
    table = pq.read_table(out).to_pydict()
    eligible = fitted.elig.of(np.arange(400)).sum(axis=1)
    length = np.zeros(400, np.int64)
    for cid, rank in zip(table["customer_id"], table["rank"], strict=True):
        r = fitted.rows[cid]
        length[r] += 1
        assert rank == length[r]  # ranks 1, 2, … in order
    assert (length == np.minimum(eligible, 10)).all()
    assert result.empty == int((eligible == 0).sum()) and result.short == int(
        ((eligible > 0) & (eligible < 10)).sum())
    assert all(table["reason"]) and set(table["policy_version"]) == {"v/test"}


def test_reasons_when_no_item_is_about_a_board(fitted: policy.Fitted) -> None:
    """A tenant whose content names no security: the board facts are simply absent."""
    ctx = replace(fitted.ctx, item_board=np.full(len(fitted.data.cat), -1, np.int64))
    rows = np.repeat(np.arange(0, 400, 40), 5)
    items = np.tile(np.arange(5), 10)
    got = explain(ctx, rows, items)
    assert len(got) == 50 and all(got)
    assert not any("板" in str(r) and "交易过" in str(r) for r in got)
