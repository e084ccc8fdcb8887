"""Hidden content and product preferences: a small latent topic model behind what customers
view, buy and open.

Every content item and fund product loads on ``TOPICS``, derived only from attributes the
product can see (so a ranker can learn them from features): the board of the related
security or of an index/board named in the title or fund name, the sector (a ``text.SECTORS``
word or its synonyms in the title or name, or the related security's industry), the content
type, the fund type (a product introduction's fund's type) and the risk level R1–R5. A
loading is that multi-hot vector with a small item-specific weight per attribute
(``exp(N(0, 0.2))``), plus a scalar ``quality``: N(0, 0.5) for content, the world's fund
popularity (centred log) for funds, so plain popularity carries some of the signal.

Every customer has a preference over the same topics: a part that follows his latent traits
(risk appetite → higher-risk items and growth sectors, ChiNext interest → ChiNext items,
fund affinity → fund types and product introductions, age → pension FOFs, activity →
research), a few favourite sectors, and individual noise that no feature explains (what
collaborative filtering has to learn from his history).

The true utility of an item for a customer is ``preference · loading + quality``
(:func:`true_utility`). Behaviour follows it: a content view picks a published item with
probability ∝ ``exp(u / CONTENT_TEMPERATURE) × recency_weight(age)``, a fund page view an
available fund ∝ ``exp(u / FUND_VIEW_TEMPERATURE)``, a purchase a fund of the customer's
level ∝ ``exp(u / PURCHASE_TEMPERATURE)``, and a campaign's open and click rates scale with
``2 σ(u − the customer's mean content utility)``. Recency and suitability shape what is seen
and bought, not the utility.

The truth goes to ``_ground_truth/`` (the product never reads it):

- ``preference_vectors.parquet``: ``customer_id`` and one float64 column per topic;
- ``item_topics.parquet``: ``item_type`` (``content`` | ``fund``), ``item_id`` (``content_id``
  or ``fund_code``), one float64 column per topic, ``quality``.

The topic columns, in order: ``board_{main,chinext,star,bse,etf}``,
``sector_{new_energy,semiconductor,baijiu,pharma,brokerage,solar,defense,ai,bank,dividend}``,
``content_{research_report,advisor_view,event,product_intro}``,
``fund_{money,bond,hybrid,equity,index,qdii,fof}``, ``risk_r1`` … ``risk_r5``.
:func:`read_truth` loads both files back as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caifu.data.demo import text

BOARDS = ("main", "chinext", "star", "bse", "etf")
# sector topic -> words in a title or fund name that put an item in it: first the sector's
# word in ``text.SECTORS``, then synonyms
SECTOR_WORDS = {"new_energy": ("新能源", "锂电"), "semiconductor": ("半导体", "芯片"),
                "baijiu": ("白酒", "酒"), "pharma": ("医药", "医疗"), "brokerage": ("证券",),
                "solar": ("光伏",), "defense": ("军工",), "ai": ("人工智能", "科技"),
                "bank": ("银行",), "dividend": ("红利",)}
CONTENT_TYPES = ("research_report", "advisor_view", "event", "product_intro")
FUND_TYPES = tuple(text.FUND_KINDS)
RISK_LEVELS = ("R1", "R2", "R3", "R4", "R5")
TOPICS: tuple[str, ...] = (
    *(f"board_{b}" for b in BOARDS), *(f"sector_{s}" for s in SECTOR_WORDS),
    *(f"content_{c}" for c in CONTENT_TYPES), *(f"fund_{f}" for f in FUND_TYPES),
    *(f"risk_{r.lower()}" for r in RISK_LEVELS))
_AT = {name: i for i, name in enumerate(TOPICS)}

# words in a title or fund name that name a board (when no related security gives it)
BOARD_WORDS = {"chinext": ("创业板",), "star": ("科创",), "bse": ("北交所", "北证"),
               "etf": ("ETF",), "main": ("上证50", "沪深300", "中证500")}
# a related security's industry (securities.industry) -> sector topic
INDUSTRY_SECTOR = {"电力设备": "new_energy", "电子": "semiconductor", "医药生物": "pharma",
                   "非银金融": "brokerage", "国防军工": "defense", "计算机": "ai", "银行": "bank"}
# how often a sector is among a customer's favourites (the popular themes of 2024–2026)
SECTOR_POPULARITY = np.array([0.14, 0.13, 0.12, 0.12, 0.08, 0.08, 0.07, 0.13, 0.06, 0.07])

CONTENT_TEMPERATURE = 1.0
FUND_VIEW_TEMPERATURE = 1.0
PURCHASE_TEMPERATURE = 0.9  # buys as concentrated on the top funds as before: top 10 ≈ 57 %
RECENCY_DAYS = 30.0  # a content item's attention halves after this many days, then keeps falling
US_PER_DAY = 86_400 * 10**6
_BLOCK = 4096  # rows per block when drawing, so memory stays flat (block × items floats)


@dataclass(frozen=True)
class ItemTopics:
    """Loadings (items × topics) and quality of the world's content items and funds."""

    content: np.ndarray
    content_quality: np.ndarray
    fund: np.ndarray
    fund_quality: np.ndarray


def true_utility(customer_vectors: np.ndarray, item_vectors: np.ndarray,
                 quality: np.ndarray | None = None) -> np.ndarray:
    """``u[c, i] = customer_vectors[c] · item_vectors[i] + quality[i]``: (customers × items).

    ``customer_vectors`` are rows of ``preference_vectors.parquet``, ``item_vectors`` and
    ``quality`` rows of ``item_topics.parquet``, topic columns in ``TOPICS`` order. This is the
    utility the demo's behaviour was drawn from: rank by it for the ideal list.
    """
    u = np.asarray(customer_vectors, np.float64) @ np.asarray(item_vectors, np.float64).T
    return u if quality is None else u + np.asarray(quality, np.float64)[None, :]


def recency_weight(age_days: np.ndarray) -> np.ndarray:
    """Attention an item gets ``age_days`` after it was published: ``1 / (1 + age / 30)``,
    0 before publication. Behaviour only: the utility has no time in it."""
    age = np.asarray(age_days)
    return np.where(age >= 0, 1 / (1 + np.maximum(age, 0) / RECENCY_DAYS), 0)


# --- items ---------------------------------------------------------------------------------------


def _words(s: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    return [key for key, words in table.items() if any(w in s for w in words)]


def _attributes(name: str, board: str | None, industry: str | None, content_type: str | None,
                fund_type: str | None, risk: str) -> list[int]:
    """Topic indices an item has, from its observable attributes."""
    boards = {board} if board else set(_words(name, BOARD_WORDS))
    sectors = set(_words(name, SECTOR_WORDS))
    if industry in INDUSTRY_SECTOR:
        sectors.add(INDUSTRY_SECTOR[industry])
    out = [_AT[f"board_{b}"] for b in sorted(boards)] + [_AT[f"sector_{s}"] for s in sorted(sectors)]
    if content_type:
        out.append(_AT[f"content_{content_type}"])
    if fund_type:
        out.append(_AT[f"fund_{fund_type}"])
    out.append(_AT[f"risk_{risk.lower()}"])
    return out


def _loadings(rng: np.random.Generator, attrs: Sequence[list[int]]) -> np.ndarray:
    onehot = np.zeros((len(attrs), len(TOPICS)))
    for i, a in enumerate(attrs):
        onehot[i, a] = 1.0
    return onehot * np.exp(rng.normal(0, 0.2, onehot.shape))


def item_topics(rng: np.random.Generator, contents: pa.Table, securities: pa.Table,
                funds: pa.Table, fund_popularity: np.ndarray) -> ItemTopics:
    """Loadings and quality of every content item and fund, in table order."""
    sec = {r["security_code"]: r for r in
           securities.select(["security_code", "security_type", "board", "industry"]).to_pylist()}
    fund_rows = funds.select(["fund_code", "name", "fund_type", "risk_level"]).to_pylist()
    fund_type = {r["fund_code"]: r["fund_type"] for r in fund_rows}
    content_attrs = []
    for r in contents.select(["content_type", "title", "risk_level", "security_code",
                              "fund_code"]).to_pylist():
        s = sec.get(r["security_code"]) or {}
        board = "etf" if s.get("security_type") == "etf" else s.get("board")
        content_attrs.append(_attributes(r["title"], board, s.get("industry"), r["content_type"],
                                         fund_type.get(r["fund_code"]), r["risk_level"]))
    fund_attrs = [_attributes(r["name"], None, None, None, r["fund_type"], r["risk_level"])
                  for r in fund_rows]
    content = _loadings(rng, content_attrs)
    content_quality = rng.normal(0, 0.5, len(content_attrs))
    log_pop = np.log(np.asarray(fund_popularity, np.float64))
    return ItemTopics(content, content_quality, _loadings(rng, fund_attrs), log_pop - log_pop.mean())


def item_table(world_contents: pa.Table, world_funds: pa.Table, topics: ItemTopics) -> pa.Table:
    """``item_topics.parquet``: content items then funds, one row each."""
    n_c, n_f = len(topics.content_quality), len(topics.fund_quality)
    loadings = np.vstack([topics.content, topics.fund])
    cols: dict[str, object] = {
        "item_type": ["content"] * n_c + ["fund"] * n_f,
        "item_id": world_contents["content_id"].to_pylist() + world_funds["fund_code"].to_pylist(),
    }
    cols |= {t: loadings[:, k] for k, t in enumerate(TOPICS)}
    cols["quality"] = np.r_[topics.content_quality, topics.fund_quality]
    return pa.table(cols)


# --- customers -----------------------------------------------------------------------------------


def customer_preferences(rng: np.random.Generator, *, risk: np.ndarray, chinext_i: np.ndarray,
                         level2_i: np.ndarray, fund_aff: np.ndarray, activity: np.ndarray,
                         age: np.ndarray, has_advisor: np.ndarray) -> np.ndarray:
    """Preference vectors (customers × topics): trait-driven part + favourite sectors + noise.

    The coefficients make each group of topics matter about as much as the others, so no
    single attribute decides a ranking; the noise (σ 0.5 per topic) is of the same size as
    the trait-driven part, so a customer's history says things his traits do not.
    """
    n = len(risk)
    p = np.zeros((n, len(TOPICS)))
    p[:, _AT["board_main"]] = 0.2
    p[:, _AT["board_chinext"]] = 2.0 * (chinext_i - 0.3)
    p[:, _AT["board_star"]] = 1.5 * (risk - 0.5)
    p[:, _AT["board_bse"]] = 1.0 * (risk - 0.6) - 0.3
    p[:, _AT["board_etf"]] = 0.8 * (fund_aff - 0.3)
    growth = [_AT[f"sector_{s}"] for s in ("semiconductor", "ai", "defense", "new_energy")]
    value = [_AT[f"sector_{s}"] for s in ("bank", "dividend")]
    p[:, growth] += 0.8 * (risk - 0.5)[:, None]
    p[:, value] -= 0.8 * (risk - 0.5)[:, None]
    sectors = [_AT[f"sector_{s}"] for s in SECTOR_WORDS]
    keys = np.log(SECTOR_POPULARITY) + rng.gumbel(size=(n, len(sectors)))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    favourites = rng.choice([1, 2, 3], n, p=[0.3, 0.45, 0.25])
    p[:, sectors] += 1.2 * (rank < favourites[:, None])
    p[:, _AT["content_research_report"]] = 0.4 * np.log1p(activity) - 0.3
    p[:, _AT["content_advisor_view"]] = np.where(has_advisor, 0.3, -0.2)
    p[:, _AT["content_event"]] = 0.8 * (level2_i - 0.2)
    p[:, _AT["content_product_intro"]] = 1.5 * (fund_aff - 0.3)
    # most buyers keep below the level their questionnaire allows: the preferred risk level
    # sits at 0.7 × appetite, and safe funds lead until appetite is high (these two keep the
    # fund types bought near their shares before preferences existed: money and bond ~2/3)
    shape = {"money": 1.5 * (0.7 - risk), "bond": 1.2 * (0.7 - risk), "hybrid": np.zeros(n),
             "equity": 1.5 * (risk - 0.7), "index": 0.8 * (risk - 0.7),
             "qdii": 1.2 * (risk - 0.7), "fof": np.where(age > 50, 0.6, -0.3)}
    for f, v in shape.items():
        p[:, _AT[f"fund_{f}"]] = v + 1.0 * (fund_aff - 0.3)
    level = np.linspace(0, 1, len(RISK_LEVELS))
    p[:, [_AT[f"risk_{r.lower()}"] for r in RISK_LEVELS]] = \
        1.0 - 3.0 * (level[None, :] - 0.7 * risk[:, None]) ** 2
    return p + rng.normal(0, 0.5, p.shape)


def preference_table(customer_id: np.ndarray, prefs: np.ndarray) -> pa.Table:
    """``preference_vectors.parquet`` rows for one chunk of customers."""
    cols: dict[str, object] = {"customer_id": pa.array(customer_id, pa.string())}
    cols |= {t: prefs[:, k] for k, t in enumerate(TOPICS)}
    return pa.table(cols)


# --- drawing -------------------------------------------------------------------------------------


def draw_items(prefs: np.ndarray, loadings: np.ndarray, quality: np.ndarray,
               temperature: float, who: np.ndarray, uniform: np.ndarray, *,
               weight: np.ndarray | None = None, at: np.ndarray | None = None,
               since: np.ndarray | None = None, recency: bool = False) -> np.ndarray:
    """One item per draw j, for customer ``prefs[who[j]]``: P(i) ∝ exp(u / temperature) ×
    weight[i] × w_t(i).

    With ``at`` (per draw) and ``since`` (per item, both in microseconds), an item is
    available from ``since`` on: w_t is 1 from then (``recency=False``) or
    :func:`recency_weight` of its age (``recency=True``), 0 before. ``uniform`` (one U[0, 1)
    per draw) is the only randomness, so a caller that drew as many uniforms before keeps its
    random stream where it was. Each draw needs an item of positive weight. exp(u / T) is
    computed once per customer, the draws go in blocks, so time and memory stay small.
    """
    customers, row = np.unique(who, return_inverse=True)
    scores = np.empty((len(customers), len(quality)), np.float32)
    for lo in range(0, len(customers), _BLOCK):
        u = true_utility(prefs[customers[lo:lo + _BLOCK]], loadings, quality) / temperature
        scores[lo:lo + _BLOCK] = np.exp(u - u.max(axis=1, keepdims=True))
    if weight is not None:
        scores *= np.asarray(weight, np.float32)
    if at is not None and since is not None:  # days since the first draw, in float32 for speed
        at_day = ((at - at.min()) / US_PER_DAY).astype(np.float32)
        since_day = ((since - at.min()) / US_PER_DAY).astype(np.float32)
    out = np.empty(len(who), np.int64)
    for lo in range(0, len(who), _BLOCK):
        hi = min(lo + _BLOCK, len(who))
        w = scores[row[lo:hi]]
        if at is not None and since is not None:
            w *= at[lo:hi, None] >= since[None, :]  # exact: nothing is seen before it exists
            if recency:
                w *= recency_weight(at_day[lo:hi, None] - since_day[None, :])
        cw = np.cumsum(w, axis=1)
        # (1 - U) * total is in (0, total]: the first item whose cumulative weight reaches it
        # has positive weight
        target = (1 - uniform[lo:hi]) * cw[:, -1]
        out[lo:hi] = (cw < target[:, None]).sum(axis=1)
    return out


def open_factor(prefs: np.ndarray, topics: ItemTopics, content: int) -> np.ndarray:
    """How much more (up to 2×) or less than usual a customer opens and clicks a message
    about content item ``content``: ``2 σ(u − his mean utility over all content)``."""
    u = true_utility(prefs, topics.content, topics.content_quality)
    factor: np.ndarray = 2 / (1 + np.exp(-(u[:, content] - u.mean(axis=1))))
    return factor


# --- reading the truth back ----------------------------------------------------------------------


@dataclass(frozen=True)
class PreferenceTruth:
    """The demo's hidden preferences, as written to ``_ground_truth/``."""

    customer_ids: np.ndarray
    preferences: np.ndarray  # customers × topics
    item_type: np.ndarray  # "content" | "fund"
    item_ids: np.ndarray
    loadings: np.ndarray  # items × topics
    quality: np.ndarray

    def utility(self) -> np.ndarray:
        """Every customer's true utility for every item (customers × items)."""
        return true_utility(self.preferences, self.loadings, self.quality)


def read_truth(ground_truth: Path) -> PreferenceTruth:
    """Load ``preference_vectors.parquet`` and ``item_topics.parquet`` from a demo's
    ``_ground_truth`` folder."""
    prefs = pq.read_table(Path(ground_truth) / "preference_vectors.parquet")
    items = pq.read_table(Path(ground_truth) / "item_topics.parquet")
    return PreferenceTruth(
        np.asarray(prefs["customer_id"].to_pylist()),
        np.column_stack([prefs[t].to_numpy() for t in TOPICS]),
        np.asarray(items["item_type"].to_pylist()), np.asarray(items["item_id"].to_pylist()),
        np.column_stack([items[t].to_numpy() for t in TOPICS]), items["quality"].to_numpy())


__all__ = ["TOPICS", "ItemTopics", "PreferenceTruth", "customer_preferences", "draw_items",
           "item_table", "item_topics", "open_factor", "preference_table", "read_truth",
           "recency_weight", "true_utility"]
