"""``caifu recommend evaluate``: every ranker on the same time split, behind the same mask.

The split: the newest day of data is D; the test window is the ``window`` days up to D and
the cutoff T is the day before it. Everything a ranker learns comes from before T (the
collaborative factors and popularity from the history, LambdaRank from an earlier split —
features before T − window, labels in (T − window, T]); its lists are made as of T for the
customers who took up an eligible item in the test window, and judged against what they took
up (gain 1 viewed, 2 clicked, 3 bought / opened). Where the demo's hidden preferences exist
(``_ground_truth``), the same lists are also judged against each customer's truly best
eligible items. Every list is re-checked by ``core.suitability.judge`` (violations must be 0).

The propensity models rank actions only (``propensity (actions)``: each eligible action by
the customer's probability from its ``score`` target's model, the unscored ones after them by
popularity), so besides the comparison over every item there is one over **actions only**:
each ranker's order of the customer's eligible actions, cut at the tenant's per-list action
limit (a list never holds more), against the actions customers took up in the test window
(permission openings, grade 3) — and, since a customer is often eligible for one action
only (on the demo every taker was: that comparison is then trivially 1.0), the one the
propensity models are made for: per action, the customers eligible for it on the cutoff
ranked by each ranker's score for the pair, against who took it up (AUC, PR-AUC, lift in
the top tenth; what "the customers for whom this action ranks first" would reach). The
propensity models used there learnt from outcomes up to
the cutoff at the latest (``services/recommend/propensities``): the newest model ``caifu
score`` saved usually learnt from the test window itself and is passed over (the notes say
which model was used).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from caifu.analytics import propensity
from caifu.data.demo.preferences import read_truth, true_utility
from caifu.recommend import rankers as rk
from caifu.recommend.catalogue import ACTION, EPOCH
from caifu.recommend.eligibility import recheck
from caifu.recommend.metrics import quality
from caifu.recommend.topk import top_k
from caifu.services.container import Container
from caifu.services.recommend import inputs as rin
from caifu.services.recommend import policy

RANKERS = ("popularity", "collaborative", "lambdarank", "propensity (actions)")
PROPENSITY = "propensity (actions)"
BLOCK = 2000


@dataclass
class RankerResult:
    name: str
    observed: dict[str, Any]
    violations: int
    seconds: float
    hidden: dict[str, Any] | None = None  # against the demo's hidden preferences


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
    policy_version: str
    rankers: list[RankerResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    action_k: int = 0  # the actions-only lists' length (the tenant's action limit, ≤ k)
    actions: list[RankerResult] = field(default_factory=list)  # over action items only
    # per action with uptakes: each ranker's ranking of the customers eligible for it
    by_action: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "cutoff": self.cutoff.isoformat(),
                "newest": self.newest.isoformat(), "window_days": self.window, "k": self.k,
                "customers": self.customers, "items": self.items,
                "eligible_items": self.eligible_items, "policy_version": self.policy_version,
                "rankers": [r.__dict__ for r in self.rankers], "notes": self.notes,
                "actions": {"k": self.action_k,
                            "rankers": [r.__dict__ for r in self.actions],
                            "customers_by_action": self.by_action}}


def hidden_relevance(f: policy.Fitted, evaluated: np.ndarray, ok: np.ndarray, truth_dir: Path,
                     k: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Each evaluated customer's k truly best eligible items (relevance 1), from the demo's
    hidden preferences (``caifu.data.demo.preferences``); actions have no hidden utility and
    customers without a preference vector no relevant item. Also the utilities (−inf where
    ineligible or unknown): ranked by them is the *oracle*, the best any ranker could do."""
    truth = read_truth(truth_dir)
    cat = f.data.cat
    rows = np.array([cat.index.get(str(i) if t == "content" else "F" + str(i), -1)
                     for t, i in zip(truth.item_type, truth.item_ids, strict=True)])
    known = rows >= 0
    pos = {str(cid): j for j, cid in enumerate(truth.customer_ids)}
    who = np.array([pos.get(f.ids[r], -1) for r in evaluated])
    util = np.full((len(evaluated), len(cat)), -np.inf)
    have = who >= 0
    util[np.ix_(have, rows[known])] = true_utility(truth.preferences[who[have]],
                                                   truth.loadings[known], truth.quality[known])
    util[~ok] = -np.inf
    best = top_k(util, np.isfinite(util), cat.item_type, k)
    r, j = np.nonzero(best >= 0)
    return sp.csr_matrix((np.ones(len(r)), (r, best[r, j])), shape=util.shape), util


def default_truth(c: Container) -> Path | None:
    """The demo workspace's hidden truth folder, when there is one."""
    path = c.root / "demo-data" / "_ground_truth"
    return path if (path / "preference_vectors.parquet").exists() else None


def evaluate(c: Container, tenant: str, *, window: int = 30, k: int = 10,
             engine: str = "duckdb", truth_dir: Path | None = None,
             progress: Callable[[str], None] = lambda _m: None,
             propensity_feature: bool = False) -> Evaluation:
    """Every ranker on the time split (module docstring); ``propensity_feature``: the policy
    with the propensity as a LambdaRank feature (``policy.fit``), to measure it."""
    config, _ = rin.load_config(c, tenant)  # a mistake in it is reported before any work
    progress("reading the catalogue and the interaction log")
    data = rin.read(c, tenant, config)
    if len(data.interactions) == 0:
        raise ValueError(f"tenant {tenant!r} has no interactions with catalogue items")
    newest = EPOCH + dt.timedelta(days=int(data.interactions.day.max()))
    cutoff = newest - dt.timedelta(days=window)
    f = policy.fit(c, tenant, cutoff, window=window, engine=engine, data=data,
                   progress=progress, propensities=True,
                   propensity_feature=propensity_feature)
    truth = policy.truth_after(f, newest, f.elig.of)
    evaluated = np.flatnonzero(np.diff(truth.indptr) > 0)
    ok = f.elig.of(evaluated)
    result = Evaluation(tenant, cutoff, newest, window, k, len(evaluated), len(data.cat),
                        _eligible_items(f), f.version, notes=list(f.notes))
    if not len(evaluated):
        result.notes.append("nobody took up an eligible item in the test window")
        return result
    share = np.asarray(f.ctx.history.sum(axis=0)).ravel()
    share = share / max(share.sum(), 1.0)
    level = f.elig.cust.level
    is_action = data.cat.item_type == ACTION
    hidden, utility = hidden_relevance(f, evaluated, ok, truth_dir, k) if truth_dir \
        else (None, None)

    def baseline(scores: Callable[[np.ndarray], np.ndarray]) -> Callable[
            [np.ndarray, np.ndarray], np.ndarray]:
        def lists(r: np.ndarray, okr: np.ndarray) -> np.ndarray:
            score = rk.rank_normalised(scores(r)) * f.rules.factor[None, :]
            return top_k(score, okr, data.cat.item_type, k, f.rules.limit)
        return lists

    policies: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "popularity": baseline(lambda r: f.ctx.popularity.score(level[r])),
        "collaborative": baseline(lambda r: f.ctx.collaborative.score(r)
                                  + 1e-6 * rk.rank_normalised(f.ctx.popularity.score(level[r]))),
        "lambdarank": lambda r, okr: f.lists(r, k, okr)[0],
        PROPENSITY: lambda r, okr: top_k(rk.propensity_scores(f.ctx, r),
                                         okr & is_action[None, :], data.cat.item_type, k,
                                         f.rules.limit),
    }
    if utility is not None:
        index = {int(r): j for j, r in enumerate(evaluated)}
        policies["oracle"] = lambda r, okr: top_k(
            utility[[index[int(x)] for x in r]], okr & np.isfinite(
                utility[[index[int(x)] for x in r]]), data.cat.item_type, k)
    for name, make in policies.items():
        progress(f"ranking with {name}")
        t0 = time.perf_counter()
        lists = np.full((len(evaluated), k), -1, np.int64)
        for start in range(0, len(evaluated), BLOCK):
            lists[start:start + BLOCK] = make(evaluated[start:start + BLOCK],
                                              ok[start:start + BLOCK])
        seconds = time.perf_counter() - t0
        chosen = lists >= 0
        rc = recheck(f.elig.cust, data.cat, cutoff, np.repeat(evaluated, k)[chosen.ravel()],
                     lists[chosen])
        q = quality(lists, truth[evaluated], share, result.eligible_items)
        h = quality(lists, hidden, share, result.eligible_items) if hidden is not None else None
        result.rankers.append(RankerResult(name, q.as_dict(), rc.violations, seconds,
                                           h.as_dict() if h else None))
    _actions_only(f, result, evaluated, ok, truth, share, progress)
    return result


def _actions_only(f: policy.Fitted, result: Evaluation, evaluated: np.ndarray,
                  ok: np.ndarray, truth: sp.csr_matrix, share: np.ndarray,
                  progress: Callable[[str], None]) -> None:
    """Each ranker's order of the eligible actions, against the actions taken up."""
    cat = f.data.cat
    is_action = cat.item_type == ACTION
    ka = int(min(result.k, f.rules.limit[ACTION]))
    result.action_k = ka
    keep = sp.diags(is_action.astype(np.float32))
    act_truth = sp.csr_matrix(truth[evaluated] @ keep)
    act_truth.eliminate_zeros()
    okact = ok & is_action[None, :]
    level = f.elig.cust.level
    eligible_actions = int((okact.any(axis=0)).sum())

    def lambdarank(r: np.ndarray, okr: np.ndarray) -> np.ndarray:
        score = np.full(okr.shape, -np.inf)
        i, j = np.nonzero(okr)
        if len(i):
            x = rk.pair_features(f.ctx, r[i], j)
            score[i, j] = f.ranker.predict(x, f.trees, f.predict_threads)
        return score

    scorers: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "popularity": lambda r, _o: f.ctx.popularity.score(level[r]),
        "collaborative": lambda r, _o: f.ctx.collaborative.score(r)
        + 1e-6 * rk.rank_normalised(f.ctx.popularity.score(level[r])),
        "lambdarank": lambdarank,
        PROPENSITY: lambda r, _o: rk.propensity_scores(f.ctx, r),
    }
    _customers_by_action(f, result, truth, scorers, progress)
    for name, scores in scorers.items():
        progress(f"ranking actions with {name}")
        t0 = time.perf_counter()
        lists = np.full((len(evaluated), ka), -1, np.int64)
        for start in range(0, len(evaluated), BLOCK):
            r, okr = evaluated[start:start + BLOCK], okact[start:start + BLOCK]
            lists[start:start + BLOCK] = top_k(scores(r, okr), okr, cat.item_type, ka)
        seconds = time.perf_counter() - t0
        chosen = lists >= 0
        rc = recheck(f.elig.cust, cat, result.cutoff,
                     np.repeat(evaluated, ka)[chosen.ravel()], lists[chosen])
        q = quality(lists, act_truth, share, eligible_actions)
        result.actions.append(RankerResult(name, q.as_dict(), rc.violations, seconds))


def save(c: Container, result: Evaluation) -> Path:
    """Keep the evaluation in the workspace (``recommend/evaluations/<tenant>/<cutoff>.json``)
    for the value report."""
    folder = c.root / "recommend" / "evaluations" / result.tenant
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.cutoff.isoformat()}.json"
    path.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1) + "\n", "utf-8")
    return path


def latest(c: Container, tenant: str) -> dict[str, Any] | None:
    """The newest saved evaluation of the tenant, if any."""
    folder = c.root / "recommend" / "evaluations" / tenant
    runs = sorted(folder.glob("*.json")) if folder.exists() else []
    return dict(json.loads(runs[-1].read_text("utf-8"))) if runs else None


def _customers_by_action(f: policy.Fitted, result: Evaluation, truth: sp.csr_matrix,
                         scorers: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]],
                         progress: Callable[[str], None]) -> None:
    """Per action, every customer eligible for it on the cutoff, ranked by each ranker's
    score of the pair; judged against who took it up in the test window. An action nobody
    (or everybody) eligible took up cannot be judged and is left out."""
    cat = f.data.cat
    actions = np.flatnonzero(cat.item_type == ACTION)
    if not len(actions):
        return
    progress("ranking customers per action")
    everyone = np.arange(len(f.ids))
    ok = np.zeros((len(everyone), len(actions)), bool)
    scores = {name: np.full(ok.shape, np.nan) for name in scorers}
    for start in range(0, len(everyone), BLOCK):
        r = everyone[start:start + BLOCK]
        okr = np.zeros((len(r), len(cat)), bool)
        okr[:, actions] = f.elig.of(r)[:, actions]
        ok[start:start + BLOCK] = okr[:, actions]
        for name, scorer in scorers.items():
            scores[name][start:start + BLOCK] = scorer(r, okr)[:, actions]
    took = truth[:, actions].toarray() > 0
    for j, item in enumerate(actions):
        who = ok[:, j]
        y = took[who, j].astype(np.int8)
        if not who.any() or y.sum() in (0, len(y)):
            continue
        row: dict[str, Any] = {"item_id": str(cat.item_id[item]), "eligible": int(who.sum()),
                               "took_up": int(y.sum()), "rankers": {}}
        for name in scorers:
            s = scores[name][who, j]
            s = np.where(np.isfinite(s), s, np.nanmin(s[np.isfinite(s)]) - 1.0
                         if np.isfinite(s).any() else 0.0)
            rank01 = (np.argsort(np.argsort(s, kind="stable"), kind="stable") + 1) / len(s)
            m = propensity.evaluate(y, rank01, ranking=s)
            row["rankers"][name] = {"auc": m.auc, "pr_auc": m.pr_auc,
                                    "lift_top_decile": m.lift_top_decile}
        result.by_action.append(row)


def _eligible_items(f: policy.Fitted) -> int:
    """Items eligible for at least one customer on the cutoff (the coverage denominator)."""
    any_ok = np.zeros(len(f.data.cat), bool)
    for start in range(0, len(f.ids), BLOCK):
        any_ok |= f.elig.of(np.arange(start, min(start + BLOCK, len(f.ids)))).any(axis=0)
    return int(any_ok.sum())
