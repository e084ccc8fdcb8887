"""The lifecycle state machine: one pass over the days, all customers at once.

The period is the calendar day. Each day the machine updates every customer's clocks from
that day's facts (numpy vectors over customers), evaluates the stage conditions in
precedence order and records a transition for each customer whose stage changed — so a
transition's date is the day its trigger happened (the dormancy threshold crossed, the
transfer-out booked, the first losing sale), never the end of a reporting period. A week or
a month would have blurred several transitions (funded and first trade in one week) into one.

Tracking starts on the opening day, or — for customers opened before the facts begin (the
history start ``H``), whose past is unknown — on ``H + dormant.days − 1``, after a look-back
as long as the dormancy threshold; they are assumed funded, their dormancy clock starts at
``H``, and first losses are not judged for them (their first loss happened before the data).

Cost (measured on 100k synthetic customers, two years, 2.5M active customer-days): the vector
work is ~5 ms per day; writing a transition (its values and Chinese text) is ~25 µs in Python,
which dominates at ~4 transitions per customer (15 s in all). Grouping that work by trigger
code is the next step before running it on millions of customers.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from caifu.analytics.lifecycle import STAGES, LifecycleRules, trigger_text

EPOCH = date(1970, 1, 1)
NEVER = 1 << 30  # a day that does not come
CHURNED, DORMANT, REACTIVATED, DECLINING, FIRST_LOSS, ACTIVE, FUNDED, OPENED = range(8)
TRANSITION_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("seq", pa.int32()), ("date", pa.date32()),
    ("from_stage", pa.string()), ("to_stage", pa.string()), ("trigger", pa.string()),
    ("trigger_text", pa.string()), ("values_json", pa.string())])


def day_number(d: date) -> int:
    return (d - EPOCH).days


def iso(day: int) -> str | None:
    return None if day >= NEVER or day <= -NEVER else (EPOCH + timedelta(days=int(day))).isoformat()


def _days(col: pa.ChunkedArray | pa.Array, missing: int = NEVER) -> np.ndarray:
    ints = pc.cast(col, pa.int32()).fill_null(missing)
    return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64)


def _first(cust: np.ndarray, day: np.ndarray, n: int, where: np.ndarray) -> np.ndarray:
    out = np.full(n, NEVER, np.int64)
    np.minimum.at(out, cust[where], day[where])
    return out


class _Machine:
    def __init__(self, customers: pa.Table, daily: pa.Table | None, losses: pa.Table | None,
                 rules: LifecycleRules, history_start: date, as_of: date) -> None:
        self.r = rules
        self.ids = customers["customer_id"]
        n = self.n = customers.num_rows
        self.h, self.end = day_number(history_start), day_number(as_of)
        self.opened = _days(customers["opened_on"])
        self.pre = self.opened < self.h
        self.seed = np.where(self.pre, min(self.h + rules.dormant.days - 1, self.end),
                             self.opened)
        # a never-active customer's dormancy clock runs from opening (or the history start)
        self.clock0 = np.where(self.pre, self.h - 1, self.opened)
        self._facts(daily, n)
        self._closures(customers)
        self.loss_day = np.full(n, NEVER, np.int64)
        self.loss: dict[int, dict[str, Any]] = {}
        if losses is not None and losses.num_rows:
            pos = _positions(losses["customer_id"], self.ids)
            for i, row in zip(pos, losses.to_pylist(), strict=True):
                if i >= 0 and not self.pre[i]:
                    self.loss_day[i] = day_number(row["loss_date"])
                    row["loss_date"] = row["loss_date"].isoformat()
                    del row["customer_id"]
                    self.loss[int(i)] = row
        self.rows: list[tuple[Any, ...]] = []
        self.seq = np.zeros(n, np.int32)

    def _facts(self, daily: pa.Table | None, n: int) -> None:
        if daily is None or not daily.num_rows:
            daily = pa.table({"customer_id": pa.array([], pa.string()),
                              "day": pa.array([], pa.date32()),
                              "traded": pa.array([], pa.int64()),
                              "fund_bought": pa.array([], pa.int64()),
                              "deposit": pa.array([], pa.float64()),
                              "transfer_out": pa.array([], pa.float64())})
        pos = _positions(daily["customer_id"], self.ids)
        keep = pos >= 0  # facts of customers opened after the as-of date, or unknown
        day = _days(daily["day"])[keep]
        order = np.argsort(day, kind="stable")
        self.c = pos[keep][order]
        self.d = day[order]
        self.tr = np.asarray(daily["traded"].to_numpy(zero_copy_only=False))[keep][order] > 0
        self.fb = np.asarray(daily["fund_bought"].to_numpy(zero_copy_only=False))[keep][order] > 0
        self.dep = np.asarray(daily["deposit"].to_numpy(zero_copy_only=False),
                              np.float64)[keep][order]
        self.out = np.asarray(daily["transfer_out"].to_numpy(zero_copy_only=False),
                              np.float64)[keep][order]
        self.first_trade = _first(self.c, self.d, n, self.tr)
        self.first_fund = _first(self.c, self.d, n, self.fb)
        self.first_deposit = _first(self.c, self.d, n, self.dep > 0)
        self.deposit_amount = np.zeros(n)
        hit = (self.dep > 0) & (self.d == self.first_deposit[self.c])
        self.deposit_amount[self.c[hit]] = self.dep[hit]
        self.funding = np.minimum(np.minimum(self.first_deposit, self.first_trade),
                                  self.first_fund)
        self.funding = np.where(self.pre, self.h, self.funding)

    def _closures(self, customers: pa.Table) -> None:
        closed_on = _days(customers["closed_on"])
        status = np.asarray(customers["status"].to_numpy(zero_copy_only=False), dtype=object)
        accounts = np.asarray(customers["accounts"].to_numpy(zero_copy_only=False))
        gone = np.asarray(customers["gone"].to_numpy(zero_copy_only=False))
        self.transferred = np.asarray(customers["transferred"].to_numpy(zero_copy_only=False)) > 0
        undated = (closed_on >= NEVER) & ((status == "closed") | ((accounts > 0) &
                                                                   (gone >= accounts)))
        # the master data (today's) says the account is gone but not when: the day of its
        # last fact in all the data, not only up to the as-of date — a closure after the
        # as-of date is not known on it (the cut facts would date it too early)
        last = _days(customers["last_fact"], -NEVER)
        inferred = np.maximum(np.where(last > -NEVER, last, self.opened), self.opened)
        undated &= inferred <= self.end
        self.inferred = undated
        self.closure = np.where(undated, inferred, closed_on)

    def run(self) -> pa.Table:
        n, r = self.n, self.r
        m, big_n = r.active.days, r.dormant.days
        w, drop, recover = r.declining.window_days, r.declining.drop_pct, r.declining.recover_pct
        k, loss_days = r.reactivated.days, r.first_loss.days
        min_out = r.churn.transfer_out_min_amount
        stage = np.full(n, -1, np.int64)
        last_trade = np.full(n, -NEVER, np.int64)
        last_act = self.clock0.copy()
        react_on = np.full(n, -NEVER, np.int64)
        self.react_churned = np.zeros(n, bool)
        self.react_inactive = np.zeros(n, np.int64)
        self.react_what = np.zeros(n, bool)  # True: a trade, False: a fund purchase
        flow = np.zeros(n, bool)
        self.flow_day = np.full(n, -NEVER, np.int64)
        self.flow_amount = np.zeros(n)
        ring = np.zeros((2 * w, n), np.int8)  # activity per day of the two windows
        s_last = np.zeros(n, np.int64)
        s_prev = np.zeros(n, np.int64)
        # declining because of a fall (not a lapse): only these get the hysteresis band, so a
        # lapsed customer who trades again is active again
        falling = np.zeros(n, bool)
        start = int(min(self.seed.min(initial=self.end), self.h))
        bounds = np.searchsorted(self.d, np.arange(start, self.end + 2))
        for i, d in enumerate(range(start, self.end + 1)):
            lo, hi = bounds[i], bounds[i + 1]
            c = self.c[lo:hi]
            acted = (self.tr[lo:hi] | self.fb[lo:hi])
            act_c = c[acted]
            moved = ring[(d - w) % (2 * w)]  # day d−w leaves the last window for the previous
            s_last -= moved
            s_prev += moved
            slot = d % (2 * w)  # day d−2w leaves the previous window
            s_prev -= ring[slot]
            ring[slot] = 0
            ring[slot, act_c] = 1
            s_last[act_c] += 1
            # activity that ends a dormant spell, or a churn the account survived
            returning = ((stage[act_c] == DORMANT) | ((stage[act_c] == CHURNED) & flow[act_c])) \
                & (self.closure[act_c] > d)
            back = act_c[returning]
            if len(back):
                react_on[back] = d
                self.react_churned[back] = stage[back] == CHURNED
                self.react_inactive[back] = d - last_act[back]
                self.react_what[back] = self.tr[lo:hi][acted][returning]
                flow[back] = False
            last_act[act_c] = d
            last_trade[c[self.tr[lo:hi]]] = d
            outs = (self.out[lo:hi] > 0) & (self.out[lo:hi] >= min_out)
            flow[c[outs]] = True
            self.flow_day[c[outs]] = d
            self.flow_amount[c[outs]] = self.out[lo:hi][outs]

            terminal = self.closure <= d
            lapsed = (last_trade > -NEVER) & (d - last_trade >= m)
            drop_in = (s_prev >= r.declining.min_previous_days) & (
                s_last * 100 <= s_prev * (100 - drop))
            drop_stay = falling & (stage == DECLINING) & (
                s_last * 100 < s_prev * (100 - recover))
            new = np.select(
                [terminal | flow, d - last_act >= big_n, d - react_on < k,
                 lapsed | drop_in | drop_stay,
                 (self.loss_day <= d) & (d - self.loss_day < loss_days),
                 d - last_trade < m, self.funding <= d],
                [CHURNED, DORMANT, REACTIVATED, DECLINING, FIRST_LOSS, ACTIVE, FUNDED],
                OPENED)
            new = np.where(self.seed <= d, new, -1)
            falling = (new == DECLINING) & (drop_in | drop_stay)
            changed = np.flatnonzero(new != stage)
            if len(changed):
                ctx = {"d": d, "terminal": terminal, "lapsed": lapsed, "last_trade": last_trade,
                       "last_act": last_act, "react_on": react_on, "s_last": s_last,
                       "s_prev": s_prev}
                for j in changed:
                    self._emit(int(j), int(stage[j]), int(new[j]), ctx)
            stage = new
        return self._table()

    def _emit(self, j: int, old: int, new: int, x: dict[str, Any]) -> None:
        d = x["d"]
        if old == -1:
            if self.pre[j]:
                self._row(j, d, None, new, "tracking_start", {
                    "history_start": iso(self.h), "tracking_start": iso(d),
                    "opened_on": iso(int(self.opened[j]))})
                return
            self._row(j, d, None, OPENED, "account_opened", {"opened_on": iso(d)})
            if new == OPENED:
                return
            old = OPENED
        code, values = self._trigger(j, old, new, x)
        self._row(j, d, old, new, code, values)

    def _trigger(self, j: int, old: int, new: int, x: dict[str, Any]
                 ) -> tuple[str, dict[str, Any]]:
        d, r = x["d"], self.r
        if new == CHURNED:
            if x["terminal"][j]:
                code = "account_transferred_out" if self.transferred[j] else "account_closed"
                return code, {"closed_on": iso(int(self.closure[j])),
                              "date_inferred": bool(self.inferred[j])}
            return "assets_transferred_out", {"transfer_date": iso(int(self.flow_day[j])),
                                              "transfer_amount": round(self.flow_amount[j], 2)}
        if new == DORMANT:
            last = int(x["last_act"][j])
            return "no_activity", {"days_without_activity": d - last,
                                   "last_activity_date": iso(last) if last > self.clock0[j]
                                   else None}
        if new == REACTIVATED:
            what = "交易" if self.react_what[j] else "申购基金"
            if self.react_churned[j]:
                return "returned_after_churn", {"churned_on": iso(int(self.flow_day[j])),
                                                "activity_date": iso(d), "activity": what}
            return "returned_after_dormancy", {"days_inactive": int(self.react_inactive[j]),
                                               "activity_date": iso(d), "activity": what}
        window = self._window(j, x)
        if new == DECLINING:
            if x["lapsed"][j]:
                last = int(x["last_trade"][j])
                return "no_recent_trade", {"days_without_trade": d - last,
                                           "last_trade_date": iso(last)}
            return "activity_drop", window
        if new == FIRST_LOSS:
            return "first_realised_loss", dict(self.loss[j])
        if old == FIRST_LOSS:
            return "first_loss_period_over", {"first_loss_date": iso(int(self.loss_day[j])),
                                              "days": r.first_loss.days}
        if old == REACTIVATED:
            return "reactivation_period_over", {"reactivated_on": iso(int(x["react_on"][j])),
                                                "days": r.reactivated.days}
        if new == ACTIVE:
            trade = {"trade_date": iso(int(x["last_trade"][j]))}
            if old == DECLINING:
                return ("trading_resumed", trade) if x["last_trade"][j] == d \
                    else ("activity_recovered", window)
            return ("traded", trade) if self.pre[j] or self.first_trade[j] != d \
                else ("first_trade", trade)
        if self.first_deposit[j] <= d:
            return "first_deposit", {"deposit_date": iso(int(self.first_deposit[j])),
                                     "deposit_amount": round(self.deposit_amount[j], 2)}
        return "first_fund_purchase", {"purchase_date": iso(int(self.first_fund[j]))}

    def _window(self, j: int, x: dict[str, Any]) -> dict[str, Any]:
        last, prev = int(x["s_last"][j]), int(x["s_prev"][j])
        return {"window_days": self.r.declining.window_days, "last_window_days": last,
                "previous_window_days": prev,
                "drop_pct": round(100 * (1 - last / prev)) if prev else 0}

    def _row(self, j: int, d: int, old: int | None, new: int, code: str,
             values: dict[str, Any]) -> None:
        self.rows.append((j, int(self.seq[j]), d, None if old is None else STAGES[old],
                          STAGES[new], code, trigger_text(code, values),
                          json.dumps(values, ensure_ascii=False)))
        self.seq[j] += 1

    def _table(self) -> pa.Table:
        if not self.rows:
            return TRANSITION_SCHEMA.empty_table()
        cols = list(zip(*self.rows, strict=True))
        idx = np.asarray(cols[0], np.int64)
        order = np.lexsort((np.asarray(cols[1]), idx))
        days = pa.array(np.asarray(cols[2], np.int32)[order]).cast(pa.date32())
        return pa.table([
            self.ids.take(pa.array(idx[order])).combine_chunks()
            if isinstance(self.ids, pa.ChunkedArray) else self.ids.take(pa.array(idx[order])),
            pa.array(np.asarray(cols[1], np.int32)[order]), days,
            *(pa.array([cols[k][i] for i in order], pa.string()) for k in range(3, 8))],
            schema=TRANSITION_SCHEMA)


def _positions(keys: pa.ChunkedArray | pa.Array, ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    pos = pc.index_in(keys, value_set=ids.combine_chunks() if isinstance(ids, pa.ChunkedArray)
                      else ids)
    return np.asarray(pos.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)


def transitions(customers: pa.Table, daily: pa.Table | None, losses: pa.Table | None,
                rules: LifecycleRules, history_start: date, as_of: date) -> pa.Table:
    """Every customer's dated stage transitions up to ``as_of``, ordered by customer and
    ``seq``; the first row of a customer has no ``from_stage``.

    ``customers`` is ``lifecycle.customer_status``, ``daily`` ``lifecycle.daily_activity``
    and ``losses`` ``lifecycle.first_losses`` as Arrow tables. An undated closure is dated on
    the customer's ``last_fact`` (over all the facts) and only counts when that is on or
    before ``as_of``.
    """
    return _Machine(customers, daily, losses, rules, history_start, as_of).run()
