"""The catalogue: content items, fund products and actions as one table of offerable items.

Every item carries what suitability judges — its R-level, and where it has them its horizon
and its variety (``core.suitability``) — plus a validity window, so the eligibility mask
(``recommend.eligibility``) can treat a research note, a fund and "open ChiNext" alike. Items
are numpy columns: the mask and the rankers work on thousands of items × a million customers.

- **content** (``content_items``): R-level as published; valid from publication for
  ``content_valid_days``; a product introduction inherits its fund's horizon and variety (it
  offers the fund);
- **fund** (``fund_products``): R-level as rated; horizon and variety from the tenant's
  ``fund_types`` table (the product master does not carry them);
- **action** (the tenant's ``actions``): R-level, horizon, variety as configured; always valid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from caifu.core.suitability import HORIZONS, VARIETIES, level_rank
from caifu.recommend.config import RecommendConfig
from caifu.text.compliance import Lexicon

ITEM_TYPES = ("content", "fund", "action")
CONTENT, FUND, ACTION = range(3)
NO_HORIZON = 0  # items without a holding period (research, a data service)
NO_VARIETY = -1
NEVER = np.iinfo(np.int32).max  # a validity without end, as a day number
EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


@dataclass
class Catalogue:
    """Items as parallel numpy columns; ``index`` finds an item's row by its id."""

    item_id: np.ndarray  # str
    item_type: np.ndarray  # int8, CONTENT | FUND | ACTION
    kind: np.ndarray  # str: content type, fund type or the action's name
    title: np.ndarray  # str
    risk: np.ndarray  # int8 1..5
    horizon: np.ndarray  # int8 0 (none) .. 3 (long)
    variety: np.ndarray  # int8 -1 (none) .. 4
    valid_from: np.ndarray  # int32 day number
    valid_until: np.ndarray  # int32 day number (NEVER)
    security_code: np.ndarray  # str, '' when none
    fund_code: np.ndarray  # str, '' when none
    compliance_ok: np.ndarray  # bool: the title passed the compliance lexicon
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {str(i): n for n, i in enumerate(self.item_id)}
        if len(self.index) != len(self.item_id):
            raise ValueError("item ids are not unique across content, funds and actions")

    def __len__(self) -> int:
        return len(self.item_id)

    def valid_on(self, day: int) -> np.ndarray:
        return (self.valid_from <= day) & (day <= self.valid_until)

    def level(self, row: int) -> str:
        return f"R{int(self.risk[row])}"

    def horizon_name(self, row: int) -> str | None:
        h = int(self.horizon[row])
        return HORIZONS[h - 1] if h else None

    def variety_name(self, row: int) -> str | None:
        v = int(self.variety[row])
        return VARIETIES[v] if v >= 0 else None


def compliance_ok(titles: np.ndarray, lexicon: Lexicon) -> np.ndarray:
    """False for an item whose title the tenant's compliance lexicon flags for review (a
    guarantee, certainty, inside information … not negated): it is never offered — to a
    customer (the mask) or to a group (``services/scrm/group_content``)."""
    return np.array([not any(f.action == "review" and not f.negated for f in
                             lexicon.check_content(str(t), footer_required=False).findings)
                     for t in titles], bool)


def _code(values: list[str | None], names: tuple[str, ...], what: str) -> list[int]:
    out = []
    for v in values:
        if v is None:
            out.append(-1)
        elif v in names:
            out.append(names.index(v))
        else:
            raise ValueError(f"not a {what}: {v!r}")
    return out


def _days(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dates or timestamps → day numbers (UTC calendar day)."""
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("us")).cast(pa.int64())
        return (np.asarray(col.to_numpy(zero_copy_only=False)) // 86_400_000_000).astype(np.int32)
    return np.asarray(col.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False))


def _strings(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(["" if v is None else str(v) for v in col.to_pylist()], dtype=object)


def build(content: pa.Table, funds: pa.Table, config: RecommendConfig) -> Catalogue:
    """The catalogue from the ``content_items`` and ``fund_products`` tables (their contract
    columns) and the tenant's configured actions. Raises ValueError naming the item when a
    fund type has no configured horizon/variety."""
    parts: list[dict[str, np.ndarray]] = []
    fund_types = funds.column("fund_type").to_pylist()
    missing = sorted({t for t in fund_types if t not in config.fund_types})
    if missing:
        raise ValueError(f"fund type(s) {', '.join(missing)} have no horizon/variety in the "
                         "recommendation configuration (fund_types)")
    f_h = np.array([HORIZONS.index(config.fund_types[t].horizon) + 1 for t in fund_types],
                   dtype=np.int8)
    f_v = np.array([VARIETIES.index(config.fund_types[t].variety) for t in fund_types],
                   dtype=np.int8)
    f_codes = _strings(funds.column("fund_code"))
    by_fund = {str(c): i for i, c in enumerate(f_codes)}
    n_f = len(f_codes)
    launched = (_days(funds.column("launched_on").fill_null(EPOCH))
                if "launched_on" in funds.column_names else np.zeros(n_f, np.int32))
    parts.append({
        "item_id": np.asarray(["F" + c for c in f_codes], dtype=object),
        "item_type": np.full(n_f, FUND, np.int8),
        "kind": _strings(funds.column("fund_type")),
        "title": _strings(funds.column("name")),
        "risk": np.array([level_rank(r) for r in funds.column("risk_level").to_pylist()],
                         np.int8),
        "horizon": f_h, "variety": f_v,
        "valid_from": launched,
        "valid_until": np.full(n_f, NEVER, np.int32),
        "security_code": np.full(n_f, "", dtype=object), "fund_code": f_codes,
    })
    c_fund = _strings(content.column("fund_code"))
    rows = [by_fund.get(str(c), -1) for c in c_fund]
    published = _days(content.column("published_at"))
    n_c = len(c_fund)
    parts.append({
        "item_id": _strings(content.column("content_id")),
        "item_type": np.full(n_c, CONTENT, np.int8),
        "kind": _strings(content.column("content_type")),
        "title": _strings(content.column("title")),
        "risk": np.array([level_rank(r) for r in content.column("risk_level").to_pylist()],
                         np.int8),
        "horizon": np.array([f_h[r] if r >= 0 else NO_HORIZON for r in rows], np.int8),
        "variety": np.array([f_v[r] if r >= 0 else NO_VARIETY for r in rows], np.int8),
        "valid_from": published,
        "valid_until": (published + config.content_valid_days).astype(np.int32),
        "security_code": _strings(content.column("security_code")), "fund_code": c_fund,
    })
    names = list(config.actions)
    acts = [config.actions[a] for a in names]
    parts.append({
        "item_id": np.asarray(["A:" + a for a in names], dtype=object),
        "item_type": np.full(len(names), ACTION, np.int8),
        "kind": np.asarray(names, dtype=object),
        "title": np.asarray([a.title for a in acts], dtype=object),
        "risk": np.array([level_rank(a.risk_level) for a in acts], np.int8),
        "horizon": np.array([h + 1 for h in _code([a.horizon for a in acts], HORIZONS,
                                                  "horizon")], np.int8),
        "variety": np.array(_code([a.variety for a in acts], VARIETIES, "variety"), np.int8),
        "valid_from": np.zeros(len(names), np.int32),
        "valid_until": np.full(len(names), NEVER, np.int32),
        "security_code": np.full(len(names), "", dtype=object),
        "fund_code": np.full(len(names), "", dtype=object),
    })
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return Catalogue(**cols, compliance_ok=np.ones(len(cols["item_id"]), dtype=bool))  # type: ignore[arg-type]
