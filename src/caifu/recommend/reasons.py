"""Why an item was offered, in words an advisor can repeat to the customer.

Each reason comes from a fact the ranker saw — the customer's trading on the item's board,
his own history with items of the same board or kind, an item he already looked at, customers
like him, what investors of his level take up — never from the score alone. Up to two facts,
strongest first (his own behaviour before the crowd's), e.g.
「近一年交易过创业板股票；近期看过 3 次创业板相关内容」. Vectorised over (customer, item)
pairs: a batch writes ten million of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from caifu.recommend.catalogue import ACTION, CONTENT, FUND

if TYPE_CHECKING:  # LightGBM, under the rankers, is not needed to name a fund type
    from caifu.recommend.rankers import Context

KIND_NAMES = {"research_report": "研报", "advisor_view": "投顾观点", "event": "活动",
              "product_intro": "产品介绍", "money": "货币基金", "bond": "债券基金",
              "hybrid": "混合基金", "equity": "股票基金", "index": "指数基金",
              "qdii": "QDII 基金", "fof": "FOF 基金"}
BOARD_NAMES = np.array(["主板", "创业板", "科创板", "北交所", "ETF"], dtype=object)
BOARD_KEYS = ("main", "chinext", "star", "bse", "etf")
DEFAULT = "符合您的风险等级与投资偏好"


def _column(ctx: Context, rows: np.ndarray, name: str) -> np.ndarray:
    if name not in ctx.customer_names:
        return np.zeros(len(rows))
    return np.asarray(np.nan_to_num(ctx.customer_x[rows, ctx.customer_names.index(name)]), np.float64)


_NUMBERS = np.asarray([str(i) for i in range(1000)], dtype=object)


def _num(values: np.ndarray) -> np.ndarray:
    """Counts as text (a lookup: ten million f-strings would cost seconds)."""
    v = np.asarray(values).astype(np.int64)
    small = (v >= 0) & (v < len(_NUMBERS))
    out = _NUMBERS[np.where(small, v, 0)]
    if not small.all():
        out[~small] = [str(int(x)) for x in v[~small]]
    return np.asarray(out, dtype=object)


def explain(ctx: Context, rows: np.ndarray, items: np.ndarray, most: int = 2) -> np.ndarray:
    """Reason texts (object array) for the pairs (rows[j], items[j]). A fact's text is made
    only for the pairs that still take one (at most ``most`` each), not for every pair."""
    cat = ctx.cat
    n = len(rows)
    if n == 0:
        return np.zeros(0, dtype=object)
    board = ctx.item_board[items]
    has_board = board >= 0
    b = np.maximum(board, 0)
    itype = cat.item_type[items]
    kind_name = np.asarray([KIND_NAMES.get(str(k), "") for k in cat.kind], dtype=object)[items]
    traded = np.zeros(n, bool)
    for i, key in enumerate(BOARD_KEYS):
        sel = has_board & (board == i)
        if sel.any():
            traded[sel] = _column(ctx, rows[sel], f"traded_{key}_365d") > 0
    n_board = np.where(has_board, ctx._hist_by[1][rows, np.where(has_board, b + 1, 0)], 0)
    n_kind = ctx._hist_by[0][rows, ctx.kind_code[items]]
    seen = np.asarray(ctx.history[rows, items]).ravel() > 0
    trades = _column(ctx, rows, "trades_90d")
    collab_all = np.einsum("ij,ij->i", ctx.collaborative.user[rows],
                           ctx.collaborative.item[items])
    collab_cut = _collab_cut(ctx)
    seg = ctx.popularity.by_segment[ctx.level[rows], items]
    seg_cut = np.quantile(ctx.popularity.by_segment, 0.9, axis=1)[ctx.level[rows]]  # 6 rows
    level = ctx.level[rows]
    permission = np.isin(cat.kind, ["open_chinext", "open_star"])[items]
    # (which pairs state the fact, its text for the pairs at positions s)
    facts: list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = [
        (has_board & traded, lambda s: "近一年交易过" + BOARD_NAMES[b[s]] + "股票"),
        (has_board & (n_board >= 2), lambda s: "近期看过 " + _num(n_board[s]) + " 次"
         + BOARD_NAMES[b[s]] + "相关内容"),
        ((itype == CONTENT) & (n_kind >= 1) & (kind_name != ""),
         lambda s: "近期看过 " + _num(n_kind[s]) + " 篇" + kind_name[s]),
        ((itype == FUND) & (n_kind >= 1) & (kind_name != ""),
         lambda s: "关注过" + kind_name[s] + "（" + _num(n_kind[s]) + " 次）"),
        (seen, lambda s: np.where(itype[s] == CONTENT, "看过这一内容",
                                  "看过这一产品").astype(object)),
        ((itype == ACTION) & permission & (trades > 0),
         lambda s: "近 90 天有 " + _num(trades[s]) + " 笔交易"),
        ((collab_all > 0) & (collab_all >= collab_cut),
         lambda s: np.full(len(s), "与您相似的客户常看", dtype=object)),
        (seg >= seg_cut, lambda s: np.where(level[s] > 0, "C" + _num(level[s]) + " 投资者近期热门",
                                            "近期热门").astype(object)),
        ((itype == CONTENT) & (ctx.cutoff - cat.valid_from[items] <= 7),
         lambda s: np.full(len(s), "本周新发布", dtype=object)),
    ]
    out = np.full(n, "", dtype=object)
    count = np.zeros(n, np.int64)
    for hit, text in facts:
        take = np.flatnonzero(hit & (count < most))
        if len(take) == 0:
            continue
        words = text(take)
        second = count[take] > 0
        out[take] = np.where(second, out[take] + ("；" + words), words)
        count[take] += 1
    out[count == 0] = DEFAULT
    return out


def _collab_cut(ctx: Context) -> float:
    """The 90th percentile of collaborative scores (on a fixed sample of ≤ 5,000 customers),
    computed once per context."""
    cached = getattr(ctx, "_collab_cut", None)
    if cached is not None:
        return float(cached)
    users = ctx.collaborative.user
    rng = np.random.default_rng(0)
    sample = rng.choice(len(users), min(5000, len(users)), replace=False)
    cut = float(np.quantile(users[sample] @ ctx.collaborative.item.T, 0.9))
    ctx._collab_cut = cut  # type: ignore[attr-defined]
    return cut
