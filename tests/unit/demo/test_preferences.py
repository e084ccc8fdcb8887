"""The demo's hidden content and product preferences (issue 16): the truth files are what the
module docstring says, and what customers view, buy and open follows the true utility.

Each behavioural assertion compares the observed choices with what the same customers
would have chosen if the utility played no part (the same items available, the same
recency, popularity or suitability weights), so a generator that ignored the preferences
fails. The bounds sit at least 3 standard errors of that null above it (6 for the mean
utility gaps) and at about half of what seeds 13, 1 and 2 give (seed 13 quoted beside each).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import stats

from caifu.data.contracts import registry
from caifu.data.demo import generate, text
from caifu.data.demo.preferences import (
    SECTOR_WORDS,
    TOPICS,
    PreferenceTruth,
    customer_preferences,
    draw_items,
    read_truth,
    recency_weight,
    true_utility,
)
from caifu.data.demo.world import N_CONTENTS

CUSTOMERS = 1500
US_PER_DAY = 86_400 * 10**6


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_prefs")
    generate(out, customers=CUSTOMERS, seed=13)
    return out


@pytest.fixture(scope="module")
def truth(demo: Path) -> PreferenceTruth:
    return read_truth(demo / "_ground_truth")


def _contents(demo: Path) -> list[dict]:
    return [json.loads(x) for x in (demo / "content_items.jsonl").read_text("utf-8").splitlines()]


def _micros(ts: str) -> int:
    return int((datetime.fromisoformat(ts) - datetime(1970, 1, 1)).total_seconds()) * 10**6


def _views(demo: Path, truth: PreferenceTruth, kind: str) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """(customer row, item row, event time µs) of every view_content / view_fund event."""
    col = {"content": "content_id", "fund": "fund_code"}[kind]
    ev = pq.read_table(demo / "app_events.parquet",
                       columns=["customer_id", "event_type", "event_time", col])
    ev = ev.filter(pc.equal(ev["event_type"], f"view_{kind}"))
    cust = {c: i for i, c in enumerate(truth.customer_ids)}
    item = {x: i for i, (t, x) in enumerate(zip(truth.item_type, truth.item_ids, strict=True))
            if t == kind}
    c = np.array([cust.get(x, -1) for x in ev["customer_id"].to_pylist()])
    i = np.array([item[x] for x in ev[col].to_pylist()])
    t = pc.cast(ev["event_time"], pa.int64()).to_numpy()
    keep = c >= 0  # events of the few customers whose rows were deliberately broken
    return c[keep], i[keep], t[keep]


def test_truth_files_have_the_documented_columns_and_rows(demo: Path,
                                                           truth: PreferenceTruth) -> None:
    prefs = pq.read_schema(demo / "_ground_truth" / "preference_vectors.parquet")
    items = pq.read_schema(demo / "_ground_truth" / "item_topics.parquet")
    assert prefs.names == ["customer_id", *TOPICS]
    assert items.names == ["item_type", "item_id", *TOPICS, "quality"]
    assert all(prefs.field(t).type == pa.float64() == items.field(t).type for t in TOPICS)
    traits = pq.read_table(demo / "_ground_truth" / "latent_traits.parquet")
    assert truth.customer_ids.tolist() == traits["customer_id"].to_pylist()
    contents = _contents(demo)
    funds = _funds(demo)
    assert truth.item_ids.tolist() == [c["content_id"] for c in contents] + \
        [f["fund_code"] for f in funds]
    assert truth.item_type.tolist() == ["content"] * len(contents) + ["fund"] * len(funds)
    assert (truth.loadings >= 0).all() and np.isfinite(truth.quality).all()

    # every loading is read off the item's observable attributes
    at = {t: k for k, t in enumerate(TOPICS)}
    fund_type = {f["fund_code"]: f["fund_type"] for f in funds}
    for row, c in enumerate(contents):
        on = {TOPICS[k] for k in np.flatnonzero(truth.loadings[row])}
        assert {t for t in on if t.startswith(("risk_", "content_"))} == {
            f"risk_{c['risk_level'].lower()}", f"content_{c['content_type']}"}, c
        expected_fund = {f"fund_{fund_type[c['fund_code']]}"} if c["fund_code"] else set()
        assert {t for t in on if t.startswith("fund_")} == expected_fund, c
    for row, f in enumerate(funds, start=len(contents)):
        on = {TOPICS[k] for k in np.flatnonzero(truth.loadings[row])}
        assert {f"risk_{f['risk_level'].lower()}", f"fund_{f['fund_type']}"} <= on
        assert not any(t.startswith("content_") for t in on)
    assert truth.loadings[:, at["board_chinext"]].any() and truth.loadings[:, at["board_bse"]].any()
    assert [words[0] for words in SECTOR_WORDS.values()] == list(text.SECTORS)


def test_preferences_and_utility_are_deterministic_and_follow_traits() -> None:
    n = 4000
    traits_rng = np.random.default_rng(0)
    traits = {k: traits_rng.random(n) for k in ("risk", "chinext_i", "level2_i", "fund_aff")}
    traits |= {"activity": traits_rng.gamma(1.0, 2.0, n), "age": traits_rng.uniform(20, 80, n),
               "has_advisor": traits_rng.random(n) < 0.5}
    a = customer_preferences(np.random.default_rng(5), **traits)
    assert np.array_equal(a, customer_preferences(np.random.default_rng(5), **traits))
    assert not np.array_equal(a, customer_preferences(np.random.default_rng(6), **traits))
    at = {t: k for k, t in enumerate(TOPICS)}
    # the trait-driven part shows through the noise (population correlations, n = 4000)
    assert stats.pearsonr(traits["risk"], a[:, at["risk_r5"]]).statistic > 0.5
    assert stats.pearsonr(traits["risk"], a[:, at["fund_money"]]).statistic < -0.3
    assert stats.pearsonr(traits["chinext_i"], a[:, at["board_chinext"]]).statistic > 0.3
    assert stats.pearsonr(traits["fund_aff"],
                          a[:, at["content_product_intro"]]).statistic > 0.3
    items = np.abs(np.random.default_rng(1).normal(size=(7, len(TOPICS))))
    quality = np.arange(7.0)
    u = true_utility(a[:3], items, quality)
    assert u.shape == (3, 7)
    assert u[1, 4] == pytest.approx(float(a[1] @ items[4]) + 4.0)


def test_draw_items_follows_the_softmax_and_the_weights() -> None:
    """A 3-item world whose choice probabilities are known: exp(u) ∝ 1 : e : e²; an item
    of weight 0, or not yet available, is never drawn (bounds: 4 binomial SEs)."""
    n = 60_000
    prefs = np.zeros((7, len(TOPICS)))
    items = np.zeros((3, len(TOPICS)))
    quality = np.array([0.0, 1.0, 2.0])
    uniform = np.random.default_rng(3).random(n)
    who = np.arange(n) % 7  # seven customers of the same taste
    p = np.exp(quality) / np.exp(quality).sum()

    def close(got: np.ndarray, expected: np.ndarray) -> bool:
        share = np.bincount(got, minlength=3) / len(got)
        return bool(np.abs(share - expected).max() < 4 * np.sqrt(0.25 / len(got)))

    assert close(draw_items(prefs, items, quality, 1.0, who, uniform), p)
    assert close(draw_items(prefs, items, quality, 2.0, who, uniform),
                 np.exp(quality / 2) / np.exp(quality / 2).sum())
    masked = draw_items(prefs, items, quality, 1.0, who, uniform, weight=np.array([1, 0, 1]))
    assert close(masked, np.array([p[0], 0, p[2]]) / (p[0] + p[2]))
    half = n // 2
    at = np.r_[np.full(half, 10.0), np.full(n - half, 30.0)] * US_PER_DAY
    since = np.array([0.0, 20.0, 0.0]) * US_PER_DAY  # item 1 appears on day 20
    got = draw_items(prefs, items, quality, 1.0, who, uniform, at=at, since=since)
    assert 1 not in set(got[:half].tolist()) and close(got[half:], p)
    assert recency_weight(np.array([-1.0, 0.0, 30.0])).tolist() == [0.0, 1.0, 0.5]


def test_content_views_follow_utility_beyond_recency(demo: Path, truth: PreferenceTruth) -> None:
    """Against a reader who picks by recency alone among the published items: viewed items
    have a higher utility (seed 13: +1.34, SD 1.25 over 2,915 views, so the null's SE ≈ 0.02)
    and are among the customer's own top 10 of the published items far more often (seed 13:
    42 % of views, against 13 % for the recency-only reader)."""
    cust, item, t = _views(demo, truth, "content")
    assert len(cust) > 2000
    published = np.array([_micros(c["published_at"]) for c in _contents(demo)], np.float64)
    assert (published[item] <= t).all()  # nothing is read before it is published
    u = truth.utility()[:, :N_CONTENTS]
    w = recency_weight((t[:, None] - published[None, :]) / US_PER_DAY)
    w /= w.sum(axis=1, keepdims=True)
    seen = u[cust, item]
    expected = (w * u[cust]).sum(axis=1)
    lift = seen - expected
    assert lift.mean() > 0.6 and lift.mean() / (lift.std() / np.sqrt(len(lift))) > 6
    top10 = np.argsort(np.where(w > 0, -u[cust], np.inf), axis=1)[:, :10]
    hit = (top10 == item[:, None]).any(axis=1).mean()
    chance = np.take_along_axis(w, top10, axis=1).sum(axis=1).mean()
    assert hit > 2 * chance
    # per item: views over the views recency alone would give rank like the mean utility
    # of all customers (seed 13: Spearman 0.83; its SE under the null ≈ 0.06)
    views = np.bincount(item, minlength=N_CONTENTS)
    exposure = w.sum(axis=0)
    seen_items = exposure > 5
    rho = stats.spearmanr(views[seen_items] / exposure[seen_items],
                          u[:, seen_items].mean(axis=0)).statistic
    assert rho > 0.4


def _funds(demo: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((demo / "fund_products.csv").read_text("utf-8"))))


def test_fund_views_follow_utility_beyond_popularity(demo: Path, truth: PreferenceTruth) -> None:
    """Against a visitor who picks fund pages by popularity alone (``quality``, the world's
    fund popularity) among the funds announced by then: viewed funds have a higher utility
    (seed 13: +0.65, SD 1.76 over 6,528 views: the null's SE ≈ 0.02), and a fund's views over
    the views popularity alone would give rank like the customers' mean taste for it (seed
    13: Spearman 0.73; its SE under the null ≈ 0.07)."""
    cust, item, t = _views(demo, truth, "fund")
    assert len(cust) > 3000
    funds = np.flatnonzero(truth.item_type == "fund")
    item = item - funds[0]
    u = truth.utility()[:, funds]
    quality = truth.quality[funds]
    launched = np.array([(np.datetime64(f["launched_on"]) - np.datetime64("1970-01-01"))
                         .astype(np.int64) for f in _funds(demo)])
    announced = (launched - 15) * US_PER_DAY
    assert (announced[item] <= t).all()  # a new fund's page opens 15 days before its launch
    w = np.exp(quality)[None, :] * (t[:, None] >= announced[None, :])
    w /= w.sum(axis=1, keepdims=True)
    lift = u[cust, item] - (w * u[cust]).sum(axis=1)
    assert lift.mean() > 0.35 and lift.mean() / (lift.std() / np.sqrt(len(lift))) > 6
    views = np.bincount(item, minlength=len(funds))
    exposure = w.sum(axis=0)
    seen = exposure > 5
    taste = (u - quality[None, :])[:, seen].mean(axis=0)
    assert stats.spearmanr(views[seen] / exposure[seen], taste).statistic > 0.3


def test_purchases_favour_the_suitable_funds_of_high_utility(demo: Path,
                                                             truth: PreferenceTruth) -> None:
    """Among the funds of the customer's level, the fund bought has a higher utility than
    popularity alone would pick (seed 13: +0.50, SD 1.71 over 1,305 purchases: the null's
    SE ≈ 0.05); purchases above the level (on the customer's own request) are left out."""
    funds = _funds(demo)
    risk = np.array([int(f["risk_level"][1]) for f in funds])
    fidx = {f["fund_code"]: i for i, f in enumerate(funds)}
    cols = np.flatnonzero(truth.item_type == "fund")
    u = truth.utility()[:, cols]
    quality = truth.quality[cols]
    traits = pq.read_table(demo / "_ground_truth" / "latent_traits.parquet")
    c_level = np.array([int(x[1]) for x in traits["risk_level"].to_pylist()])
    cidx = {c: i for i, c in enumerate(truth.customer_ids)}
    rows = csv.DictReader(io.StringIO((demo / "jjjy.csv").read_bytes().decode("gbk")))
    buys = np.array([(cidx[r["客户号"]], fidx[r["基金代码"]]) for r in rows
                     if r["业务类型"] in ("申购", "认购") and r["客户号"] in cidx])
    c, f = buys[:, 0], buys[:, 1]
    suitable = risk[None, :] <= c_level[c][:, None]
    keep = suitable[np.arange(len(f)), f]
    c, f, suitable = c[keep], f[keep], suitable[keep]
    w = np.exp(quality)[None, :] * suitable
    w /= w.sum(axis=1, keepdims=True)
    lift = u[c, f] - (w * u[c]).sum(axis=1)
    assert len(lift) > 800
    assert lift.mean() > 0.25 and lift.mean() / (lift.std() / np.sqrt(len(lift))) > 6


def test_campaign_opens_rise_with_the_utility_of_their_content(demo: Path,
                                                               truth: PreferenceTruth) -> None:
    """Delivered messages about a content item the customer likes more than his average are
    opened more: the quarter who like it most against the quarter who like it least (seed
    13: 0.36 against 0.15 of ~200 each, SE of the gap 0.04; no gap if opens ignored it)."""
    camp = {r["campaign_id"]: r["content_id"] for r in
            csv.DictReader(io.StringIO((demo / "campaigns.csv").read_text("utf-8")))}
    cidx = {c: i for i, c in enumerate(truth.customer_ids)}
    item = {x: i for i, x in enumerate(truth.item_ids[:N_CONTENTS])}
    u = truth.utility()[:, :N_CONTENTS]
    stage: dict[tuple[str, str], set[str]] = {}
    for r in pq.read_table(demo / "campaign_touches.parquet").to_pylist():
        stage.setdefault((r["campaign_id"], r["customer_id"]), set()).add(r["stage"])
    rel, opened = [], []
    for (cp, cu), s in stage.items():
        if "delivered" in s and camp[cp] and cu in cidx:
            rel.append(u[cidx[cu], item[camp[cp]]] - u[cidx[cu]].mean())
            opened.append("opened" in s)
    rel_a, opened_a = np.array(rel), np.array(opened)
    assert len(rel_a) > 500
    low, high = np.quantile(rel_a, [0.25, 0.75])
    hi, lo = opened_a[rel_a >= high], opened_a[rel_a <= low]
    se = np.sqrt(hi.var() / len(hi) + lo.var() / len(lo))
    assert hi.mean() - lo.mean() > max(0.08, 3 * se) and hi.mean() > 1.5 * lo.mean()


def test_catalogue_meets_the_content_items_contract(demo: Path) -> None:
    contract = registry()["content_items"]
    contents = _contents(demo)
    assert [c["content_id"] for c in contents] == [f"CT{i + 1:05d}" for i in range(N_CONTENTS)]
    securities = set(pq.read_table(demo / "securities.parquet")["security_code"].to_pylist())
    funds = {f["fund_code"] for f in _funds(demo)}
    refs = {"securities": securities, "fund_products": funds}
    for c in contents:
        for col in contract.columns:
            v = c.get(col.name)
            assert v is not None or not col.required, (c, col.name)
            if v is None:
                continue
            assert not col.enum or v in col.enum, (c, col.name)
            assert not col.max_length or len(v) <= col.max_length, (c, col.name)
            ref = (col.ref or "").partition(".")[0]
            assert ref not in refs or v in refs[ref], (c, col.name)
    assert len({c["title"] for c in contents}) > N_CONTENTS // 2


def test_shared_links_carry_the_item_they_show(demo: Path) -> None:
    """An advisor's link card names an item already published, with that item's title."""
    contents = {c["content_id"]: c for c in _contents(demo)}
    links = 0
    for line in (demo / "chat_messages.jsonl").read_text("utf-8").splitlines():
        m = json.loads(line)
        if m["sender"] == "advisor" and m["msg_type"] == "link":
            title, _, url = m["content"].rpartition(" ")
            item = contents[url.rsplit("/", 1)[1]]
            assert item["title"] == title and item["url"] == url
            assert item["published_at"] <= m["msg_time"] or item["content_id"] == "CT00001"
            links += 1
    assert links > 10
