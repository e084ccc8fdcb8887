"""Views of the transition history: the stage on a day, counts per month, flows between dates.

All of them read the machine's transition table (ordered by customer and ``seq``): a row is
a customer's stage from its ``date`` until the date of their next row. A customer not yet
tracked on a day (opened later) has no stage then; the flow matrix calls that ``new``.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.analytics.lifecycle import REPORT_ORDER, STAGE_NAMES
from caifu.analytics.lifecycle_machine import NEVER, _days, day_number

NOT_TRACKED = "new"
STAGE_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("stage", pa.string()), ("stage_name", pa.string()),
    ("since", pa.date32()), ("days_in_stage", pa.int32()), ("trigger", pa.string()),
    ("trigger_text", pa.string()), ("values_json", pa.string())])


def _spans(transitions: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first day and the first day after it (the next row's date, or never)."""
    start = _days(transitions["date"])
    ids = transitions["customer_id"]
    same = np.zeros(len(start), bool)
    if len(start) > 1:
        same[:-1] = np.asarray(pc.equal(ids[:-1], ids[1:]).to_numpy(zero_copy_only=False))
    after = np.full(len(start), NEVER, np.int64)
    after[:-1] = np.where(same[:-1], start[1:], NEVER)
    return start, after


def _on(transitions: pa.Table, day: date, spans: tuple[np.ndarray, np.ndarray] | None = None
        ) -> np.ndarray:
    start, after = spans or _spans(transitions)
    d = day_number(day)
    return np.flatnonzero((start <= d) & (d < after))


def stages_on(transitions: pa.Table, day: date) -> pa.Table:
    """One row per customer tracked on ``day``: their stage, since when, and its trigger."""
    rows = transitions.take(pa.array(_on(transitions, day)))
    since = _days(rows["date"])
    return pa.table({
        "customer_id": rows["customer_id"], "stage": rows["to_stage"],
        "stage_name": pa.array([STAGE_NAMES[s] for s in rows["to_stage"].to_pylist()],
                               pa.string()),
        "since": rows["date"],
        "days_in_stage": pa.array(day_number(day) - since, pa.int32()),
        "trigger": rows["trigger"], "trigger_text": rows["trigger_text"],
        "values_json": rows["values_json"]}, schema=STAGE_SCHEMA)


def month_ends(first: date, last: date) -> list[date]:
    """The last day of each month from ``first``'s month to ``last``'s, ``last`` itself for
    its own (possibly partial) month."""
    out, y, m = [], first.year, first.month
    while (y, m) < (last.year, last.month):
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append(nxt - timedelta(days=1))
        y, m = nxt.year, nxt.month
    return [*out, last]


def monthly_counts(transitions: pa.Table, first: date, last: date) -> pa.Table:
    """Customers per stage at each month end (every stage listed, zeros included)."""
    spans = _spans(transitions)
    stages = np.asarray(transitions["to_stage"].to_numpy(zero_copy_only=False), dtype=object)
    month, stage, count = [], [], []
    for end in month_ends(first, last):
        held = stages[_on(transitions, end, spans)]
        values, counts = np.unique(held.astype(str), return_counts=True)
        have = dict(zip(values.tolist(), counts.tolist(), strict=True))
        for s in REPORT_ORDER:
            month.append(end)
            stage.append(s)
            count.append(have.get(s, 0))
    return pa.table({"month_end": pa.array(month, pa.date32()), "stage": stage,
                     "customers": pa.array(count, pa.int64())})


FLOW_SCHEMA = pa.schema([("customer_id", pa.string()), ("from_stage", pa.string()),
                         ("to_stage", pa.string())])


def customer_flows(transitions: pa.Table, start: date, end: date) -> pa.Table:
    """One row per customer tracked on ``end``: his stage on ``start`` (``new``: not yet
    tracked then) and on ``end`` — the rows the flow metric counts."""
    spans = _spans(transitions)
    a = transitions.take(pa.array(_on(transitions, start, spans)))
    b = transitions.take(pa.array(_on(transitions, end, spans)))
    before = dict(zip(a["customer_id"].to_pylist(), a["to_stage"].to_pylist(), strict=True))
    ids = b["customer_id"].to_pylist()
    return pa.table({"customer_id": pa.array(ids, pa.string()),
                     "from_stage": pa.array([before.get(cid, NOT_TRACKED) for cid in ids],
                                            pa.string()),
                     "to_stage": b["to_stage"].cast(pa.string())}, schema=FLOW_SCHEMA)


def flow_matrix(transitions: pa.Table, start: date, end: date) -> pa.Table:
    """How many customers went from each stage on ``start`` to each stage on ``end``
    (``new``: not yet tracked on ``start``); only non-empty cells."""
    per_customer = customer_flows(transitions, start, end)
    cells: dict[tuple[str, str], int] = {}
    for key in zip(per_customer["from_stage"].to_pylist(), per_customer["to_stage"].to_pylist(),
                   strict=True):
        cells[key] = cells.get(key, 0) + 1
    order = {s: i for i, s in enumerate((NOT_TRACKED, *REPORT_ORDER))}
    keys = sorted(cells, key=lambda k: (order[k[0]], order[k[1]]))
    return pa.table({"from_stage": [k[0] for k in keys], "to_stage": [k[1] for k in keys],
                     "customers": pa.array([cells[k] for k in keys], pa.int64())})
