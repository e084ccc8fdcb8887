"""Ranking quality of recommendation lists against what each customer actually wanted.

Lists are item rows per customer (``topk.top_k``'s int (n, k), -1 = empty slot); the truth
is a sparse customers × items matrix of graded relevance (0 = not relevant): the items a
customer interacted with in the test period (gain by how far he went: viewed < clicked <
bought), or the demo's hidden utilities. Customers with nothing relevant are left out of
NDCG, recall and MAP (they cannot be ranked well or badly) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Quality:
    ndcg: float
    recall: float
    map: float
    coverage: float
    novelty: float
    evaluated: int  # customers with something relevant

    def as_dict(self) -> dict[str, float | int]:
        return {"ndcg": self.ndcg, "recall": self.recall, "map": self.map,
                "coverage": self.coverage, "novelty": self.novelty,
                "evaluated": self.evaluated}


def _gains(lists: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """The relevance of each listed item, (n, k) float; 0 for empty slots."""
    rows = np.repeat(np.arange(lists.shape[0]), lists.shape[1])
    cols = lists.ravel()
    g = np.zeros(len(cols))
    ok = cols >= 0
    g[ok] = np.asarray(truth[rows[ok], cols[ok]]).ravel()
    return g.reshape(lists.shape)


def quality(lists: np.ndarray, truth: sp.csr_matrix, item_share: np.ndarray,
            eligible_items: int) -> Quality:
    """NDCG@k (exponential gain 2^rel − 1), recall@k (hits / relevant items) and MAP@k
    (average precision, over min(relevant, k)) over customers with a relevant item; coverage = distinct listed items / items eligible for anyone; novelty = mean
    −log2 of a listed item's share of the training interactions (``item_share``)."""
    k = lists.shape[1]
    truth = truth.tocsr()
    truth.eliminate_zeros()  # an explicit 0 is not a relevant item
    n_rel = np.diff(truth.indptr)
    has = n_rel > 0
    gains = _gains(lists, truth)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = ((2.0 ** gains - 1) * discount).sum(axis=1)
    ideal = np.zeros(len(n_rel))
    for r in np.flatnonzero(has):
        top = np.sort(truth.data[truth.indptr[r]:truth.indptr[r + 1]])[::-1][:k]
        ideal[r] = ((2.0 ** top - 1) * discount[:len(top)]).sum()
    hit = gains > 0
    recall = hit.sum(axis=1) / np.maximum(n_rel, 1)
    precision_at = np.cumsum(hit, axis=1) / np.arange(1, k + 1)
    ap = (precision_at * hit).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1)
    listed = np.unique(lists[lists >= 0])
    share = np.maximum(item_share[lists[lists >= 0]], 1e-12)
    return Quality(
        ndcg=float(np.mean(dcg[has] / ideal[has])) if has.any() else 0.0,
        recall=float(np.mean(recall[has])) if has.any() else 0.0,
        map=float(np.mean(ap[has])) if has.any() else 0.0,
        coverage=len(listed) / eligible_items if eligible_items else 0.0,
        novelty=float(np.mean(-np.log2(share))) if len(share) else 0.0,
        evaluated=int(has.sum()))
