"""``caifu recommend evaluate``: every ranker on the same time split, behind the same mask.

The split: the newest day of data is D; the test window is the ``window`` days up to D and
the cutoff T is the day before it. Everything a ranker learns comes from before T (the
collaborative factors and popularity from the history, LambdaRank from an earlier split —
features before T − window, labels in (T − window, T]); its lists are made as of T for the
customers who took up an eligible item in the test window, and judged against what they took
up (gain 1 viewed, 2 clicked, 3 bought / opened). Where the demo's hidden preferences exist
(``_ground_truth``), the same lists are also judged against each customer's truly best
eligible items. Every list is re-checked by ``core.suitability.judge`` (violations must be 0).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from caifu.analytics import propensity
from caifu.pipelines.profile import profile_features
from caifu.recommend import rankers as rk
from caifu.recommend.catalogue import EPOCH
from caifu.recommend.eligibility import recheck, refusals
from caifu.recommend.metrics import quality
from caifu.recommend.topk import Rules, top_k
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.build import Build, utc_offset_hours
from caifu.services.recommend import inputs as rin

RANKERS = ("popularity", "collaborative", "lambdarank")
BLOCK = 2000


@dataclass
class RankerResult:
    name: str
    observed: dict[str, Any]
    violations: int
    seconds: float


@dataclass
class Evaluation:
    tenant: str
    cutoff: dt.date
    newest: dt.date
    window: int
    k: int
    customers: int  # evaluated: took up an eligible item in the test window
    items: int
    eligible_items: int
    rankers: list[RankerResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "cutoff": self.cutoff.isoformat(),
                "newest": self.newest.isoformat(), "window_days": self.window, "k": self.k,
                "customers": self.customers, "items": self.items,
                "eligible_items": self.eligible_items,
                "rankers": [r.__dict__ for r in self.rankers], "notes": self.notes}


def _features(s: Any, inputs: Any, day: dt.date, ids: list[str], tz: str
              ) -> tuple[np.ndarray, list[str]]:
    table = s.to_arrow(profile_features(inputs, day, utc_offset_hours(tz, day)))
    keep = [n for n in table.column_names if n not in propensity.POSITION_FEATURES]
    return rin.customer_features(table.select(keep), ids)


def _context(data: rin.TenantData, rows: dict[str, int], cutoff: int, x: np.ndarray,
             level: np.ndarray) -> rk.Context:
    n_items = len(data.cat)
    hist = data.interactions.window(None, cutoff)
    history = hist.counts(rows, n_items)
    recent = data.interactions.window(cutoff - 30, cutoff).counts(rows, n_items)
    pop = rk.Popularity().fit(history, level, 6)
    collab = rk.Collaborative().fit(hist.matrix(rows, n_items))
    return rk.Context(data.cat, history, recent, x, level, data.item_board, cutoff, pop, collab)


def evaluate(c: Container, tenant: str, *, window: int = 30, k: int = 10,
             engine: str = "duckdb", progress: Callable[[str], None] = lambda _m: None
             ) -> Evaluation:
    config, _ = rin.load_config(c, tenant)  # a mistake in it is reported before any work
    tz = _timezone(c, tenant)
    progress("reading the catalogue and the interaction log")
    data = rin.read(c, tenant, config)
    if len(data.interactions) == 0:
        raise ValueError(f"tenant {tenant!r} has no interactions with catalogue items")
    newest_day = int(data.interactions.day.max())
    newest = EPOCH + dt.timedelta(days=newest_day)
    cutoff = newest - dt.timedelta(days=window)
    train_cut = cutoff - dt.timedelta(days=window)
    t_day, tr_day = (cutoff - EPOCH).days, (train_cut - EPOCH).days
    ids = sorted(set(data.customers["customer_id"].to_pylist()))
    rows = {cid: i for i, cid in enumerate(ids)}
    n_items = len(data.cat)
    rules = Rules.of(data.cat, data.config)

    def mask(day: dt.date) -> np.ndarray:
        cust = rin.customers_as_of(data, ids, day)
        codes = refusals(cust, data.cat, day, rin.exclusions_as_of(data, rows, day),
                         rules.filtered)
        return np.asarray(codes == 0)

    progress("profile features at the two cutoffs")
    with c.job_session(engine, "recommend-evaluate") as s:
        inputs = Build(c).load_inputs(s, tenant)
        x_train, names = _features(s, inputs, train_cut, ids, tz)
        x_test, _ = _features(s, inputs, cutoff, ids, tz)
    progress("eligibility and the training split")
    cust_t = rin.customers_as_of(data, ids, cutoff)
    ok_test = mask(cutoff)
    ok_train = mask(train_cut)
    labels_train = data.interactions.window(tr_day, t_day).matrix(rows, n_items)
    truth = data.interactions.window(t_day, newest_day).matrix(rows, n_items)
    truth = sp.csr_matrix(truth.multiply(ok_test))
    truth.eliminate_zeros()
    evaluated = np.flatnonzero(np.diff(truth.indptr) > 0)
    result = Evaluation(tenant, cutoff, newest, window, k, len(evaluated), n_items,
                        int(ok_test.any(axis=0).sum()))
    if not len(evaluated):
        result.notes.append("nobody took up an eligible item in the test window")
        return result

    progress("fitting popularity and the collaborative model")
    level_train = rin.customers_as_of(data, ids, train_cut).level
    ctx_train = _context(data, rows, tr_day, x_train, level_train)
    ctx_test = _context(data, rows, t_day, x_test, cust_t.level)
    feature_names = names + list(rk.ITEM_FEATURES) + list(rk.PAIR_FEATURES)
    progress("fitting LambdaRank")
    ranker = rk.LambdaRank().fit(ctx_train, labels_train, ok_train, feature_names)
    share = np.asarray(ctx_test.history.sum(axis=0)).ravel()
    share = share / max(share.sum(), 1.0)

    scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "popularity": lambda r: ctx_test.popularity.score(cust_t.level[r]),
        "collaborative": lambda r: ctx_test.collaborative.score(r)
        + 1e-6 * rk.rank_normalised(ctx_test.popularity.score(cust_t.level[r])),
        "lambdarank": lambda r: ranker.score(ctx_test, r),
    }
    for name in RANKERS:
        progress(f"ranking with {name}")
        t0 = time.perf_counter()
        lists = np.full((len(evaluated), k), -1, np.int64)
        for start in range(0, len(evaluated), BLOCK):
            r = evaluated[start:start + BLOCK]
            score = rk.rank_normalised(scorers[name](r)) * rules.factor[None, :]
            lists[start:start + len(r)] = top_k(score, ok_test[r], data.cat.item_type, k,
                                                rules.limit)
        seconds = time.perf_counter() - t0
        chosen = lists >= 0
        rc = recheck(cust_t, data.cat, cutoff, np.repeat(evaluated, k)[chosen.ravel()],
                     lists[chosen])
        q = quality(lists, truth[evaluated], share, result.eligible_items)
        result.rankers.append(RankerResult(name, q.as_dict(), rc.violations, seconds))
    return result


def _timezone(c: Container, tenant: str) -> str:
    return get_tenant(c, tenant).timezone


