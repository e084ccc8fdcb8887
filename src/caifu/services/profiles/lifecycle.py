"""Lifecycle stages for one tenant as of a date: every customer's stage and dated transitions.

    caifu lifecycle -t demo [--as-of 2026-10-30] [--customer 1000000042]

1. read the tenant's master data and lake facts onto the engine (``Build.load_inputs``);
2. reduce them there to one row per customer and day with activity, the first realised loss
   per customer and the master data's closures (``analytics.lifecycle``; the master data is
   today's, so a closure without a date is dated by the customer's last fact in all the data
   and is not seen by a run as of an earlier date);
3. walk the days from the history start to the as-of date (``analytics.lifecycle_machine``);
4. write the lake snapshots of the as-of date: ``lifecycle_stages`` (one row per customer:
   the stage, since when, and its trigger), ``lifecycle_transitions`` (the whole history
   as seen on that date; a later run may date things differently if late facts arrive) and
   ``lifecycle_flows`` (one row per customer: his stage ``FLOW_DAYS`` before the date and on
   it). The counts ``caifu lifecycle`` shows are the metrics ``lifecycle_customers`` and
   ``lifecycle_flow_customers`` over the last two (``services/profiles/figures.py``).

Thresholds are the tenant's ``lifecycle/<tenant>.yaml`` in the workspace, or the packaged
``caifu/data/lifecycle/default.yaml``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from caifu.adapters.engines.session import EngineSession
from caifu.analytics import lifecycle as lc
from caifu.analytics import lifecycle_flows as flows
from caifu.analytics.lifecycle_machine import transitions as run_machine
from caifu.core.errors import ConfigError
from caifu.pipelines.profile import ProfileInputs
from caifu.services.container import Container
from caifu.services.platform.tenant_files import TenantFile, load_yaml
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.build import Build, utc_offset_hours

STAGE_TABLE = "lifecycle_stages"
TRANSITION_TABLE = "lifecycle_transitions"
FLOW_TABLE = "lifecycle_flows"
FLOW_DAYS = 91  # the flows' window, "the last three months": 13 weeks, same weekdays at both ends


LIFECYCLE_FILE = TenantFile("lifecycle")
default_text = LIFECYCLE_FILE.default_text
config_path = LIFECYCLE_FILE.path


def load_rules(c: Container, tenant: str) -> tuple[lc.LifecycleRules, str]:
    """The tenant's thresholds and the file they came from."""
    text, source = LIFECYCLE_FILE.read(c, tenant)
    return parse_text(text, source), source


def parse_text(text: str, source: str) -> lc.LifecycleRules:
    return lc.parse_rules(load_yaml(text, source), source)


@dataclass
class LifecycleResult:
    tenant: str
    as_of: dt.date
    history_start: dt.date
    rules: lc.LifecycleRules
    rules_source: str
    stages: pa.Table  # one row per customer: flows.STAGE_SCHEMA
    transitions: pa.Table  # lifecycle_machine.TRANSITION_SCHEMA
    monthly: pa.Table  # month_end, stage, customers
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def flow_start(self) -> dt.date:
        """The start of the flows written with the run: ``FLOW_DAYS`` before the as-of date,
        or the first fact when that is later."""
        return max(self.as_of - dt.timedelta(days=FLOW_DAYS), self.history_start)

    def flows(self, start: dt.date, end: dt.date | None = None) -> pa.Table:
        """From-stage × to-stage counts between two dates (``end``: the as-of date)."""
        return flows.flow_matrix(self.transitions, start, end or self.as_of)

    def history(self, customer_id: str) -> pa.Table:
        """One customer's transitions, oldest first."""
        return self.transitions.filter(pc.equal(self.transitions["customer_id"], customer_id))


class Lifecycle:
    def __init__(self, container: Container) -> None:
        self.c = container

    def run(self, tenant: str, as_of: dt.date | None = None, *, engine: str = "duckdb",
            write: bool = True) -> LifecycleResult:
        t0 = time.perf_counter()
        tz = get_tenant(self.c, tenant).timezone
        rules, source = load_rules(self.c, tenant)
        with self.c.job_session(engine, f"lifecycle-{tenant}") as s:
            result = self._run(s, tenant, tz, as_of, rules, source)
        if write:
            self._write(result)
        result.seconds = round(time.perf_counter() - t0, 3)
        return result

    def _run(self, s: EngineSession, tenant: str, tz: str, as_of: dt.date | None,
             rules: lc.LifecycleRules, source: str) -> LifecycleResult:
        build = Build(self.c)
        inputs = build.load_inputs(s, tenant)
        newest = build.data_as_of(s, inputs, tz)
        if newest is None:
            raise ConfigError(f"tenant {tenant!r} has no facts yet: ingest data first")
        as_of = as_of or newest
        offset = utc_offset_hours(tz, as_of)
        notes: list[str] = []
        start = _history_start(s, inputs, offset) or as_of
        if start > as_of:
            raise ConfigError(f"--as-of {as_of} is before the first fact ({start})")
        customers = s.to_arrow(lc.customer_status(inputs, as_of, offset))
        daily_expr = lc.daily_activity(inputs, as_of, offset)
        daily = None if daily_expr is None else s.to_arrow(daily_expr)
        losses = None if inputs.trades is None else s.to_arrow(
            lc.first_losses(inputs.trades, as_of, rules.first_loss.min_amount))
        history = run_machine(customers, daily, losses, rules, start, as_of)
        stages = flows.stages_on(history, as_of)
        monthly = flows.monthly_counts(history, start, as_of)
        counts = dict.fromkeys(lc.REPORT_ORDER, 0)
        for st in stages["stage"].to_pylist():
            counts[st] += 1
        warm = start + dt.timedelta(days=rules.dormant.days - 1)
        if warm > as_of:
            notes.append(f"the facts begin on {start}: customers opened before then are judged "
                         f"on fewer than dormant.days ({rules.dormant.days}) days of behaviour "
                         f"until {warm}")
        return LifecycleResult(tenant, as_of, start, rules, source, stages, history, monthly,
                               counts, notes)

    def _write(self, r: LifecycleResult) -> None:
        day = r.as_of.isoformat()
        meta = {"caifu.as_of": day, "caifu.history_start": r.history_start.isoformat(),
                "caifu.rules": json.dumps(r.rules.model_dump(), sort_keys=True)}
        moved = flows.customer_flows(r.transitions, r.flow_start, r.as_of)
        moved = moved.add_column(1, "from_date", pa.array([r.flow_start] * moved.num_rows,
                                                          pa.date32()))
        meta["caifu.flow_start"] = r.flow_start.isoformat()
        for table, data in ((STAGE_TABLE, r.stages), (TRANSITION_TABLE, r.transitions),
                            (FLOW_TABLE, moved)):
            stamped = data.add_column(0, "as_of", pa.array([r.as_of] * data.num_rows,
                                                           pa.date32()))
            with self.c.lock(r.tenant, table):
                self.c.lake.write_snapshot(r.tenant, table, stamped, day, meta)


def _history_start(s: EngineSession, inputs: ProfileInputs, offset: int) -> dt.date | None:
    """The first local business date of any trade, fund transaction or cash flow."""
    firsts: list[dt.date] = []
    for t, column in ((inputs.trades, "trade_date"), (inputs.fund_transactions, "txn_date"),
                      (inputs.cash_flows, "flow_time")):
        if t is None:
            continue
        value = s.to_arrow(t.aggregate(d=t[column].min()))["d"][0].as_py()
        if isinstance(value, dt.datetime):
            value = (value + dt.timedelta(hours=offset)).date()
        if value is not None:
            firsts.append(value)
    return min(firsts) if firsts else None
