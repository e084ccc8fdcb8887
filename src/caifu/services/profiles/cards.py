"""Customer cards: one JSON document per customer, precomputed, for the 360 and the sidebar.

    caifu cards -t demo [--as-of 2026-10-30]

The facts behind a card (holdings, trades, P&L, stages, scores) live in the lake, which is
too slow to read per request; the batch writes them to the system of record's
``customer_cards`` (one row per customer, read by primary key). ``build``:

1. reads master data (system of record) and facts (lake) onto the engine and computes the
   sections with ``pipelines.cards`` as of the date (default: the newest data date);
2. takes each derived table's newest snapshot on or before the date — ``lifecycle_stages``,
   ``model_scores``, ``customer_value``, ``advisor_tasks`` — and says in the notes when one
   is older than the date or missing (the card then has that section ``null``, never an
   error);
3. streams the joined rows in batches, shapes each card (``CARD_VERSION``), and spools them
   to a Parquet file in the job's scratch folder — memory stays bounded by the batch size;
4. replaces the tenant's cards in one SoR transaction from the spool, in chunks (COPY on
   PostgreSQL): readers see the old cards or the new, never a mix, and the write
   transaction lasts only as long as the insert, not the computation.

Customers under "storage only" (``restricted_customers``, a data-subject request) get no
card: their data is kept, not processed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from caifu.adapters.engines.session import EngineSession
from caifu.adapters.sor.repos import profiles as repo
from caifu.adapters.sor.store import bulk_transaction
from caifu.data.contracts.tables import CHANNELS
from caifu.pipelines import cards as pc
from caifu.pipelines.profile import FEATURES
from caifu.services.compliance import privacy
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.build import SCORE_TABLE, Build
from caifu.services.profiles.lifecycle import STAGE_TABLE
from caifu.services.value.customer_value import VALUE_TABLE
from caifu.services.value.redemption import TASK_TABLE

CARD_VERSION = 1  # bump when a field changes meaning; readers check it
RECENT_TRADES = 10
BATCH = 20_000  # customers shaped per batch: bounds the build's memory
WRITE_CHUNK = 50_000  # rows per insert into the system of record

Progress = Callable[[str], None]


@dataclass
class CardsResult:
    tenant: str
    as_of: dt.date
    cards: int = 0
    sections: dict[str, int] = field(default_factory=dict)  # cards with the section filled
    snapshots: dict[str, str | None] = field(default_factory=dict)  # derived table → date used
    skipped_restricted: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "as_of": self.as_of.isoformat(), "cards": self.cards,
                "sections": dict(self.sections), "snapshots": dict(self.snapshots),
                "skipped_restricted": self.skipped_restricted, "notes": list(self.notes),
                "timings": dict(self.timings)}


@dataclass
class _Inputs:
    """What the card of every customer shares: the expression and the tenant-wide notes."""

    expr: ir.Table
    notes: list[str]  # for the build's result
    card_notes: list[str]  # for every card: why a section is empty
    dates: dict[str, str | None]
    has: dict[str, bool]  # which inputs exist at all (a missing one leaves its section null)


class Cards:
    def __init__(self, container: Container, progress: Progress | None = None) -> None:
        self.c = container
        self.progress = progress or (lambda _msg: None)

    def build(self, tenant: str, as_of: dt.date | None = None, *, engine: str = "duckdb"
              ) -> CardsResult:
        t0 = time.perf_counter()
        tz = get_tenant(self.c, tenant).timezone
        with self.c.lock(tenant, "cards"), \
                self.c.job_session(engine, f"cards-{tenant}") as s, \
                self.c.scratch(f"cards-spool-{tenant}-{time.time_ns()}") as spool_dir:
            self.progress("reading inputs")
            build = Build(self.c)
            inputs = build.load_inputs(s, tenant)
            if as_of is None:
                as_of = build.data_as_of(s, inputs, tz) or dt.datetime.now(ZoneInfo(tz)).date()
            result = CardsResult(tenant, as_of)
            restricted = privacy.restricted_ids(self.c, tenant)
            plan = self._plan(s, tenant, inputs, as_of, restricted)
            result.notes += plan.notes
            result.snapshots = plan.dates
            result.skipped_restricted = len(restricted)
            result.timings["plan"] = round(time.perf_counter() - t0, 3)
            spool = spool_dir / "cards.parquet"
            t1 = time.perf_counter()
            self._spool(s, plan, as_of, spool, result)
            result.timings["compute"] = round(time.perf_counter() - t1, 3)
            t2 = time.perf_counter()
            self.progress(f"writing {result.cards:,} cards")
            self._write(tenant, as_of, spool)
            result.timings["write"] = round(time.perf_counter() - t2, 3)
        result.timings["total"] = round(time.perf_counter() - t0, 3)
        return result

    # --- inputs ----------------------------------------------------------------------------

    def _snapshot(self, s: EngineSession, tenant: str, table: str, as_of: dt.date
                  ) -> tuple[ir.Table | None, str | None]:
        """The newest snapshot of a derived lake table dated on or before ``as_of``."""
        dates = [d for d in self.c.lake.snapshot_dates(tenant, table)
                 if dt.date.fromisoformat(d) <= as_of]
        if not dates:
            return None, None
        t = s.read_parquet(f"{tenant}_{table}", self.c.lake.files(tenant, table))
        return t.filter(t.as_of == dt.date.fromisoformat(dates[-1])), dates[-1]

    def _plan(self, s: EngineSession, tenant: str, inputs: Any, as_of: dt.date,
              restricted: set[str]) -> _Inputs:
        cust = inputs.customers.filter(inputs.customers.opened_on <= as_of)
        if restricted:
            cust = cust.filter(~cust.customer_id.isin(sorted(restricted)))
        base = cust.select("customer_id")
        notes: list[str] = []
        sections: list[ir.Table] = []
        stocks = funds = None
        if inputs.positions is not None:
            stocks = pc.stock_holdings(inputs.positions, inputs.securities, as_of)
            sections.append(pc.stock_section(stocks))
            snap = s.to_arrow(pc.snapshot_date(inputs.positions, as_of))["snapshot_date"][0]
            sections.append(base.select("customer_id",
                                        stock_snapshot=ibis.literal(snap.as_py(), type="date")))
        else:
            notes.append("no positions in the lake: cards have no stock holdings")
        if inputs.fund_transactions is not None:
            funds = pc.fund_holdings(inputs.fund_transactions, inputs.fund_products,
                                     inputs.customers, as_of)
            sections.append(pc.fund_section(funds))
        else:
            notes.append("no fund transactions in the lake: cards have no fund holdings")
        if inputs.trades is not None:
            sections.append(pc.trade_section(pc.recent_trades(
                inputs.trades, inputs.securities, as_of, RECENT_TRADES)))
            sections.append(pc.realised_pnl(inputs.trades, as_of))
        else:
            notes.append("no trades in the lake: cards have no recent trades or realised P&L")
        losing = pc.losing_positions(stocks, funds)
        if losing is not None:
            sections.append(pc.losing_section(losing))
        sections.append(pc.latest_assessment(inputs.suitability_assessments, as_of))
        dates: dict[str, str | None] = {}
        for table, shape, what in (
                (STAGE_TABLE, pc.lifecycle_section, "lifecycle stages (`caifu lifecycle`)"),
                (SCORE_TABLE, pc.score_section, "model scores (`caifu score`)"),
                (VALUE_TABLE, pc.value_section, "customer value (`caifu value`)"),
                (TASK_TABLE, pc.task_section, "advisor tasks (`caifu redemption --export`)")):
            snap_t, day = self._snapshot(s, tenant, table, as_of)
            dates[table] = day
            if snap_t is None:
                notes.append(f"no {what} on or before {as_of}: that section is empty")
            else:
                sections.append(shape(snap_t))
                if day != as_of.isoformat():
                    notes.append(f"{table} as of {day}, the newest on or before {as_of}")
        has = {"stocks": stocks is not None, "funds": funds is not None,
               "trades": inputs.trades is not None,
               **{t: dates[t] is not None for t in dates}}
        missing = [n for n in notes if n.startswith("no ")]
        return _Inputs(pc.join_sections(base, sections), notes, missing, dates, has)

    # --- shaping and spooling --------------------------------------------------------------

    def _spool(self, s: EngineSession, plan: _Inputs, as_of: dt.date, path: Any,
               result: CardsResult) -> None:
        schema = pa.schema([("customer_id", pa.string()), ("card_json", pa.string()),
                            ("lifecycle_stage", pa.string())])
        counts = dict.fromkeys(("stocks", "funds", "recent_trades", "losing_positions", "suitability",
                                "lifecycle", "scores", "value", "tasks"), 0)
        with pq.ParquetWriter(path, schema) as writer:
            for batch in _batches(s, plan.expr, BATCH):
                ids, docs, stages = [], [], []
                for row in batch.to_pylist():
                    card = shape_card(row, as_of, plan)
                    for k in counts:
                        counts[k] += bool(card.get(k))
                    ids.append(row["customer_id"])
                    docs.append(json.dumps(card, ensure_ascii=False, default=_plain))
                    stages.append((card["lifecycle"] or {}).get("stage"))
                writer.write_table(pa.table([ids, docs, stages], schema=schema))
                result.cards += len(ids)
                self.progress(f"shaped {result.cards:,} cards")
        result.sections = counts

    def _write(self, tenant: str, as_of: dt.date, spool: Any) -> None:
        built_at = self.c.clock.now()
        with bulk_transaction(self.c.engine) as conn:
            repo.delete_cards(conn, tenant)
            for batch in pq.ParquetFile(spool).iter_batches(batch_size=WRITE_CHUNK):
                repo.insert_cards(conn, tenant, as_of, built_at,
                                  batch["customer_id"].to_pylist(),
                                  batch["card_json"].to_pylist(),
                                  batch["lifecycle_stage"].to_pylist())


def _batches(s: EngineSession, expr: ir.Table, size: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``expr`` a batch at a time. DuckDB streams its result (Ibis 12's own
    ``to_pyarrow_batches`` calls a method DuckDB 2 no longer has); other engines hand the
    whole table back first."""
    if s.name == "duckdb":
        raw = s.con.con
        yield from raw.sql(str(s.con.compile(expr))).to_arrow_reader(size)
    else:
        yield from s.to_arrow(expr).to_batches(size)


def _plain(value: Any) -> Any:
    """JSON for what ``json`` does not know: exact decimals as strings (money stays exact,
    as in the profile JSON), dates and times in ISO form."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- one card --------------------------------------------------------------------------------

ZERO = Decimal("0.00")
# a reason names a model input: a profile feature or one the design matrix derives from one
FEATURE_LABELS = {f.name: f.desc for f in FEATURES} | {
    "c_level_number": "风险承受等级（C1–C5 记为 1–5）", "is_institution": "机构客户",
    **{f"channel_{ch}": f"获客渠道：{ch}" for ch in CHANNELS}}
REALISED_METHOD = "股票：均价法（卖出均价−买入均价）×配对数量，不含费用"


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _rounded(rows: list[dict[str, Any]] | None, *names: str) -> list[dict[str, Any]]:
    out = []
    for r in rows or []:
        out.append({k: (_round(v) if k in names else v) for k, v in r.items()})
    return out


def _stocks(row: dict[str, Any]) -> dict[str, Any]:
    return {"snapshot_date": row["stock_snapshot"], "value": row["stock_value"] or ZERO,
            "cost": row["stock_cost"] or ZERO, "unrealised_pnl": row["stock_pnl"] or ZERO,
            "positions": [{**r, "quantity": int(r["quantity"])}
                          for r in _rounded(row["stock_positions"], "unrealised_pnl_pct")]}


def _funds(row: dict[str, Any]) -> dict[str, Any]:
    return {"value": row["fund_value"] or ZERO, "known_cost": row["fund_known_cost"] or ZERO,
            "pnl": row["fund_pnl"] or ZERO,
            "positions_without_cost": row["fund_unknown_cost"] or 0,
            "positions": _rounded(row["fund_positions"], "pnl_pct", "held_days", "drawdown")}


def _scores(row: dict[str, Any], day: str | None) -> dict[str, Any]:
    from caifu.analytics.labels import TARGETS

    items = []
    for r in row["scores"] or []:
        target = TARGETS.get(r["score"])
        items.append({"score": r["score"], "title": target.title if target else r["score"],
                      "value": _round(r["value"]), "model_version": r["model_version"],
                      "scored_at": r["scored_at"],
                      "reasons": [{**x, "label": FEATURE_LABELS.get(x.get("feature"))}
                                  for x in json.loads(r["reasons_json"] or "[]")]})
    return {"as_of": day, "items": items}


def _suitability(row: dict[str, Any]) -> dict[str, Any] | None:
    if row["assessment_id"] is None:
        return None
    return {k: row[k] for k in ("risk_level", "lowest_category", "score", "assessed_on",
                                "valid_until", "expired", "objective", "horizon",
                                "questionnaire_version", "assessment_id")}


def shape_card(row: dict[str, Any], as_of: dt.date, plan: _Inputs) -> dict[str, Any]:
    """One customer's card from its joined row (``pipelines.cards.join_sections``).

    A section is ``null`` when its input does not exist for the tenant (the card's notes
    say so) or, for suitability, lifecycle and value, when the customer has no row there.
    """
    has, dates = plan.has, plan.dates
    notes = list(plan.card_notes)
    stocks = _stocks(row) if has["stocks"] else None
    funds = _funds(row) if has["funds"] else None
    stock_value = stocks["value"] if stocks else ZERO
    fund_value = funds["value"] if funds else ZERO
    total = stock_value + fund_value
    suitability = _suitability(row)
    if suitability is None:
        notes.append(f"no suitability assessment on or before {as_of}")
    elif suitability["expired"]:
        notes.append(f"suitability assessment expired on {suitability['valid_until']}")
    lifecycle = None
    if has[STAGE_TABLE] and row["stage"] is not None:
        lifecycle = {"stage": row["stage"], "stage_name": row["stage_name"],
                     "since": row["stage_since"], "days_in_stage": row["days_in_stage"],
                     "trigger": row["stage_trigger"], "trigger_text": row["stage_trigger_text"],
                     "as_of": dates[STAGE_TABLE]}
    value = None
    if has[VALUE_TABLE] and row["clv"] is not None:
        value = {"clv": row["clv"], "clv_basis": row["clv_basis"],
                 "p_alive": _round(row["p_alive"]), "acquisition_cost": row["acquisition_cost"],
                 "retention_cost": row["retention_cost"], "efficiency": row["efficiency"],
                 "as_of": dates[VALUE_TABLE]}
    return {
        "version": CARD_VERSION, "customer_id": row["customer_id"], "as_of": as_of,
        "aum": {"total": total, "stocks": stock_value, "funds": fund_value,
                "stock_share": _round(float(stock_value / total)) if total > 0 else None},
        "stocks": stocks, "funds": funds,
        "recent_trades": (row["recent_trades"] or []) if has["trades"] else None,
        "pnl": {"unrealised": (stocks["unrealised_pnl"] if stocks else ZERO)
                + (funds["pnl"] if funds else ZERO),
                "stock_unrealised": stocks["unrealised_pnl"] if stocks else None,
                "fund_unrealised": funds["pnl"] if funds else None,
                "stock_realised": (row["realised_pnl"] or ZERO) if has["trades"] else None,
                "stock_realised_method": REALISED_METHOD},
        "losing_positions": _rounded(row.get("losing_positions"), "pnl_pct"),
        "suitability": suitability, "lifecycle": lifecycle,
        "scores": _scores(row, dates[SCORE_TABLE]) if has[SCORE_TABLE] else None,
        "value": value,
        "tasks": {"as_of": dates[TASK_TABLE], "open": row["tasks"] or []}
        if has[TASK_TABLE] else None,
        "notes": notes,
    }
