"""Fund-redemption analysis for one tenant and period, and its reassurance tasks.

    caifu redemption -t demo [--from 2026-05-20 --to 2026-06-20] [--top 20] [--export tasks.csv]

1. read the tenant's master data and lake facts onto the engine (``Build.load_inputs``);
2. answer the four questions for the period (default: the 30 days ending on the newest data
   date) with ``analytics.redemption`` (1, 3), ``redemption_effects`` (2) and
   ``reassurance`` (4); the reassurance list is as of the period's end;
3. holders' profiles (C-level, tenure, AUM) come from the newest ``profile_features``
   snapshot before the period starts, chat and loss tags from the newest ``tag_snapshots``
   on or before its end — both written by ``caifu build``; without them the analysis runs
   and says what it left out;
4. the study's rows go to the lake, one snapshot per period end (``as_of``; the period's
   first day in ``period_start``): ``redemption_study_holdings`` (one row per customer and
   fund exposed in the period: its flows and features, questions 1 and 2) and
   ``redemption_study_redemptions`` (one row per redemption: its FIFO holding days, question
   3). The figures operations read are metrics over them (``data/metrics/value_runs.yaml``,
   ``services/value/figures``);
5. ``write_tasks`` records the top of the reassurance list as advisor tasks in the lake
   table ``advisor_tasks`` (one snapshot per period end; kind ``reassure_fund_holder``).

A tenant without fund transactions has nothing to analyse: ``run`` raises ``ConfigError``
(the command shows it), and ``has_fund_data`` answers the question without an engine, for
callers that skip the analysis instead (the value report).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import ibis.expr.types as ir
import pyarrow as pa

from caifu.adapters.engines.session import EngineSession
from caifu.analytics import reassurance as rs
from caifu.analytics import redemption as an
from caifu.analytics import redemption_effects as effects
from caifu.core.errors import ConfigError
from caifu.pipelines.fund_ledger import holder_positions
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles import tag_definitions
from caifu.services.profiles.build import FEATURE_TABLE, TAG_TABLE, Build

TASK_TABLE = "advisor_tasks"
HOLDING_TABLE = "redemption_study_holdings"
REDEMPTION_TABLE = "redemption_study_redemptions"
SHARES = pa.decimal128(28, 6)
MONEY = pa.decimal128(18, 2)
STUDY = [("as_of", pa.date32()), ("period_start", pa.date32())]
HOLDING_SCHEMA = pa.schema([
    *STUDY, ("customer_id", pa.string()), ("fund_code", pa.string()), ("redeemed", pa.bool_()),
    ("fund_type", pa.string()), ("risk_level", pa.string()), ("manager_company", pa.string()),
    ("mgmt_fee_rate", pa.float64()), ("purchase_fee_rate", pa.float64()),
    ("redeem_fee_rate", pa.float64()), ("nav_max_drawdown", pa.float64()),
    ("value_at_start", pa.float64()), ("return_at_start", pa.float64()),
    ("held_days_at_start", pa.float64()), ("prehistory_shares_at_start", SHARES),
    ("past_redemptions", pa.int64()), ("shares_at_start", SHARES), ("shares_added", SHARES),
    ("redeemed_shares", SHARES), ("redeemed_amount", MONEY), ("redeem_fees", MONEY),
    ("redemptions", pa.int64()), ("c_level", pa.string()), ("tenure_days", pa.int64()),
    ("aum", pa.float64())])
REDEMPTION_SCHEMA = pa.schema([
    *STUDY, ("redeem_txn_id", pa.string()), ("customer_id", pa.string()),
    ("fund_code", pa.string()), ("redeem_date", pa.date32()), ("redeem_shares", SHARES),
    ("redeem_amount", MONEY), ("known_shares", SHARES), ("prehistory_shares", SHARES),
    ("oldest_lot", pa.date32()), ("holding_days", pa.float64()), ("fund_type", pa.string())])
TASK_KIND = "reassure_fund_holder"
DEFAULT_DAYS = 30
LEDGER_TABLE = "fund_transactions"  # the lake input the analysis reads
TASK_SCHEMA = pa.schema([
    ("as_of", pa.date32()), ("task_id", pa.string()), ("kind", pa.string()),
    ("customer_id", pa.string()), ("advisor_id", pa.string()), ("rank", pa.int64()),
    ("score", pa.int64()), ("reason_codes", pa.string()), ("reasons", pa.string()),
    ("reasons_json", pa.string()), ("status", pa.string()), ("created_on", pa.date32())])


@dataclass
class RedemptionResult:
    tenant: str
    period: an.Period
    funds: pa.Table  # 1. per fund, by redeemed amount
    holdings: pa.Table  # 2. exposed holdings with their features
    comparison: pa.Table  # 2. redeemed versus the rest
    holding_periods: pa.Table  # 3. per redemption
    holding_summary: pa.Table  # 3. median and quartiles by fund type
    waves: pa.Table  # redemption waves of the history window
    reassurance: pa.Table  # 4. ranked holders with reasons
    profile_as_of: dt.date | None = None
    tags_as_of: dt.date | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _snapshot(s: EngineSession, c: Container, tenant: str, table: str, newest: dt.date
              ) -> tuple[ir.Table | None, dt.date | None]:
    """The rows of the newest snapshot of a derived lake table dated on or before ``newest``."""
    dates = [d for d in map(dt.date.fromisoformat, c.lake.snapshot_dates(tenant, table))
             if d <= newest]
    if not dates:
        return None, None
    t = s.read_parquet(f"{tenant}_{table}", c.lake.files(tenant, table))
    return t.filter(t.as_of == max(dates)), max(dates)


def has_fund_data(container: Container, tenant: str) -> bool:
    """Whether the tenant's lake holds fund transactions: what ``RedemptionAnalysis.run``
    needs, checked from the lake's file list (no engine, no reading)."""
    return bool(container.lake.files(tenant, LEDGER_TABLE))


class RedemptionAnalysis:
    def __init__(self, container: Container) -> None:
        self.c = container

    def run(self, tenant: str, start: dt.date | None = None, end: dt.date | None = None, *,
            engine: str = "duckdb", rules: rs.ReassuranceRules | None = None,
            write: bool = True) -> RedemptionResult:
        t0 = time.perf_counter()
        tz = get_tenant(self.c, tenant).timezone
        definitions, _ = tag_definitions.load_definitions(self.c, tenant)
        names = {d.id: d.name for d in definitions}
        rules = rules or rs.ReassuranceRules()
        with self.c.job_session(engine, f"redemption-{tenant}") as s:
            result = self._run(s, tenant, tz, start, end, rules, names)
        if write:
            self._write_study(result)
        result.seconds = round(time.perf_counter() - t0, 3)
        return result

    def _run(self, s: EngineSession, tenant: str, tz: str, start: dt.date | None,
             end: dt.date | None, rules: rs.ReassuranceRules, names: dict[str, str]
             ) -> RedemptionResult:
        build = Build(self.c)
        inputs = build.load_inputs(s, tenant)
        ft, funds = inputs.fund_transactions, inputs.fund_products
        if ft is None:  # the condition has_fund_data checks
            raise ConfigError(f"tenant {tenant!r} has no fund transactions yet: nothing to "
                              "analyse; ingest them first (caifu ingest)")
        if end is None:
            end = build.data_as_of(s, inputs, tz) or dt.datetime.now(ZoneInfo(tz)).date()
        if start is None:
            start = end - dt.timedelta(days=DEFAULT_DAYS - 1)
        try:
            period = an.Period(start, end)
        except ValueError as exc:
            raise ConfigError(f"--from/--to: {exc}") from None
        notes: list[str] = []
        profile, profile_as_of = _snapshot(s, self.c, tenant, FEATURE_TABLE,
                                           start - dt.timedelta(days=1))
        if profile is None:
            notes.append(f"no profile snapshot before {start}: holders' C-level, tenure and "
                         "AUM left out of question 2 (run `caifu build --as-of` for a date "
                         "before the period)")
        tags, tags_as_of = _snapshot(s, self.c, tenant, TAG_TABLE, end)
        if tags is None:
            notes.append(f"no tag snapshot on or before {end}: chat and loss tags left out of "
                         "the reassurance reasons (run `caifu build`)")
        elif tags_as_of != end:
            notes.append(f"tags as of {tags_as_of} (the newest build on or before {end})")

        q1 = s.to_arrow(an.fund_redemptions(ft, funds, period))
        holdings = s.to_arrow(effects.exposed_holdings(ft, funds, period, profile,
                                                  rules.lookback_days))
        periods = s.to_arrow(an.redemption_holding_periods(ft, funds, period))

        first = s.to_arrow(ft.aggregate(d=ft.txn_date.min()))["d"][0].as_py() or start
        since = max(first, end - dt.timedelta(days=rules.history_days - 1))
        waves = rs.redemption_waves(s.to_arrow(rs.daily_redemptions(ft, since, end)), since,
                                    end, rules.wave_window_days, rules.wave_factor,
                                    rules.wave_minimum)
        positions = s.to_arrow(holder_positions(ft, funds, inputs.customers, end,
                                                   rules.lookback_days))
        past = ft.filter((ft.txn_type == "redeem") & ft.txn_date.between(since, end))
        past_rows = s.to_arrow(past.select("customer_id", "fund_code", "txn_date"))
        tag_rows = None if tags is None else s.to_arrow(
            tags.filter(tags.tag_id.isin([*rules.chat_tags, *rules.loss_tags]))
            .select("customer_id", "tag_id"))
        # the window runs to the period's end: redeeming in the current wave counts too
        ranked = rs.reassurance_list(positions, past_rows, waves, tag_rows, rules, names,
                                     current_from=period.start)
        if ranked.num_rows and ranked["advisor_id"].null_count:
            notes.append(f"{ranked['advisor_id'].null_count} holders on the reassurance list "
                         "have no advisor: their tasks need assigning")
        return RedemptionResult(
            tenant, period, q1, holdings, effects.compare_redeemed(holdings), periods,
            an.holding_period_summary(periods), waves, ranked, profile_as_of, tags_as_of, notes)

    def _write_study(self, r: RedemptionResult) -> None:
        """The study's rows as the snapshot of the period's end (replacing an earlier study
        ending that day)."""
        end = r.period.end.isoformat()
        meta = {"caifu.as_of": end, "caifu.period_start": r.period.start.isoformat()}
        for table, rows, schema in ((HOLDING_TABLE, r.holdings, HOLDING_SCHEMA),
                                    (REDEMPTION_TABLE, r.holding_periods, REDEMPTION_SCHEMA)):
            with self.c.lock(r.tenant, table):
                self.c.lake.write_snapshot(r.tenant, table, study_rows(r.period, rows, schema),
                                           end, meta)

    def write_tasks(self, result: RedemptionResult, top: int | None = None) -> pa.Table:
        """The top ``top`` of the reassurance list (all with ``None``) as advisor tasks: the
        ``advisor_tasks`` snapshot of the period's end, replacing an earlier run's."""
        tz = get_tenant(self.c, result.tenant).timezone
        tasks = task_table(result, top, dt.datetime.now(ZoneInfo(tz)).date())
        end = result.period.end.isoformat()
        with self.c.lock(result.tenant, TASK_TABLE):
            self.c.lake.write_snapshot(result.tenant, TASK_TABLE, tasks, end,
                                       {"caifu.as_of": end, "caifu.kind": TASK_KIND})
        return tasks


def study_rows(period: an.Period, rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` stamped with the period, in ``schema`` (a column the run had no input for —
    the holder's profile without a profile snapshot — is null)."""
    n = rows.num_rows
    cols = {"as_of": pa.array([period.end] * n, pa.date32()),
            "period_start": pa.array([period.start] * n, pa.date32())}
    return pa.table([cols[f.name] if f.name in cols else
                     rows[f.name].cast(f.type) if f.name in rows.column_names else
                     pa.nulls(n, f.type) for f in schema], schema=schema)


def task_table(result: RedemptionResult, top: int | None, created_on: dt.date) -> pa.Table:
    r = result.reassurance if top is None else result.reassurance.slice(0, top)
    end = result.period.end
    n = r.num_rows
    return pa.table({
        "as_of": pa.array([end] * n, pa.date32()),
        "task_id": [f"RF{end:%Y%m%d}-{cid}" for cid in r["customer_id"].to_pylist()],
        "kind": [TASK_KIND] * n, "customer_id": r["customer_id"],
        "advisor_id": r["advisor_id"], "rank": r["rank"], "score": r["score"],
        "reason_codes": r["reason_codes"], "reasons": r["reasons"],
        "reasons_json": r["reasons_json"], "status": ["open"] * n,
        "created_on": pa.array([created_on] * n, pa.date32()),
    }, schema=TASK_SCHEMA)
