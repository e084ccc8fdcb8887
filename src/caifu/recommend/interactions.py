"""What customers did with catalogue items, as one graded interaction list.

The broker's own records say who wanted what — no survey, no label: reading a note or a fund
page in the APP (``app_events`` view_content / view_fund), clicking or converting on a pushed
item (``campaign_touches`` of a campaign with a ``content_id``), buying a fund
(``fund_transactions`` purchase / subscribe) and opening a permission or a service
(``accounts``' ChiNext / STAR opening dates, the Level-2 subscription start). Each becomes
(customer, item, day, grade): 1 viewed, 2 clicked, 3 bought or opened — the gain NDCG uses,
and the confidence the collaborative model weighs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from caifu.recommend.catalogue import Catalogue

VIEWED, CLICKED, CONVERTED = 1, 2, 3
# permission and service dates on ``accounts`` → the action that offers them
ACTION_DATES = {"chinext_opened_on": "open_chinext", "star_opened_on": "open_star",
                "level2_since": "subscribe_level2"}


@dataclass
class Interactions:
    """Parallel columns: customer id, item row in the catalogue, day number, grade."""

    customer_id: np.ndarray
    item: np.ndarray
    day: np.ndarray
    grade: np.ndarray

    def __len__(self) -> int:
        return len(self.item)

    def window(self, start: int | None, stop: int) -> Interactions:
        """Interactions on days ``start < day <= stop`` (no lower bound when None)."""
        keep = self.day <= stop
        if start is not None:
            keep &= self.day > start
        return Interactions(self.customer_id[keep], self.item[keep], self.day[keep],
                            self.grade[keep])

    def matrix(self, rows: dict[str, int], n_items: int) -> sp.csr_matrix:
        """Customers × items, the best grade of each pair (customers not in ``rows`` left
        out)."""
        r = np.array([rows.get(c, -1) for c in self.customer_id.tolist()], np.int64)
        ok = r >= 0
        r, i, g = r[ok], self.item[ok], self.grade[ok].astype(np.float32)
        order = np.lexsort((-g, i, r))  # per pair, the best grade first
        first = np.ones(len(order), bool)
        first[1:] = (np.diff(r[order]) != 0) | (np.diff(i[order]) != 0)
        keep = order[first]
        return sp.csr_matrix((g[keep], (r[keep], i[keep])), shape=(len(rows), n_items))

    def counts(self, rows: dict[str, int], n_items: int) -> sp.csr_matrix:
        """Customers × items, how many interactions (any grade)."""
        r = np.array([rows.get(c, -1) for c in self.customer_id.tolist()], np.int64)
        ok = r >= 0
        return sp.csr_matrix((np.ones(ok.sum(), np.float32), (r[ok], self.item[ok])),
                             shape=(len(rows), n_items))


def _day(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        micros = col.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        return (np.asarray(micros) // 86_400_000_000).astype(np.int32)
    return np.asarray(col.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False),
                      np.int32)


def _rows_of(cat: Catalogue, ids: list[str | None], prefix: str = "") -> np.ndarray:
    return np.array([cat.index.get(prefix + i, -1) if i else -1 for i in ids], np.int64)


def collect(cat: Catalogue, *, app_events: pa.Table | None = None,
            fund_transactions: pa.Table | None = None,
            campaign_touches: pa.Table | None = None, campaigns: pa.Table | None = None,
            accounts: pa.Table | None = None) -> Interactions:
    """Every interaction with a catalogue item found in the given tables (contract columns).
    Rows about items not in the catalogue (an unknown content id) are not interactions."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(customers: pa.ChunkedArray, items: np.ndarray, days: np.ndarray,
            grade: np.ndarray | int) -> None:
        ok = items >= 0
        g = np.broadcast_to(np.asarray(grade, np.int8), items.shape)
        parts.append((np.asarray(customers.to_pylist(), dtype=object)[ok], items[ok],
                      days[ok], g[ok]))

    if app_events is not None and app_events.num_rows:
        ev = app_events.filter(pc.is_in(app_events["event_type"],
                                        pa.array(["view_content", "view_fund"])))
        content = _rows_of(cat, ev["content_id"].to_pylist())
        fund = _rows_of(cat, ev["fund_code"].to_pylist(), "F")
        is_content = np.asarray(pc.equal(ev["event_type"], "view_content").to_numpy(
            zero_copy_only=False), bool)
        add(ev["customer_id"], np.where(is_content, content, fund), _day(ev["event_time"]),
            VIEWED)
    if fund_transactions is not None and fund_transactions.num_rows:
        ft = fund_transactions.filter(pc.is_in(fund_transactions["txn_type"],
                                               pa.array(["purchase", "subscribe"])))
        add(ft["customer_id"], _rows_of(cat, ft["fund_code"].to_pylist(), "F"),
            _day(ft["txn_date"]), CONVERTED)
    if campaign_touches is not None and campaigns is not None and campaign_touches.num_rows:
        content_of = dict(zip(campaigns["campaign_id"].to_pylist(),
                              campaigns["content_id"].to_pylist(), strict=True))
        tc = campaign_touches.filter(pc.is_in(campaign_touches["stage"],
                                              pa.array(["clicked", "converted"])))
        items = _rows_of(cat, [content_of.get(c) for c in tc["campaign_id"].to_pylist()])
        grade = np.where(np.asarray(pc.equal(tc["stage"], "converted").to_numpy(
            zero_copy_only=False), bool), CONVERTED, CLICKED)
        add(tc["customer_id"], items, _day(tc["touched_at"]), grade)
    if accounts is not None and accounts.num_rows:
        for column, action in ACTION_DATES.items():
            if column not in accounts.column_names:
                continue
            acc = accounts.filter(pc.is_valid(accounts[column]))
            row = cat.index.get("A:" + action, -1)
            add(acc["customer_id"], np.full(acc.num_rows, row, np.int64), _day(acc[column]),
                CONVERTED)
    if not parts:
        return Interactions(np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, np.int32),
                            np.zeros(0, np.int8))
    cols = [np.concatenate([p[i] for p in parts]) for i in range(4)]
    return Interactions(cols[0], cols[1].astype(np.int64), cols[2].astype(np.int32),
                        cols[3].astype(np.int8))
