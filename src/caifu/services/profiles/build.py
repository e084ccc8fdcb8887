"""The build: profiles, tags and segment sizes for one tenant as of a date.

    caifu build -t demo [--engine duckdb|spark] [--as-of 2026-10-30]

1. read the tenant's master data from the system of record and its facts from the lake onto
   the engine (DuckDB in-process by default, or Spark);
2. compute the profile features (``pipelines.profile``) and assign rule, text and model
   tags with their evidence;
3. write both to the lake as the snapshot of that date (``profile_features`` and
   ``tag_snapshots``: one snapshot per date, each rebuild a new Delta version) — segments as
   of a date read these;
4. unless the date is older than what is served: replace the serving profiles and tag
   assignments and record every gain and loss in the tag history, in one SoR transaction
   (readers never see profiles of one build with tags of another);
5. recompute every segment's size for the date (a segment that no longer evaluates is
   reported, not fatal).

A build holds the tenant's ``serving`` lock from reading to writing, as the real-time
worker does for each micro-batch, so neither overwrites the other with older inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from caifu.adapters.engines.session import EngineSession
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.adapters.sor.repos import profiles as repo
from caifu.core.errors import ConfigError
from caifu.core.tags import TagDefinition
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.pipelines.profile import FEATURES, ProfileInputs, profile_features, restrict
from caifu.pipelines.tags import (
    TagHit,
    messages_for_text_tags,
    model_tag_hits,
    rule_tag_hits,
    text_rules,
    text_tag_hits,
    uses_rules,
)
from caifu.services.compliance import privacy
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles import tag_definitions
from caifu.services.profiles.segments import Segments
from caifu.services.text import models as text_models
from caifu.text.dictionaries import seed_rules
from caifu.text.hybrid import HybridTagger
from caifu.text.tagging import ChatTagger

FEATURE_TABLE = "profile_features"
TAG_TABLE = "tag_snapshots"
SCORE_TABLE = "model_scores"
SOR_INPUTS = ("customers", "accounts", "securities", "fund_products", "suitability_assessments",
              "wecom_follows")
LAKE_INPUTS = ("trades", "positions", "cash_flows", "fund_transactions", "app_events")
DATE_COLUMNS = {"trades": "trade_date", "positions": "snapshot_date",
                "fund_transactions": "txn_date"}
TIME_COLUMNS = {"cash_flows": "flow_time", "app_events": "event_time"}

Progress = Callable[[str], None]


@dataclass
class BuildResult:
    tenant: str
    as_of: dt.date
    engine: str
    customers: int = 0
    feature_version: int | None = None
    served: bool = False
    tags: dict[str, int] = field(default_factory=dict)
    gained: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def utc_offset_hours(timezone: str, day: dt.date) -> int:
    offset = dt.datetime.combine(day, dt.time(12), ZoneInfo(timezone)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() // 3600)


class Build:
    def __init__(self, container: Container, progress: Progress | None = None) -> None:
        self.c = container
        self.progress = progress or (lambda _msg: None)
        # per tenant: (key, hybrid tagger), (key, ChatTagger of tags in the older form)
        self._taggers: dict[str, tuple[str, HybridTagger]] = {}
        self._rules: dict[str, tuple[str, ChatTagger | None]] = {}

    # --- inputs --------------------------------------------------------------------------

    def load_inputs(self, s: EngineSession, tenant: str,
                    customers: list[str] | None = None) -> ProfileInputs:
        """The tenant's tables on the engine; with ``customers``, their master rows only.

        Narrowing the master data in the system of record (by index) is what keeps a
        real-time micro-batch fast; ``restrict`` still narrows the lake facts on the engine.
        """
        reg = registry()
        tables: dict[str, ir.Table | None] = {}
        with self.c.engine.connect() as conn:
            for name in SOR_INPUTS:
                contract = reg[name]
                if customers is not None and "customer_id" in contract:
                    data: pa.Table | None = repo.rows_of_customers(conn, tenant, contract,
                                                                   customers)
                else:
                    data = ingest_repo.rows(conn, tenant, contract)
                if data is None:
                    data = contract_schema(contract).empty_table()
                tables[name] = s.from_arrow(f"{tenant}_{name}", data)
        for name in LAKE_INPUTS:
            files = self.c.lake.files(tenant, name)
            tables[name] = s.read_parquet(f"{tenant}_{name}", files) if files else None
        # storage-only customers are kept by law but no longer processed (services/privacy)
        return privacy.without_restricted(self.c, tenant, ProfileInputs(**tables))  # type: ignore[arg-type]

    def data_as_of(self, s: EngineSession, inputs: ProfileInputs, tz: str) -> dt.date | None:
        """The newest local business date in any fact: the default as-of of a build.

        Events the real-time path appended count too, so a nightly build never lands on a
        date older than what real time already serves.
        """
        newest: list[dt.date] = []
        for name, column in (*DATE_COLUMNS.items(), *TIME_COLUMNS.items()):
            t = getattr(inputs, name)
            if t is not None:
                value = s.to_arrow(t.aggregate(d=t[column].max()))["d"][0].as_py()
                if isinstance(value, dt.datetime):
                    value = (value + dt.timedelta(hours=utc_offset_hours(tz, value.date()))
                             ).date()
                if value is not None:
                    newest.append(value)
        return max(newest) if newest else None

    # --- the build -----------------------------------------------------------------------

    def build(self, tenant: str, *, engine: str = "duckdb", as_of: dt.date | None = None
              ) -> BuildResult:
        t0 = time.perf_counter()
        tz = get_tenant(self.c, tenant).timezone
        definitions, source = tag_definitions.load_definitions(self.c, tenant)
        tag_definitions.register_versions(self.c, tenant, definitions, source)
        with self.c.lock(tenant, "serving"), \
                self.c.job_session(engine, f"build-{tenant}") as s:
            return self._run(s, tenant, tz, definitions, as_of, t0)

    def _run(self, s: EngineSession, tenant: str, tz: str, definitions: list[TagDefinition],
             as_of: dt.date | None, t0: float) -> BuildResult:
        timings: dict[str, float] = {}

        def lap(name: str, since: float) -> float:
            now = time.perf_counter()
            timings[name] = round(now - since, 3)
            return now

        self.progress("reading inputs")
        inputs = self.load_inputs(s, tenant)
        if as_of is None:
            as_of = self.data_as_of(s, inputs, tz) or dt.datetime.now(ZoneInfo(tz)).date()
        offset = utc_offset_hours(tz, as_of)
        result = BuildResult(tenant, as_of, s.name)
        mark = lap("read", t0)

        self.progress(f"profiles as of {as_of}")
        features, hits, notes = self.compute(s, tenant, inputs, definitions, as_of, offset)
        result.customers = features.num_rows
        result.notes += notes
        mark = lap("profile_and_tags", mark)
        meta = {"caifu.as_of": as_of.isoformat(), "caifu.engine": s.name}
        result.feature_version = self.c.lake.write_snapshot(
            tenant, FEATURE_TABLE, features, as_of.isoformat(), meta)
        self.c.lake.write_snapshot(tenant, TAG_TABLE, tag_table(as_of, hits),
                                   as_of.isoformat(), meta)
        result.tags = _count_tags(hits)
        mark = lap("write_lake", mark)

        with self.c.engine.connect() as conn:
            current = repo.serving_as_of(conn, tenant)
        if current is not None and as_of < current:
            result.notes.append(f"serving rows stay at {current}: {as_of} is older; its "
                                "profile and tag snapshots were recorded in the lake")
        else:
            self.progress("writing serving rows")
            with self.c.engine.begin() as conn:
                self.write_serving(conn, tenant, as_of, features, hits, definitions, result)
        mark = lap("write_sor", mark)
        self.progress("segments")
        result.segments, problems = Segments(self.c).record_sizes(s, tenant, as_of)
        result.notes += problems
        lap("segments", mark)
        result.timings = timings
        return result

    def compute(self, s: EngineSession, tenant: str, inputs: ProfileInputs,
                definitions: list[TagDefinition], as_of: dt.date, offset: int,
                customers: list[str] | None = None
                ) -> tuple[pa.Table, list[TagHit], list[str]]:
        """Features and tag hits for every customer, or only ``customers`` (real time).

        Both paths run this same code, which is why a rebuild and the incremental path
        agree.
        """
        notes: list[str] = []
        if customers is not None:
            inputs = restrict(inputs, customers)
        features = s.to_arrow(profile_features(inputs, as_of, offset))
        feature_table = s.from_arrow(f"{tenant}_features", features)
        hits = rule_tag_hits(feature_table, definitions, as_of, offset)
        hits += self._text_hits(s, inputs, tenant, definitions, as_of, offset, customers)
        scores_files = self.c.lake.files(tenant, SCORE_TABLE)
        scores = s.read_parquet(f"{tenant}_scores", scores_files) if scores_files else None
        if scores is None and any(d.kind == "model" for d in definitions):
            notes.append("model tags: no model scores yet (they come from `caifu score`)")
        if scores is not None and customers is not None:
            scores = scores.filter(scores.customer_id.isin(customers))
        hits += model_tag_hits(scores, definitions, as_of, offset)
        return features, hits, notes

    def _text_hits(self, s: EngineSession, inputs: ProfileInputs, tenant: str,
                   definitions: list[TagDefinition], as_of: dt.date, offset: int,
                   customers: list[str] | None) -> list[TagHit]:
        files = self.c.lake.files(tenant, "chat_messages")
        if not files:
            return []
        chat = s.read_parquet(f"{tenant}_chat", files)
        restricted = privacy.restricted_ids(self.c, tenant)
        if restricted:  # storage only: no new tags from his chats either
            chat = chat.filter(~chat.customer_id.isin(sorted(restricted)))
        if customers is not None:
            chat = chat.filter(chat.customer_id.isin(customers))
        messages = messages_for_text_tags(chat, definitions, as_of, offset)
        if messages is None:
            return []
        rows = s.to_arrow(messages)
        tagger, rules = self._tagger(s, tenant, inputs, definitions)
        return text_tag_hits(rows, definitions, tagger, as_of, offset, rules)

    def _tagger(self, s: EngineSession, tenant: str, inputs: ProfileInputs,
                definitions: list[TagDefinition]) -> tuple[HybridTagger, ChatTagger | None]:
        """The tenant's hybrid tagger (``services.text.models``), rebuilt when its model,
        taxonomy or master data change, and the ``ChatTagger`` of tags still in the older
        form (dictionaries/patterns), rebuilt when those definitions change too — the
        real-time worker keeps one Build for many micro-batches."""
        securities = s.to_arrow(inputs.securities.select(
            "security_code", "short_name", "board", "industry"))
        funds = s.to_arrow(inputs.fund_products.select("fund_code", "name", "fund_type"))
        master = hashlib.sha256(tenant.encode())
        for table in (securities, funds):
            master.update(_ipc_bytes(table))
        key = f"{text_models.tagger_version(self.c, tenant)}:{master.hexdigest()}"
        cached = self._taggers.get(tenant)
        if cached is None or cached[0] != key:
            cached = (key, text_models.tagger(self.c, tenant, securities, funds))
            self._taggers[tenant] = cached
        older = [(d.id, d.version) for d in definitions if uses_rules([d])]
        rules_key = f"{master.hexdigest()}:{older!r}"
        rules = self._rules.get(tenant)
        if rules is None or rules[0] != rules_key:
            chat = ChatTagger(text_rules(definitions, seed_rules(securities, funds))) \
                if older else None
            rules = (rules_key, chat)
            self._rules[tenant] = rules
        return cached[1], rules[1]

    def write_serving(self, conn: Any, tenant: str, as_of: dt.date, features: pa.Table,
                      hits: list[TagHit], definitions: list[TagDefinition], result: BuildResult,
                      customers: list[str] | None = None) -> None:
        """Profiles, assignments and history in the caller's transaction.

        With ``customers``, only their rows change (the real-time path); otherwise the
        tenant's.
        """
        now = self.c.clock.now()
        ids = [d.id for d in definitions]
        result.served = True
        cids = features["customer_id"].to_pylist()
        if customers is None:
            repo.replace_profiles(conn, tenant, as_of, cids, features_json(features), now)
        else:
            repo.replace_profiles(conn, tenant, as_of, cids, features_json(features), now,
                                     only=customers)
        old = {(r["customer_id"], r["tag_id"]): r
               for r in repo.assignments(conn, tenant, customer_ids=customers)}
        new = {(h.customer_id, h.tag_id): h for h in hits}
        cols: dict[str, list[Any]] = {c: [] for c in repo.ASSIGNMENT_COLUMNS}
        for key, h in sorted(new.items()):
            prior = old.get(key)
            gained_at = prior["gained_at"] if prior else now
            for c, v in (("customer_id", h.customer_id), ("tag_id", h.tag_id),
                         ("tag_version", h.tag_version), ("kind", h.kind),
                         ("evidence_json", _json(h.evidence)), ("as_of", as_of),
                         ("gained_at", gained_at), ("updated_at", now),
                         ("expires_at", h.expires_at)):
                cols[c].append(v)
        # assignments of tags no longer defined are left alone, not silently dropped
        repo.replace_assignments(conn, tenant, cols, tag_ids=ids, customer_ids=customers)
        gained = [new[k] for k in sorted(new.keys() - old.keys())]
        lost = [old[k] for k in sorted(old.keys() - new.keys()) if k[1] in ids]
        _record_history(conn, tenant, as_of, now, gained, lost, result)
        result.tags = _count_tags(hits)


def _count_tags(hits: list[TagHit]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tag_id in {(h.customer_id, h.tag_id) for h in hits}:
        counts[tag_id[1]] = counts.get(tag_id[1], 0) + 1
    return counts


TAG_SCHEMA = pa.schema([("as_of", pa.date32()), ("customer_id", pa.string()),
                        ("tag_id", pa.string()), ("tag_version", pa.int64()),
                        ("kind", pa.string()), ("evidence_json", pa.string()),
                        ("expires_at", pa.timestamp("us"))])


def tag_table(as_of: dt.date, hits: list[TagHit]) -> pa.Table:
    """The tags held on ``as_of``, one row per customer and tag: the lake's tag snapshot."""
    unique = {(h.customer_id, h.tag_id): h for h in hits}
    rows = [unique[k] for k in sorted(unique)]
    return pa.table({
        "as_of": pa.array([as_of] * len(rows), pa.date32()),
        "customer_id": pa.array([h.customer_id for h in rows], pa.string()),
        "tag_id": pa.array([h.tag_id for h in rows], pa.string()),
        "tag_version": pa.array([h.tag_version for h in rows], pa.int64()),
        "kind": pa.array([h.kind for h in rows], pa.string()),
        "evidence_json": pa.array([_json(h.evidence) for h in rows], pa.string()),
        "expires_at": pa.array([h.expires_at for h in rows], pa.timestamp("us")),
    }, schema=TAG_SCHEMA)


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _record_history(conn: Any, tenant: str, as_of: dt.date, now: dt.datetime,
                    gained: list[TagHit], lost: list[dict[str, Any]], result: BuildResult) -> None:
    rows: dict[str, list[Any]] = {c: [] for c in ("customer_id", "tag_id", "tag_version", "event",
                                                  "as_of", "recorded_at", "evidence_json")}
    for h in gained:
        for c, v in zip(rows, (h.customer_id, h.tag_id, h.tag_version, "gained", as_of, now,
                               _json(h.evidence)), strict=True):
            rows[c].append(v)
        result.gained[h.tag_id] = result.gained.get(h.tag_id, 0) + 1
    for r in lost:
        for c, v in zip(rows, (r["customer_id"], r["tag_id"], r["tag_version"], "lost", as_of,
                               now, None), strict=True):
            rows[c].append(v)
        result.lost[r["tag_id"]] = result.lost.get(r["tag_id"], 0) + 1
    repo.add_history(conn, tenant, rows)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def features_json(features: pa.Table) -> list[str]:
    """One JSON object per row: exact decimals as strings, dates ISO, floats as numbers."""
    cols = {}
    for f in FEATURES:
        if f.name in ("customer_id",):
            continue
        col = features[f.name]
        if f.kind in ("decimal", "date", "timestamp"):
            col = pc.cast(col, pa.string())
        cols[f.name] = col.to_pylist()
    names = list(cols)
    return [json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False)
            for values in zip(*cols.values(), strict=True)]


def check_as_of(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from None
