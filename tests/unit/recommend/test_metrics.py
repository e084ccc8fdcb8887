"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from caifu.recommend.metrics import quality


def test_hand_computed_ndcg_recall_map_coverage_novelty() -> None:
    # customer 0 wants items 1 (gain 1) and 3 (gain 2); customer 1 wants nothing
    truth = sp.csr_matrix(np.array([[0, 1, 0, 2, 0], [0, 0, 0, 0, 0]], float))
    lists = np.array([[3, 0, 1], [2, 4, -1]])
    share = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    q = quality(lists, truth, share, eligible_items=5)
    dcg = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(4)
    idcg = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert q.ndcg == pytest.approx(dcg / idcg)
    assert q.recall == pytest.approx(1.0)
    assert q.map == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert q.evaluated == 1
    assert q.coverage == pytest.approx(5 / 5)
    assert q.novelty == pytest.approx(np.mean(-np.log2([0.0625, 0.5, 0.25, 0.125, 0.0625])))


def test_a_miss_scores_zero() -> None:
    truth = sp.csr_matrix(np.array([[1.0, 0, 0]]))
    q = quality(np.array([[1, 2]]), truth, np.full(3, 1 / 3), eligible_items=3)
    assert (q.ndcg, q.recall, q.map) == (0.0, 0.0, 0.0)
