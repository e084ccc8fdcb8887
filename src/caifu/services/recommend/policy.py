"""The recommendation policy of a tenant as of a day: fitted once, asked for many lists.

``fit`` stands at day D: the eligibility of every customer on D (assessment in force,
consent, holdings), the interaction history up to D for popularity, the collaborative
factors and the pair features, and a LambdaRank trained on the split before D (features as of
D − window, labels in (D − window, D]). ``Fitted.lists`` then ranks blocks of customers:
candidates from the cheap scorers (``rankers.cheap_scores``), LambdaRank on the candidates
only, the tenant's boosts and limits, exactly k eligible items. The evaluation uses the same
object at a past day; the batch and the sidebar at today.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from caifu.adapters.engines.session import EngineSession
from caifu.analytics import propensity
from caifu.pipelines.profile import ProfileInputs, profile_features
from caifu.recommend import rankers as rk
from caifu.recommend.catalogue import EPOCH
from caifu.recommend.eligibility import Customers, Exclusions, Mask
from caifu.recommend.topk import Rules, top_k
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.build import Build, utc_offset_hours
from caifu.services.recommend import inputs as rin
from caifu.services.recommend import propensities as prop

# items per customer LambdaRank scores (the cheap scorers' best eligible). Chosen on two
# demo seeds (7 and 11, 20,000 customers, docs/benchmarks.md "Recommendation quality"): 20,
# 30, 40 and 60 candidates reach the same observed NDCG@10 within ±0.004, fewer reach more of
# the catalogue (coverage 50–55 % at 20 against 42 % at 40) and the hidden-preference NDCG is
# highest at 20; more candidates let LambdaRank's weaker ranks through — and cost CPU
CANDIDATES = 20
BLOCK = 2000  # customers per block of the batch (``batch.write(block=...)``)


class Stages:
    """Wall seconds and CPU seconds per stage of listing, summed over calls (``with
    stages("mask"): ...``): the batch reports them and bench/recommend_batch.py prints them —
    CPU time too, as wall time on a shared machine mostly measures the neighbours. ``cpu``:
    the process's clock (every thread's, LightGBM's too) by default, ``time.thread_time``
    for one worker thread of several. Four clock reads per stage and block."""

    def __init__(self, cpu_clock: Callable[[], float] = time.process_time) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._clock = cpu_clock

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), self._clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            self.cpu[name] = self.cpu.get(name, 0.0) + self._clock() - c0

    def add(self, other: Stages) -> None:
        """Another thread's stages into these."""
        for mine, theirs in ((self.seconds, other.seconds), (self.cpu, other.cpu)):
            for name, s in theirs.items():
                mine[name] = mine.get(name, 0.0) + s


@dataclass
class Eligibility:
    """The mask of one day (``eligibility.Mask``), asked a block of customers at a time."""

    data: rin.TenantData
    cust: Customers
    excl: Exclusions
    day: dt.date
    rules: Rules

    def __post_init__(self) -> None:
        self._mask = Mask(self.cust, self.data.cat, self.day, self.excl, self.rules.filtered)

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The mask of customer ``rows`` (in their order), (len(rows), items) bool."""
        return self._mask.of(rows)


def eligibility(data: rin.TenantData, ids: list[str], rows: dict[str, int], day: dt.date,
                rules: Rules, features: pa.Table) -> Eligibility:
    return Eligibility(data, rin.customers_as_of(data, ids, day),
                       rin.exclusions_as_of(data, rows, day, features), day, rules)


def context(data: rin.TenantData, rows: dict[str, int], day: dt.date, x: np.ndarray,
            level: np.ndarray, names: list[str], propensity: np.ndarray | None = None,
            item_target: np.ndarray | None = None, propensity_feature: bool = False
            ) -> rk.Context:
    d = (day - EPOCH).days
    n_items = len(data.cat)
    hist = data.interactions.window(None, d)
    history = hist.counts(rows, n_items)
    recent = data.interactions.window(d - 30, d).counts(rows, n_items)
    pop = rk.Popularity().fit(history, level, 6)
    collab = rk.Collaborative().fit(hist.matrix(rows, n_items))
    return rk.Context(data.cat, history, recent, x, level, data.item_board, d, pop, collab,
                      names, propensity=propensity, item_target=item_target,
                      propensity_feature=propensity_feature)


@dataclass
class Fitted:
    tenant: str
    day: dt.date
    data: rin.TenantData
    ids: list[str]
    rows: dict[str, int]
    elig: Eligibility
    ctx: rk.Context
    ranker: rk.LambdaRank
    rules: Rules
    version: str  # the tenant configuration's version + the model's digest
    notes: list[str] = field(default_factory=list)  # where the propensity models came from
    candidates: int = CANDIDATES  # items per customer the ranker scores
    trees: int | None = None  # the ranker's first trees only (None: all of them)
    predict_threads: int | None = None  # LightGBM's threads (None: the model's)

    def lists(self, rows: np.ndarray, k: int, eligible: np.ndarray | None = None,
              stages: Stages | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Item rows (n, k; -1 = fewer eligible) and their scores for ``rows``."""
        stage = stages or Stages()
        item_type = self.data.cat.item_type
        with stage("mask"):
            ok = self.elig.of(rows) if eligible is None else eligible
        with stage("cheap scores"):
            cheap = rk.cheap_scores(self.ctx, rows)
        with stage("candidate top-k"):
            cand = top_k(cheap, ok, item_type, self.candidates)
        shape = (len(rows), len(self.data.cat))
        score = np.full(shape, -np.inf)
        ranked = np.zeros(shape)
        r, j = np.nonzero(cand >= 0)
        items = cand[r, j]
        if len(r):  # some customer has an eligible item
            with stage("features"):
                x = rk.pair_features(self.ctx, rows[r], items)
            with stage("LightGBM predict"):
                s = self.ranker.predict(x, self.trees, self.predict_threads)
        with stage("final top-k"):
            if len(r):
                score[r, items] = s
                # a positive, order-keeping transform, so the tenant's boosts can multiply it
                ranked[r, items] = 1 / (1 + np.exp(-s)) * self.rules.factor[items]
            finite = np.isfinite(score)
            lists = top_k(ranked, ok & finite, item_type, k, self.rules.limit)
            lists = _fill(lists, ok, cheap, item_type, k, self.rules.limit)
            scores = np.where(lists >= 0, np.take_along_axis(score, np.maximum(lists, 0), 1),
                              np.nan)
        return lists, scores


def _fill(lists: np.ndarray, ok: np.ndarray, cheap: np.ndarray, item_type: np.ndarray,
          k: int, limit: np.ndarray) -> np.ndarray:
    """A customer with more than CANDIDATES eligible items always has k candidates; with
    fewer, his candidates are all his eligible items — so a short list only happens when
    fewer than k are eligible. Kept as a guard: any hole is filled by the cheap scores."""
    short = (lists < 0).any(axis=1) & (ok.sum(axis=1) > (lists >= 0).sum(axis=1))
    if short.any():
        lists[short] = top_k(cheap[short], ok[short], item_type, k, limit)
    return lists


def _features(s: EngineSession, inputs: ProfileInputs, day: dt.date, ids: list[str],
              tz: str) -> tuple[np.ndarray, list[str], pa.Table]:
    """The ranker's customer features (no positions-snapshot features: a broker may export
    snapshots for month-ends only) and the whole profile table (for prerequisites)."""
    table = s.to_arrow(profile_features(inputs, day, utc_offset_hours(tz, day)))
    keep = [n for n in table.column_names if n not in propensity.POSITION_FEATURES]
    x, names = rin.customer_features(table.select(keep), ids)
    return x, names, table


def fit(c: Container, tenant: str, day: dt.date, *, window: int = 30,
        engine: str = "duckdb", data: rin.TenantData | None = None,
        progress: Callable[[str], None] = lambda _m: None, propensities: bool = False,
        propensity_feature: bool = False) -> Fitted:
    """The policy as of ``day``. ``propensities``: also each customer's propensity for the
    scored actions as of ``day`` (``ctx.propensity``; the evaluation's propensity ranker);
    ``propensity_feature``: LambdaRank learns from it too (``rk.Context``; off by default,
    see there), which needs the models of the training cutoff as well."""
    if data is None:
        config, _ = rin.load_config(c, tenant)
        data = rin.read(c, tenant, config)
    tz = get_tenant(c, tenant).timezone
    train_cut = day - dt.timedelta(days=window)
    ids = sorted(set(data.customers["customer_id"].to_pylist()))
    rows = {cid: i for i, cid in enumerate(ids)}
    rules = Rules.of(data.cat, data.config)
    targets = prop.score_targets(data.config)  # an unknown target is refused, used or not
    if not (propensities or propensity_feature):
        targets = []
    item_target = prop.action_targets(data.cat, data.config, targets)
    progress("profile features")
    with c.job_session(engine, "recommend-fit") as s:
        inputs = Build(c).load_inputs(s, tenant)
        x_train, names, p_train = _features(s, inputs, train_cut, ids, tz)
        x_now, _, p_now = _features(s, inputs, day, ids, tz)
        cache: dict[dt.date, pa.Table] = {}
        offset = utc_offset_hours(tz, day)
        if targets:
            progress("propensity models")
        # each cutoff its own models: the training pairs' propensities must not have seen
        # the label window after train_cut, any more than the lists' may see after day
        m_train = prop.for_day(c, s, inputs, tenant, train_cut, targets, offset, cache) \
            if propensity_feature else None
        m_now = prop.for_day(c, s, inputs, tenant, day, targets, offset, cache) \
            if targets else None
    progress("eligibility")
    elig_train = eligibility(data, ids, rows, train_cut, rules, p_train)
    elig_now = eligibility(data, ids, rows, day, rules, p_now)
    progress("popularity and the collaborative model")
    ctx_train = context(data, rows, train_cut, x_train, elig_train.cust.level, names,
                        prop.customer_propensity(m_train, p_train, ids) if m_train else None,
                        item_target, propensity_feature)
    ctx_now = context(data, rows, day, x_now, elig_now.cust.level, names,
                      prop.customer_propensity(m_now, p_now, ids) if m_now else None,
                      item_target, propensity_feature)
    labels = data.interactions.window((train_cut - EPOCH).days, (day - EPOCH).days).matrix(
        rows, len(data.cat))
    progress("LambdaRank")
    extra = [rk.PROPENSITY_FEATURE] if propensity_feature else []
    ranker = rk.LambdaRank().fit(ctx_train, labels, elig_train.of,
                                 names + list(rk.ITEM_FEATURES) + list(rk.PAIR_FEATURES)
                                 + extra)
    assert ranker.model is not None
    digest = hashlib.sha256(ranker.model.booster_.model_to_string().encode()).hexdigest()[:12]
    return Fitted(tenant, day, data, ids, rows, elig_now, ctx_now, ranker, rules,
                  f"{data.config.version}/{digest}",
                  [*(m_train.notes() if m_train else []), *(m_now.notes() if m_now else [])])


def truth_after(f: Fitted, stop: dt.date, eligible_rows: Callable[[np.ndarray], np.ndarray]
                ) -> sp.csr_matrix:
    """What each customer took up in (f.day, stop], eligible items only."""
    m = f.data.interactions.window((f.day - EPOCH).days, (stop - EPOCH).days).matrix(
        f.rows, len(f.data.cat))
    took = np.flatnonzero(np.diff(m.indptr) > 0)
    ri, ci = np.nonzero(eligible_rows(took))
    mask = sp.csr_matrix((np.ones(len(ri), np.float32), (took[ri], ci)), shape=m.shape)
    out = sp.csr_matrix(m.multiply(mask))
    out.eliminate_zeros()
    return out
