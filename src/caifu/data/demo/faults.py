"""Deliberately bad rows, as real exports have them, and a record of each one.

Every bad row is an *extra* row with its own fresh key (copied from a clean row, then broken
in exactly one way), so quarantining it leaves the clean data complete and referentially
intact. Overlap duplicates are exact copies of clean trades that the next year's trade file
repeats. Everything is recorded in ``_ground_truth/injected_errors.json`` so tests can check
that ingest quarantines exactly these rows and nothing else.

Kinds: ``id_checksum``, ``invalid_date`` (1949-02-30), ``bad_mobile``, ``unknown_enum``,
``missing_required``, ``negative_amount``, ``future_date``, ``unknown_security``,
``unknown_customer``, ``price_scale`` (4 decimals where the contract allows 3), and
``overlap_duplicate``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa

from caifu.core.ids import resident_id_check_char, resident_id_for
from caifu.data.demo.writers import SourceSpec

# bad rows per 100,000 customers, by file family and kind
PLAN: dict[str, dict[str, int]] = {
    "customers": {"id_checksum": 6, "invalid_date": 4, "bad_mobile": 6, "unknown_enum": 4,
                  "missing_required": 3},
    "trades": {"future_date": 4, "unknown_security": 5, "unknown_customer": 4, "price_scale": 5,
               "unknown_enum": 3, "missing_required": 3},
    "cash_flows": {"negative_amount": 5},
    "fund_transactions": {"negative_amount": 4},
    "app_events": {"unknown_enum": 4},
}
OVERLAP_PER_100K = 30


class Faults:
    """Injects bad rows into one chunk's export-form tables and remembers them."""

    def __init__(self, rng: np.random.Generator, chunk: int, customers_in_chunk: int,
                 end: date) -> None:
        self.rng = rng
        self.chunk = chunk
        self.scale = customers_in_chunk / 100_000
        self.end = end
        self.records: list[dict[str, object]] = []

    def count(self, per_100k: int) -> int:
        return max(1, int(round(per_100k * self.scale)))

    def _insert(self, table: pa.Table, rows: list[dict[str, object]]) -> pa.Table:
        if not rows:
            return table
        extra = pa.Table.from_pylist(rows, schema=table.schema)
        n = table.num_rows
        pos = np.sort(self.rng.integers(0, n + 1, len(rows)))
        order = np.insert(np.arange(n), pos, np.arange(n, n + len(rows)))
        return pa.concat_tables([table, extra]).take(pa.array(order))

    def _inject(self, table: pa.Table, family: str, file: str, key: str,
                new_key: Callable[[int], str], breakers: dict[str, Callable[[dict], None]],
                eligible: np.ndarray | None = None, table_name: str | None = None) -> pa.Table:
        pool = np.flatnonzero(eligible) if eligible is not None else np.arange(table.num_rows)
        if len(pool) == 0:
            return table
        rows = []
        for kind, per in PLAN[family].items():
            for _ in range(self.count(per)):
                row = table.slice(int(pool[self.rng.integers(0, len(pool))]), 1).to_pylist()[0]
                row[key] = new_key(len(rows))
                breakers[kind](row)
                rows.append(row)
                self.records.append({"file": file, "table": table_name or family, "kind": kind,
                                     "key": {_contract_key(family): row[key]}})
        return self._insert(table, rows)

    # --- per table -------------------------------------------------------------------------

    def customers(self, table: pa.Table, spec: SourceSpec, file: str) -> pa.Table:
        h = spec.headers or {}
        base = 1_800_000_000 + self.chunk * 1000
        rng = self.rng

        def fresh_id(row: dict) -> None:
            born = date(1960, 1, 1) + timedelta(days=int(rng.integers(0, 14000)))
            row[h["id_number"]] = resident_id_for("110105", born, int(rng.integers(0, 1000)))
            row[h["birth_date"]] = f"{born:%Y%m%d}"

        def id_checksum(row: dict) -> None:
            fresh_id(row)
            good = row[h["id_number"]]
            wrong = "0123456789X".replace(resident_id_check_char(good[:17]), "")
            row[h["id_number"]] = good[:17] + wrong[int(rng.integers(0, len(wrong)))]

        def invalid_date(row: dict) -> None:
            fresh_id(row)
            row[h["birth_date"]] = "19490230"

        def with_fresh(change: Callable[[dict], None]) -> Callable[[dict], None]:
            def apply(row: dict) -> None:
                fresh_id(row)
                change(row)
            return apply

        eligible = np.asarray(table[h["id_type"]].to_pylist()) == spec.values["id_type"][
            "resident_id"]
        return self._inject(table, "customers", file, h["customer_id"],
                            lambda j: str(base + j), {
                                "id_checksum": id_checksum, "invalid_date": invalid_date,
                                "bad_mobile": with_fresh(lambda r: r.__setitem__(
                                    h["mobile"], ("1380013800", "12345678901", "1381234567a")[
                                        int(rng.integers(0, 3))])),
                                "unknown_enum": with_fresh(
                                    lambda r: r.__setitem__(h["channel"], "抖音直播")),
                                "missing_required": with_fresh(
                                    lambda r: r.__setitem__(h["name"], None)),
                            }, eligible)

    def trades(self, table: pa.Table, file: str, known_codes: set[str]) -> pa.Table:
        n = table.num_rows
        base = 1_890_000_000 + self.chunk * 1000
        unknown = [f"609{i:03d}" for i in range(1000) if f"609{i:03d}" not in known_codes]
        future = self.end + timedelta(days=5 * 365)
        counter = iter(range(10**6))

        def future_date(row: dict) -> None:
            t = row["trade_time"]
            row["trade_date"] = future
            row["trade_time"] = datetime.combine(future, t.time())

        def price_scale(row: dict) -> None:
            row["price"] = f"{row['price']}{1 + int(self.rng.integers(0, 9))}"

        return self._inject(table, "trades", file, "trade_id",
                            lambda j: f"T{self.chunk:04d}{n + j:08d}", {
                                "future_date": future_date,
                                "unknown_security": lambda r: r.__setitem__(
                                    "security_code", unknown[next(counter) % len(unknown)]),
                                "unknown_customer": lambda r: r.__setitem__(
                                    "customer_id", str(base + next(counter))),
                                "price_scale": price_scale,
                                "unknown_enum": lambda r: r.__setitem__("side", "C"),
                                "missing_required": lambda r: r.__setitem__("fund_account", None),
                            })

    def cash_flows(self, table: pa.Table, file: str) -> pa.Table:
        n = table.num_rows
        return self._inject(table, "cash_flows", file, "flow_id",
                            lambda j: f"F{self.chunk:04d}{n + j:08d}", {
                                "negative_amount": lambda r: r.__setitem__(
                                    "amount", -r["amount"] if r["amount"] else Decimal("-1.00")),
                            })

    def fund_transactions(self, table: pa.Table, spec: SourceSpec, file: str) -> pa.Table:
        h = spec.headers or {}
        n = table.num_rows
        return self._inject(table, "fund_transactions", file, h["txn_id"],
                            lambda j: f"J{self.chunk:04d}{n + j:08d}", {
                                "negative_amount": lambda r: r.__setitem__(
                                    h["amount"], "-" + r[h["amount"]]),
                            }, np.asarray(table[h["amount"]].to_pylist()) != "0.00")

    def app_events(self, table: pa.Table, file: str) -> pa.Table:
        n = table.num_rows
        return self._inject(table, "app_events", file, "event_id",
                            lambda j: f"E{self.chunk:04d}{n + j:08d}", {
                                "unknown_enum": lambda r: r.__setitem__("event_type", "shake"),
                            })

    def overlap(self, previous: pa.Table, file: str, count: int) -> pa.Table:
        """The last ``count`` clean trades of a year, repeated by the next year's file."""
        bad = {r["key"]["trade_id"] for r in self.records if r["table"] == "trades"}
        ids = previous["trade_id"].to_pylist()
        picks = [i for i in range(len(ids) - 1, -1, -1) if ids[i] not in bad][:count][::-1]
        dup = previous.take(pa.array(picks, pa.int64()))
        for tid in dup["trade_id"].to_pylist():
            self.records.append({"file": file, "table": "trades", "kind": "overlap_duplicate",
                                 "key": {"trade_id": tid}})
        return dup


def _contract_key(family: str) -> str:
    return {"customers": "customer_id", "trades": "trade_id", "cash_flows": "flow_id",
            "fund_transactions": "txn_id", "app_events": "event_id"}[family]
