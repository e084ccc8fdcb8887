"""Generate a whole demo broker: its exports, ``sources.yaml`` and the ground truth.

Customers are generated in fixed-size chunks, each from its own random stream
(``[seed, 1, chunk]``; their content and product preferences from ``[seed, 4, chunk]``,
their assessments' 投资品种 answers from ``[seed, 5, chunk]``),
against one shared world (``[seed, 0]``); every file is appended to chunk by chunk. So
memory stays flat as the customer count grows, and the same seed, customer count and end
date give byte-identical files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from caifu.core.errors import ConfigError
from caifu.data.demo import activity, chats, engagement, funds, holdings, people, preferences
from caifu.data.demo.faults import OVERLAP_PER_100K, Faults
from caifu.data.demo.sources import SPECS, spec_of_file, table_of_file
from caifu.data.demo.world import World, build_world, day_number
from caifu.data.demo.writers import Sinks, SourceSpec, export_form, write_sources_yaml

CHUNK = 50_000
GROUND_TRUTH = "_ground_truth"
GROUND_TRUTH_SPEC = SourceSpec("*.parquet", "ground_truth", "parquet")
Progress = Callable[[str, int, int], None]


@dataclass
class DemoSummary:
    out_dir: Path
    customers: int
    seed: int
    end_date: date
    rows_per_file: dict[str, int] = field(default_factory=dict)
    rows_per_table: dict[str, int] = field(default_factory=dict)
    injected_errors: dict[str, dict[str, int]] = field(default_factory=dict)  # file -> kind -> n
    overlap_duplicates: dict[str, int] = field(default_factory=dict)  # file -> n
    elapsed_seconds: float = 0.0

    @property
    def clean_rows_per_table(self) -> dict[str, int]:
        """Rows a correct ingest keeps: all rows minus injected bad rows and duplicates."""
        out = dict(self.rows_per_table)
        for file, kinds in self.injected_errors.items():
            out[table_of_file(file)] -= sum(kinds.values())
        for file, n in self.overlap_duplicates.items():
            out[table_of_file(file)] -= n
        return out


def _clear(out_dir: Path) -> None:
    """Remove files an earlier demo run left (only ours: the sources globs and ground truth).

    Only a folder that holds our ground truth is a demo folder: the globs (khzl*.csv, …) are
    real export names, and a broker's own exports must never be deleted by a demo.
    """
    ours = (out_dir / GROUND_TRUTH / "injected_errors.json").is_file()
    found = [p for spec in SPECS.values() for p in out_dir.glob(spec.match)]
    if found and not ours:
        raise ConfigError(
            f"{out_dir} holds export-like files ({found[0].name}, …) that no demo wrote; "
            "choose an empty folder for the demo broker")
    for spec in SPECS.values():
        for path in out_dir.glob(spec.match):
            path.unlink()
    for path in (out_dir / "sources.yaml", *(out_dir / GROUND_TRUTH).glob("*")):
        if path.is_file():
            path.unlink()


def generate(out_dir: Path, customers: int = 100_000, seed: int = 7,
             end_date: date = date(2026, 10, 30), progress: Progress | None = None) -> DemoSummary:
    """Write a deterministic demo broker with ``customers`` customers to ``out_dir``.

    Two years of history end on ``end_date``. Earlier demo files in ``out_dir`` (those the
    source globs match, plus ``_ground_truth/``) are removed first; other files are left
    alone. ``progress(stage, done, total)`` is called per chunk of customers. The same
    arguments give byte-identical files (``elapsed_seconds`` is the only thing that varies).
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    began = time.perf_counter()
    report = progress or (lambda _stage, _done, _total: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / GROUND_TRUTH).mkdir(exist_ok=True)
    _clear(out_dir)
    n_chunks = -(-customers // CHUNK)
    report("world", 0, n_chunks)
    world = build_world(seed, end_date, customers)
    camps = engagement.build_campaigns(world, seed)
    sinks = Sinks(out_dir)
    truth = Sinks(out_dir / GROUND_TRUTH)
    records: list[dict[str, object]] = []
    try:
        truth.append("item_topics.parquet", GROUND_TRUTH_SPEC,
                     preferences.item_table(world.contents, world.funds, world.topics))
        for name, table in (("branches", world.branches), ("advisors", world.advisors),
                            ("securities", world.securities), ("fund_products", world.funds),
                            ("content_items", world.contents), ("campaigns", camps.table),
                            ("fund_top_holdings", holdings.make_top_holdings(world, seed))):
            _write(sinks, name, table)
        known_codes = set(world.securities["security_code"].to_pylist())
        for c in range(n_chunks):
            n = min(CHUNK, customers - c * CHUNK)
            records += _chunk(world, camps, sinks, truth, seed, c, n, known_codes)
            report("customers", c + 1, n_chunks)
    finally:
        sinks.close()
        truth.close()
    summary = DemoSummary(out_dir, customers, seed, end_date)
    summary.rows_per_file = dict(sorted(sinks.rows.items()))
    for file, rows in summary.rows_per_file.items():
        table = table_of_file(file)
        summary.rows_per_table[table] = summary.rows_per_table.get(table, 0) + rows
    for rec in records:
        file, kind = str(rec["file"]), str(rec["kind"])
        if kind == "overlap_duplicate":
            summary.overlap_duplicates[file] = summary.overlap_duplicates.get(file, 0) + 1
        else:
            kinds = summary.injected_errors.setdefault(file, {})
            kinds[kind] = kinds.get(kind, 0) + 1
    entries = []
    for spec in SPECS.values():
        files = [f for f in summary.rows_per_file if spec_of_file(f) is spec]
        if files:
            entries.append(spec.yaml_entry(_columns(out_dir / files[0], spec)))
    write_sources_yaml(out_dir / "sources.yaml", entries)
    (out_dir / GROUND_TRUTH / "injected_errors.json").write_text(json.dumps({
        "seed": seed, "customers": customers, "end_date": end_date.isoformat(),
        "files": summary.injected_errors, "overlap_duplicates": summary.overlap_duplicates,
        "rows": records,
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    summary.elapsed_seconds = time.perf_counter() - began
    report("done", n_chunks, n_chunks)
    return summary


def _columns(path: Path, spec: SourceSpec) -> list[str]:
    if spec.fmt == "parquet":
        return pq.read_schema(path).names
    return []


def _write(sinks: Sinks, family: str, table: pa.Table, file: str | None = None) -> None:
    spec = SPECS[family]
    sinks.append(file or spec.file_name, spec, export_form(table, spec))


def _chunk(world: World, camps: engagement.Campaigns, sinks: Sinks, truth: Sinks, seed: int, c: int, n: int,
           known_codes: set[str]) -> list[dict[str, object]]:
    rng = np.random.default_rng([seed, 1, c])
    faults = Faults(np.random.default_rng([seed, 3, c]), c, n, world.end)
    pop = people.make_population(world, rng, c, c * CHUNK, n, np.random.default_rng([seed, 4, c]))
    funnels = engagement.target_campaigns(world, pop, camps, rng,
                                          {g for g in camps.goal if g != "reactivation"})
    book = activity.make_trades(world, pop, rng)
    funnels |= engagement.target_campaigns(world, pop, camps, rng, {"reactivation"}, book.index)
    flows, deposits = activity.make_cash_flows(world, pop, rng)
    fund_book = funds.make_fund_transactions(world, pop, rng)
    touches = engagement.touches_table(world, pop, camps, funnels, {
        "funded": deposits, "fund_purchase": fund_book.purchases, "reactivation": book.index,
    }, rng)
    events = engagement.make_app_events(world, pop, rng)
    follows, follow_info = chats.make_follows(world, pop, rng)
    messages, labels = chats.make_chats(world, pop, follow_info, fund_book.first_fund, rng)

    spec = SPECS["customers"]
    _append(sinks, "customers", faults.customers(
        export_form(people.customers_table(world, pop), spec), spec, spec.file_name))
    _write(sinks, "accounts", people.accounts_table(pop))
    _write(sinks, "suitability_assessments", people.suitability_table(
        world, pop, rng, np.random.default_rng([seed, 5, c])))
    _trades_by_year(sinks, faults, faults.trades(book.table, "trades", known_codes), world.end, n)
    _write(sinks, "positions", book.positions)
    _append(sinks, "cash_flows", faults.cash_flows(flows, "cash_flows.parquet"))
    spec = SPECS["fund_transactions"]
    _append(sinks, "fund_transactions", faults.fund_transactions(
        export_form(fund_book.table, spec), spec, spec.file_name))
    _append(sinks, "app_events", faults.app_events(events, "app_events.parquet"))
    _write(sinks, "wecom_follows", follows)
    _write(sinks, "chat_messages", messages)
    _write(sinks, "campaign_touches", touches)
    truth.append("latent_traits.parquet", GROUND_TRUTH_SPEC, people.latent_table(pop))
    truth.append("preference_vectors.parquet", GROUND_TRUTH_SPEC,
                 preferences.preference_table(pop.customer_id, pop.taste))
    truth.append("chat_labels.parquet", GROUND_TRUTH_SPEC, labels)
    return faults.records


def _append(sinks: Sinks, family: str, table: pa.Table) -> None:
    spec = SPECS[family]
    sinks.append(spec.file_name, spec, table)


def _trades_by_year(sinks: Sinks, faults: Faults, trades: pa.Table, end: date, n: int) -> None:
    """One file per calendar year; each year's file repeats the last trades of the year
    before (an overlapping export), and bad rows land in the file of their year."""
    spec = SPECS["trades"]
    days = pc.cast(trades["trade_date"], pa.int32()).to_numpy()
    days = np.minimum(days, day_number(end))
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    present = sorted(set(years.tolist()))
    parts = {y: trades.filter(pa.array(years == y)) for y in present}
    pending = [r for r in faults.records if r["file"] == "trades"]
    bad_ids = pa.array([r["key"]["trade_id"] for r in pending], pa.string())
    where = pc.index_in(bad_ids, value_set=trades["trade_id"]).to_numpy(zero_copy_only=False)
    for rec, row in zip(pending, where, strict=True):
        rec["file"] = f"trades_{years[int(row)]}.parquet"
    per_boundary = max(1, int(round(OVERLAP_PER_100K * n / 100_000 / max(len(present) - 1, 1))))
    for i, y in enumerate(present):
        part = parts[y]
        if i > 0:
            dup = faults.overlap(parts[present[i - 1]], f"trades_{y}.parquet", per_boundary)
            part = pa.concat_tables([dup, part])
        sinks.append(f"trades_{y}.parquet", spec, part)


__all__ = ["DemoSummary", "generate"]
