"""A synthetic tenant for the recommendation benchmarks, built in memory with numpy.

No system of record, no ingest, no profile pipeline: the catalogue of a small generated demo
(its world's ≈300 content items and 200 funds, the packaged default's 5 actions), customers'
assessments spread over C1–C5 / objectives / horizons / varieties, an interaction log of a
realistic density (most customers active, a few to tens of interactions each, item
popularity skewed, tastes clustered by theme and bounded by risk level), ≈70 customer feature
columns named as the profile's, holdings, sent items and unmet prerequisites — then the real
``policy.context`` (popularity, ALS, title taste), a ``LambdaRank`` trained on a sample of
customers on the split before the cutoff, an ``Eligibility`` and a ``policy.Fitted``.

Imported by the bench scripts as ``_synthetic_tenant`` (each runs as ``python
bench/<name>.py``, which puts this folder on the import path).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from caifu.analytics.propensity import NOT_FEATURES, POSITION_FEATURES
from caifu.data.contracts.tables import CHANNELS
from caifu.data.demo.world import build_world
from caifu.pipelines.profile import FEATURES
from caifu.recommend import config as rconfig
from caifu.recommend import rankers as rk
from caifu.recommend.catalogue import ACTION, CONTENT, EPOCH, FUND, Catalogue, build
from caifu.recommend.eligibility import NO_EXPIRY, Customers, Exclusions
from caifu.recommend.interactions import CLICKED, CONVERTED, VIEWED, Interactions
from caifu.recommend.topk import Rules
from caifu.services.recommend import inputs as rin
from caifu.services.recommend import policy

TODAY = dt.date(2026, 12, 4)
WINDOW = 30
TRAIN_CUSTOMERS = 100_000  # the LambdaRank's training split is fitted on this sample
BOARDS = rin.BOARDS


@dataclass
class Tenant:
    fitted: policy.Fitted  # as of TODAY, every customer
    train: policy.Fitted  # as of TODAY − WINDOW, the training sample (its model is the same)
    held_out_truth: sp.csr_matrix  # the held-out half's uptake in (TODAY − WINDOW, TODAY]
    interactions: int
    fit_seconds: dict[str, float]


def catalogue(seed: int) -> tuple[Catalogue, np.ndarray]:
    """The demo world's content items and funds with the default actions, and each item's
    board code (as ``inputs.read`` derives it from the securities master)."""
    world = build_world(seed, TODAY, 4000)
    cat = build(world.contents, world.funds, rconfig.default())
    sec = world.securities
    board_of = dict(zip(sec["security_code"].to_pylist(), sec["board"].to_pylist(),
                        strict=True))
    board = np.array([BOARDS.index(b) if (b := board_of.get(s)) in BOARDS else -1
                      for s in cat.security_code.tolist()], np.int64)
    return cat, board


def customers(rng: np.random.Generator, n: int) -> Customers:
    today = (TODAY - EPOCH).days
    level = rng.choice(6, n, p=[0.04, 0.14, 0.28, 0.30, 0.17, 0.07]).astype(np.int8)
    lowest = (level == 1) & (rng.random(n) < 0.25)
    until = np.where(rng.random(n) < 0.92, today + rng.integers(-45, 700, n),
                     NO_EXPIRY).astype(np.int32)
    objective = np.where(level > 0, np.minimum(level + rng.integers(-1, 2, n), 5), 0)
    objective = np.where(rng.random(n) < 0.05, 0, np.maximum(objective, 1)).astype(np.int8)
    horizon = rng.choice(4, n, p=[0.08, 0.30, 0.42, 0.20]).astype(np.int8)
    # cash and fixed income nearly always, equity for most, the rest for a few
    bits = ((rng.random(n) < 0.97) * 1 + (rng.random(n) < 0.92) * 2
            + (rng.random(n) < np.clip(0.2 * level, 0.1, 0.95)) * 4
            + (rng.random(n) < 0.10) * 8 + (rng.random(n) < 0.15) * 16)
    return Customers(
        np.asarray([f"C{i:07d}" for i in range(n)], dtype=object), level, lowest, until,
        rng.random(n) < 0.01, objective, horizon, bits.astype(np.int16),
        rng.random(n) < 0.85, rng.random(n) < 0.95)


def _theme_weights(rng: np.random.Generator, cat: Catalogue, board: np.ndarray,
                   themes: int) -> np.ndarray:
    """(themes, items): a Zipf popularity over the catalogue, each theme favouring one kind
    or one board of items eightfold."""
    m = len(cat)
    pop = 1.0 / (1 + rng.permutation(m)) ** 0.9
    kinds = np.unique(cat.kind)
    out = np.empty((themes, m))
    for t in range(themes):
        favour = (cat.kind == kinds[t % len(kinds)]) if t % 2 else (board == t % len(BOARDS))
        out[t] = pop * np.where(favour, 8.0, 1.0) * np.where(cat.item_type == ACTION, 0.3, 1.0)
    return out


def interactions(rng: np.random.Generator, cat: Catalogue, board: np.ndarray,
                 cust: Customers) -> Interactions:
    """70 % of customers active, a log-normal count each (median 8, up to 120), items by
    their theme and level (items above his level 5× rarer), days within each item's
    validity and the last two years; grades: views, some clicks, purchases of funds."""
    n, m, today = len(cust), len(cat), (TODAY - EPOCH).days
    themes = 24
    weights = _theme_weights(rng, cat, board, themes)
    count = np.where(rng.random(n) < 0.7,
                     np.clip(rng.lognormal(np.log(8), 0.9, n), 1, 120).astype(np.int64), 0)
    who = np.repeat(np.arange(n), count)
    theme = rng.integers(0, themes, n)[who]
    level = cust.level[who].astype(np.int64)
    item = np.empty(len(who), np.int64)
    group = theme * 6 + level
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(themes * 6 + 1))
    for g in range(themes * 6):
        sel = order[bounds[g]:bounds[g + 1]]
        if len(sel):
            p = weights[g // 6] * np.where(cat.risk > max(g % 6, 1), 0.2, 1.0)
            item[sel] = rng.choice(m, len(sel), p=p / p.sum())
    start = np.maximum(cat.valid_from[item], today - 730)
    stop = np.minimum(cat.valid_until[item].astype(np.int64), today)
    ok = start <= stop
    who, item, start, stop = who[ok], item[ok], start[ok], stop[ok]
    day = (start + (rng.random(len(item)) * (stop - start + 1))).astype(np.int32)
    u = rng.random(len(item))
    itype = cat.item_type[item]
    grade = np.where(itype == ACTION, CONVERTED,
                     np.where(itype == FUND, np.where(u < 0.25, CONVERTED, VIEWED),
                              np.where(u < 0.03, CONVERTED,
                                       np.where(u < 0.15, CLICKED, VIEWED)))).astype(np.int8)
    return Interactions(cust.customer_id[who], item, day, grade)


def exclusions(rng: np.random.Generator, cat: Catalogue, cust: Customers,
               inter: Interactions, rows: dict[str, int]) -> Exclusions:
    """Funds bought (70 % still held) and permissions opened are held; 15 % of customers were
    sent 1–3 valid content items recently; each action's prerequisites fail for a share of
    customers; 1 % reached the frequency cap."""
    n = len(cust)
    r = np.array([rows[c] for c in inter.customer_id.tolist()], np.int64)
    bought = (inter.grade == CONVERTED) & (cat.item_type[inter.item] != CONTENT)
    keep = bought & ((cat.item_type[inter.item] == ACTION) | (rng.random(len(r)) < 0.7))
    pairs = np.unique(r[keep] * len(cat) + inter.item[keep])
    held = (pairs // len(cat), pairs % len(cat))
    today = (TODAY - EPOCH).days
    valid_content = np.flatnonzero((cat.item_type == CONTENT) & cat.valid_on(today))
    sent_to = np.flatnonzero(rng.random(n) < 0.15)
    times = rng.integers(1, 4, len(sent_to))
    sent = np.unique(np.repeat(sent_to, times) * len(cat)
                     + rng.choice(valid_content, times.sum()))
    unmet_rate = {"open_chinext": 0.7, "open_star": 0.9, "subscribe_level2": 0.6,
                  "reassure_fund_holder": 0.85, "reengage_dormant": 0.8}
    unmet_c, unmet_i = [], []
    for name, rate in unmet_rate.items():
        fails = np.flatnonzero(rng.random(n) < rate)
        unmet_c.append(fails)
        unmet_i.append(np.full(len(fails), cat.index["A:" + name], np.int64))
    return Exclusions(held, (sent // len(cat), sent % len(cat)),
                      (np.concatenate(unmet_c), np.concatenate(unmet_i)),
                      rng.random(n) < 0.01)


def feature_names() -> list[str]:
    base = [f.name for f in FEATURES if f.name not in NOT_FEATURES
            and f.name not in POSITION_FEATURES]
    return [*base, "c_level_number", "is_institution", *(f"channel_{c}" for c in CHANNELS)]


def features(rng: np.random.Generator, cust: Customers, names: list[str],
             history_total: np.ndarray) -> np.ndarray:
    """(customers, features) float32: counts, amounts, flags and ratios by the column's name,
    scaled by the customer's activity; 5 % missing outside the flags."""
    n = len(cust)
    x = np.empty((n, len(names)), np.float32)
    activity = np.log1p(history_total)
    for j, name in enumerate(names):
        if name.startswith(("traded_", "channel_")) or name.endswith(("_opened", "_active")) \
                or name in ("follows_on_wecom", "lowest_category", "assessment_expired",
                            "is_institution"):
            x[:, j] = rng.random(n) < np.clip(0.05 + 0.08 * activity, 0, 0.9)
            continue
        if name == "c_level_number":
            x[:, j] = cust.level
            continue
        if name.startswith(("trades_", "login_days", "distinct_", "rfm_", "days_since",
                            "tenure")):
            col = rng.poisson(1 + 4 * activity).astype(np.float32)
        elif "ratio" in name or "trend" in name:
            col = rng.normal(0, 0.3, n).astype(np.float32)
        else:  # an amount
            col = (rng.lognormal(9, 1.5, n) * (activity > 0)).astype(np.float32)
        col[rng.random(n) < 0.05] = np.nan
        x[:, j] = col
    return x


def build_tenant(n: int, seed: int, step: Callable[[str], None] = lambda _m: None) -> Tenant:
    """The synthetic tenant of ``n`` customers, fitted as of TODAY (see the module)."""
    import time

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    step("catalogue (demo world)")
    cat, board = catalogue(seed)
    step("customers, interactions, exclusions")
    cust = customers(rng, n)
    ids = cust.customer_id.tolist()
    rows = {c: i for i, c in enumerate(ids)}
    inter = interactions(rng, cat, board, cust)
    excl = exclusions(rng, cat, cust, inter, rows)
    config = rconfig.default()
    rules = Rules.of(cat, config)
    empty = pa.table({"customer_id": pa.array([], pa.string())})
    data = rin.TenantData(cat, config, empty, empty, empty, inter, None, board)
    today = (TODAY - EPOCH).days
    total = np.bincount(np.array([rows[c] for c in inter.customer_id.tolist()]), minlength=n)
    names = feature_names()
    x = features(rng, cust, names, total)
    seconds["synthetic data"] = time.perf_counter() - t0

    step("training split: context and LambdaRank")
    t0 = time.perf_counter()
    train_day = TODAY - dt.timedelta(days=WINDOW)
    sample = np.sort(rng.choice(n, min(TRAIN_CUSTOMERS, n), replace=False))
    s_ids = [ids[i] for i in sample]
    s_rows = {c: i for i, c in enumerate(s_ids)}
    s_cust = cust.take(sample)
    elig_train = policy.Eligibility(data, s_cust, excl.take(sample, n), train_day, rules)
    ctx_train = policy.context(data, s_rows, train_day, x[sample], s_cust.level, names)
    labels = inter.window(today - WINDOW, today).matrix(s_rows, len(cat))
    # the model learns from the even half of the sample; the odd half is held out (trade-off)
    held_out = sp.diags((np.arange(len(sample)) % 2 == 1).astype(np.float32))
    ranker = rk.LambdaRank().fit(ctx_train, (labels - held_out @ labels).tocsr(), elig_train.of,
                                 names + list(rk.ITEM_FEATURES) + list(rk.PAIR_FEATURES))
    assert ranker.model is not None
    digest = hashlib.sha256(ranker.model.booster_.model_to_string().encode()).hexdigest()[:12]
    version = f"{config.version}/{digest}"
    train = policy.Fitted("bench", train_day, data, s_ids, s_rows, elig_train, ctx_train,
                          ranker, rules, version)
    seconds["LambdaRank (training split, sample)"] = time.perf_counter() - t0

    step("as of today: popularity, ALS, title taste, eligibility")
    t0 = time.perf_counter()
    elig = policy.Eligibility(data, cust, excl, TODAY, rules)
    ctx = policy.context(data, rows, TODAY, x, cust.level, names)
    fitted = policy.Fitted("bench", TODAY, data, ids, rows, elig, ctx, ranker, rules, version)
    seconds["context as of today (popularity, ALS, taste)"] = time.perf_counter() - t0
    return Tenant(fitted, train, (held_out @ labels).tocsr(), len(inter), seconds)
