"""Rankers: each scores a block of customers × every catalogue item (higher is better).

Compared in one evaluation (``services/recommend/evaluate``), all behind the same mask:

- ``Popularity`` — how often each item was taken up in the customer's segment (his C-level)
  in the recent window, smoothed towards the whole tenant: the baseline every broker has;
- ``Collaborative`` — implicit-feedback matrix factorisation (``implicit``'s alternating
  least squares, Hu, Koren & Volinsky 2008) on the interaction log: customers who read and
  bought alike;
- propensity (``action_propensity``) — actions only: each action ranked by the customer's
  calibrated probability from its ``score`` target's model (``analytics.propensity``,
  applied by ``services/recommend/propensities``), the models a broker already has;
- ``LambdaRank`` — LightGBM's LambdaRank over customer features × item attributes ×
  interaction features (his history with the item's kind, board and risk level, the item's
  popularity in his segment, its age, the collaborative score; optionally his propensity for
  an action), trained on an earlier window than it is evaluated on. It is where cold start is
  handled: a new customer has features but no history, a new item has attributes but no
  interactions.

Scores are turned into per-customer ranks by ``topk``; only order matters, except for the
tenant's boosts, which multiply ``rank_normalised`` scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from caifu.recommend.catalogue import Catalogue

log = logging.getLogger(__name__)
SMALL_PREDICT = 10_000  # rows LightGBM predicts on one thread


def rank_normalised(scores: np.ndarray) -> np.ndarray:
    """Each row's scores → (0, 1] by rank (1 = best), so blends and boosts are scale-free."""
    order = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable")
    return np.asarray((order + 1) / scores.shape[1], np.float64)


@dataclass
class Popularity:
    """Uptake counts per segment, shrunk towards the tenant-wide counts (``prior`` pseudo
    interactions), so a small segment is not ranked by a handful of clicks."""

    prior: float = 20.0
    by_segment: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    overall: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, history: sp.csr_matrix, segment: np.ndarray, n_segments: int) -> Popularity:
        taken = (history > 0).astype(np.float64)
        self.overall = np.asarray(taken.sum(axis=0)).ravel()
        seg = sp.csr_matrix((np.ones(len(segment)), (segment, np.arange(len(segment)))),
                            shape=(n_segments, len(segment)))
        counts = np.asarray((seg @ taken).todense())
        share = self.overall / max(self.overall.sum(), 1.0)
        self.by_segment = (counts + self.prior * share[None, :]) / (
            counts.sum(axis=1, keepdims=True) + self.prior)
        return self

    def score(self, segment: np.ndarray) -> np.ndarray:
        # a tiny tenant-wide term breaks ties inside a segment the same way everywhere
        return np.asarray(self.by_segment[segment] + 1e-9 * self.overall[None, :], np.float64)


@dataclass
class Collaborative:
    """ALS factors of the confidence matrix 1 + alpha · grade (``implicit``)."""

    factors: int = 32
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 16
    user: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    item: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def fit(self, history: sp.csr_matrix) -> Collaborative:
        # imported here: implicit pulls in its threadpool checks only when a model is fitted
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work (its advice)
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, random_state=self.seed,
                calculate_training_loss=False)
            model.fit(history.astype(np.float32).tocsr(), show_progress=False)
        self.user, self.item = np.asarray(model.user_factors), np.asarray(model.item_factors)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.user[rows] @ self.item.T, np.float64)


@dataclass
class Context:
    """What the pair features of one cutoff are computed from."""

    cat: Catalogue
    history: sp.csr_matrix  # customers × items, interaction counts before the cutoff
    recent: sp.csr_matrix  # the same, last 30 days only
    customer_x: np.ndarray  # customers × customer features (profile, as of the cutoff)
    level: np.ndarray  # C-level per customer (0 none)
    item_board: np.ndarray  # int code per item (-1 none)
    cutoff: int  # day number
    popularity: Popularity
    collaborative: Collaborative
    customer_names: list[str] = field(default_factory=list)  # customer_x's columns
    groups: list[np.ndarray] = field(default_factory=list)  # item attribute codes
    # customers × the actions' score targets: calibrated propensities as of the cutoff (NaN:
    # no model or no profile), and per item its action's column in it (-1: none)
    propensity: np.ndarray | None = None
    item_target: np.ndarray | None = None
    # the pair's propensity as LambdaRank's last feature (``PROPENSITY_FEATURE``); off by
    # default: on two demo seeds it moved the observed NDCG@10 by +0.004 and −0.003 (noise)
    # and fitting the models for two cutoffs more than doubled the policy's fitting time
    propensity_feature: bool = False

    def __post_init__(self) -> None:
        cat = self.cat
        kinds = {k: i for i, k in enumerate(sorted(set(cat.kind.tolist())))}
        self.kind_code = np.array([kinds[k] for k in cat.kind.tolist()], np.int64)
        self.groups = [self.kind_code, self.item_board + 1, cat.risk.astype(np.int64),
                       cat.item_type.astype(np.int64)]
        self._hist_by = [_by_group(self.history, g) for g in self.groups]
        self._total = np.asarray(self.history.sum(axis=1)).ravel()
        pop = np.asarray(self.history.sum(axis=0)).ravel()
        rec = np.asarray(self.recent.sum(axis=0)).ravel()
        age = np.where(cat.item_type == 0, self.cutoff - cat.valid_from, -1)
        self.item_x = np.stack([cat.item_type, self.kind_code, cat.risk, cat.horizon,
                                cat.variety, self.item_board, age, np.log1p(pop),
                                np.log1p(rec)], axis=1).astype(np.float32)
        self.item_text = title_vectors(cat.title)
        taste = np.asarray(self.history @ self.item_text, np.float32)
        self.customer_text = taste / np.maximum(np.linalg.norm(taste, axis=1, keepdims=True),
                                                1e-9)
        segments = np.arange(len(self.popularity.by_segment))
        self.popularity_standardised = standardised(self.popularity.score(segments))


def title_vectors(titles: np.ndarray, dims: int = 32, seed: int = 16) -> np.ndarray:
    """Each item's title as a unit vector: TF-IDF of its character bigrams, reduced by SVD.
    What a customer read and viewed, summed in this space, is his taste in themes (sectors,
    indices, fund styles) — learnt from the words, with no list of themes to maintain."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(2, 2), min_df=2, sublinear_tf=True)
    try:
        x = tfidf.fit_transform([str(t) for t in titles])
    except ValueError:  # no bigram in two titles: nothing to learn from the words
        return np.zeros((len(titles), 1), np.float32)
    k = min(dims, x.shape[1] - 1, x.shape[0] - 1)
    if k < 1:
        return np.zeros((len(titles), 1), np.float32)
    v = TruncatedSVD(k, random_state=seed).fit_transform(x)
    return np.asarray(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9),
                      np.float32)


def _by_group(history: sp.csr_matrix, codes: np.ndarray) -> np.ndarray:
    onehot = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)),
                           shape=(len(codes), int(codes.max()) + 1))
    return np.asarray((history @ onehot).todense(), np.float32)


ITEM_FEATURES = ("item_type", "kind", "risk", "horizon", "variety", "board", "age_days",
                 "log_popularity", "log_recent_popularity")
PAIR_FEATURES = ("segment_share", "collaborative", "text_affinity", "seen_item",
                 "risk_minus_level",
                 "hist_kind", "hist_board", "hist_risk", "hist_type",
                 "share_kind", "share_board", "share_risk", "share_type")
PROPENSITY_FEATURE = "propensity"  # appended to PAIR_FEATURES when ctx.propensity_feature


def pair_features(ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(pairs, features) float32 for the pairs (rows[j], items[j]): customer features, item
    attributes, pair features — gathered, so a sample of pairs costs only itself, into one
    array allocated once (a million customers' candidates are forty million rows)."""
    cat = ctx.cat
    n_cust, n_item, n_group = ctx.customer_x.shape[1], ctx.item_x.shape[1], len(ctx.groups)
    extra = 1 if ctx.propensity_feature else 0
    out = np.empty((len(rows), n_cust + n_item + 5 + 2 * n_group + extra), np.float32)
    out[:, :n_cust] = ctx.customer_x[rows]
    out[:, n_cust:n_cust + n_item] = ctx.item_x[items]
    pair = out[:, n_cust + n_item:]
    pair[:, 0] = ctx.popularity.by_segment[ctx.level[rows], items]
    pair[:, 1] = np.einsum("ij,ij->i", ctx.collaborative.user[rows],
                           ctx.collaborative.item[items])
    pair[:, 2] = np.einsum("ij,ij->i", ctx.customer_text[rows], ctx.item_text[items])
    pair[:, 3] = np.asarray(ctx.history[rows, items]).ravel() if len(rows) else 0
    pair[:, 4] = cat.risk[items].astype(np.float32) - ctx.level[rows]
    total = ctx._total[rows] + 1.0
    for g, (h, codes) in enumerate(zip(ctx._hist_by, ctx.groups, strict=True)):
        pair[:, 5 + g] = h[rows, codes[items]]
        pair[:, 5 + n_group + g] = pair[:, 5 + g] / total
    if extra:
        pair[:, 5 + 2 * n_group] = pair_propensity(ctx, rows, items)
    return out


def pair_propensity(ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The customer's propensity for the pair's action (its ``score`` target), NaN when the
    item is not an action with a score or the customer has no propensity."""
    out = np.full(len(rows), np.nan, np.float32)
    if ctx.propensity is None or ctx.item_target is None or not len(rows):
        return out
    col = ctx.item_target[items]
    scored = col >= 0
    out[scored] = ctx.propensity[rows[scored], col[scored]]
    return out


def action_propensity(ctx: Context, rows: np.ndarray) -> np.ndarray:
    """The propensity ranker's scores, (len(rows), items): each action's propensity for the
    customer; NaN for everything else (content, funds, unscored actions)."""
    out = np.full((len(rows), len(ctx.cat)), np.nan)
    if ctx.propensity is None or ctx.item_target is None or not len(rows):
        return out
    scored = ctx.item_target >= 0  # the few scored actions: gathered, not every pair built
    out[:, scored] = ctx.propensity[np.asarray(rows)][:, ctx.item_target[scored]]
    return out


def block_features(ctx: Context, rows: np.ndarray) -> np.ndarray:
    """Every item for each of ``rows``, customer-major (row ``j * items + i``)."""
    m = len(ctx.cat)
    return pair_features(ctx, np.repeat(rows, m), np.tile(np.arange(m), len(rows)))


@dataclass
class LambdaRank:
    """LightGBM LambdaRank on (customer, item) pairs, one query per customer: every item he
    took up in the label window (graded) and a sample of eligible items he did not."""

    negatives: int = 30
    max_customers: int = 4000
    # 50 trees: as good as 150 on both demo seeds (NDCG@10 +0.004–0.008, hidden NDCG
    # +0.02) at about half the listing CPU — the later trees fit noise in the sampled pairs
    trees: int = 50
    seed: int = 16
    model: lgb.LGBMRanker | None = None

    def fit(self, ctx: Context, labels: sp.csr_matrix,
            eligible: Callable[[np.ndarray], np.ndarray], feature_names: list[str]
            ) -> LambdaRank:
        """``eligible(rows)``: the mask of those customers on the training cutoff."""
        rng = np.random.default_rng(self.seed)
        took = np.flatnonzero(np.diff(labels.tocsr().indptr) > 0)
        ok_took = eligible(took)
        lab_took = labels[took].toarray()
        has = ((lab_took > 0) & ok_took).any(axis=1)
        positive = np.flatnonzero(has)  # positions in ``took``
        if len(positive) > self.max_customers:
            positive = np.sort(rng.choice(positive, self.max_customers, replace=False))
        pair_rows, pair_items, ys, groups = [], [], [], []
        lab = lab_took[positive]
        for j, p in enumerate(positive):
            r = took[p]
            ok = ok_took[p]
            pos = np.flatnonzero(ok & (lab[j] > 0))
            neg = np.flatnonzero(ok & (lab[j] == 0))
            neg = rng.choice(neg, min(self.negatives, len(neg)), replace=False)
            take = np.concatenate([pos, neg])
            pair_rows.append(np.full(len(take), r))
            pair_items.append(take)
            ys.append(lab[j, take].astype(np.int32))
            groups.append(len(take))
        if not groups:
            raise ValueError("no customer took up an eligible item in the training window")
        x = pair_features(ctx, np.concatenate(pair_rows), np.concatenate(pair_items))
        self.model = lgb.LGBMRanker(objective="lambdarank", n_estimators=self.trees,
                                    learning_rate=0.08, num_leaves=31, min_child_samples=40,
                                    max_bin=63,
                                    subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                                    random_state=self.seed, n_jobs=2, verbose=-1)
        self.model.fit(x, np.concatenate(ys), group=groups, feature_name=feature_names)
        return self

    def score(self, ctx: Context, rows: np.ndarray) -> np.ndarray:
        """Every item for each of ``rows`` (n, items)."""
        if self.model is None:
            raise ValueError("LambdaRank is not fitted")
        x = block_features(ctx, rows)
        return np.asarray(self.model.booster_.predict(x), np.float64).reshape(len(rows),
                                                                             len(ctx.cat))

    def predict(self, x: np.ndarray, trees: int | None = None, threads: int | None = None
                ) -> np.ndarray:
        """The scores of ``pair_features`` rows ``x``; ``trees``: the first ones only (what
        fewer trees would cost, without a second model); ``threads``: LightGBM's (None: the
        model's). A few rows (the sidebar's one customer) always get one thread: waking a
        second costs more than it saves, and milliseconds on a busy machine."""
        if self.model is None:
            raise ValueError("LambdaRank is not fitted")
        if len(x) < SMALL_PREDICT:
            threads = 1
        extra: dict[str, Any] = {} if threads is None else {"num_threads": threads}
        return np.asarray(self.model.booster_.predict(x, num_iteration=trees, **extra),
                          np.float64)


def propensity_scores(ctx: Context, rows: np.ndarray) -> np.ndarray:
    """The propensity ranker (actions only): an action's calibrated probability where its
    target has one; below every probability, in the segment's popularity order, everything
    else (actions without a score, customers without a model's score; content and funds,
    which the evaluation masks out for this ranker)."""
    p = action_propensity(ctx, rows)
    fallback = rank_normalised(ctx.popularity.score(ctx.level[rows])) - 2.0
    return np.where(np.isfinite(p), p, fallback)


def standardised(x: np.ndarray) -> np.ndarray:
    """Each row centred and scaled by its own spread (0 where flat): comparable across the
    cheap scorers without sorting (rank-normalising a million rows costs minutes)."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    spread = sd > 0
    out: np.ndarray = x - mean
    out /= np.where(spread, sd, 1.0)
    out[~spread[:, 0]] = 0.0
    return out


def cheap_scores(ctx: Context, rows: np.ndarray) -> np.ndarray:
    """Popularity in the segment + collaborative score + the customer's history with the
    item's kind, board and risk level + his taste in title words, each standardised per
    customer: the candidate generator. (Popularity is standardised once per segment.)"""
    denominator = ctx._total[rows, None] + 1.0
    affinity = None
    for h, g in zip(ctx._hist_by[:3], ctx.groups[:3], strict=True):
        part = (h[rows] / denominator)[:, g]  # divided per group, then spread over items
        affinity = part if affinity is None else affinity + part
    out: np.ndarray = ctx.popularity_standardised[ctx.level[rows]]
    out += standardised(ctx.collaborative.score(rows))
    out += standardised(np.asarray(affinity, np.float64))
    out += standardised(np.asarray(ctx.customer_text[rows] @ ctx.item_text.T, np.float64))
    return out
