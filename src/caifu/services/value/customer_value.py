"""Customer value: CLV, acquisition and retention cost, efficiency per customer and rolled up.

    caifu value -t demo [--as-of 2026-10-30] [--by channel|campaign|advisor|branch|cohort]

1. read the tenant's configuration — ``value/<tenant>.yaml`` in the workspace, else the
   packaged ``caifu/data/value/default.yaml`` (``caifu value init`` copies it to edit);
2. read master data and facts onto the engine (``Build.load_inputs``), plus campaigns (SoR)
   and campaign touches (lake);
3. build the transaction log and costs (``analytics.value``, Ibis), fit BG/NBD and
   Gamma-Gamma with calibration end = as-of and forecast CLV (numpy) — a fit that does not
   converge is reported in the notes with its report, never a crash;
4. two views of the fit: the lifetime view (``clv.horizon_months``, ten years by default)
   and the payback view (``clv.payback_months``, the next year), each with its retention
   run rate charged over its horizon;
5. write the lifetime view's per-customer table to the lake table ``customer_value`` and the
   payback view's to ``customer_value_payback`` (one snapshot per as-of date, same columns)
   and return the fits, both views' distributions, totals and roll-ups. What the CLI, the
   API and the report show of a run are metrics over these tables (``value_runs.yaml``,
   ``services/value/figures``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from caifu.adapters.engines.session import EngineSession
from caifu.adapters.sor.repos import ingest as ingest_repo
from caifu.analytics import efficiency as eff
from caifu.analytics import value as an
from caifu.analytics.clv import BgNbdFit, GammaGammaFit
from caifu.analytics.clv_data import DAYS_PER_UNIT
from caifu.analytics.value_config import ValueConfig, parse_value_config
from caifu.core.errors import ConfigError
from caifu.core.money import yuan
from caifu.data.contracts import registry
from caifu.data.contracts.arrow import contract_schema
from caifu.data.contracts.tables import CHANNELS
from caifu.services.container import Container
from caifu.services.platform.tenant_files import TenantFile, load_yaml
from caifu.services.platform.workspace import get_tenant
from caifu.services.profiles.build import Build, utc_offset_hours

VALUE_TABLE = "customer_value"
PAYBACK_TABLE = "customer_value_payback"


VALUE_FILE = TenantFile("value")
default_text = VALUE_FILE.default_text
config_path = VALUE_FILE.path
init_config = VALUE_FILE.init


def load_config(c: Container, tenant: str) -> tuple[ValueConfig, str]:
    """The tenant's configuration and where it came from."""
    text, source = VALUE_FILE.read(c, tenant)
    return parse_value_config(load_yaml(text, source), source), source


@dataclass
class ValueView:
    """CLV, costs and efficiency over one horizon: ``lifetime`` (``clv.horizon_months``, the
    lake table and the default) or ``payback`` (``clv.payback_months``)."""

    name: str
    months: int
    per_customer: pa.Table  # efficiency.CUSTOMER_VALUE_SCHEMA
    clv: dict[str, float]  # distribution over customers not closed
    efficiency: dict[str, float]  # distribution over all customers
    totals: dict[str, float | int]
    rollups: dict[str, pa.Table]


@dataclass
class CustomerValueResult:
    tenant: str
    as_of: dt.date
    config: ValueConfig
    config_source: str
    history_start: dt.date | None  # birth of accounts opened before it
    bgnbd: BgNbdFit | None
    gamma_gamma: GammaGammaFit | None
    customers: int  # opened by as_of: one row each in customer_value
    per_customer: pa.Table  # the customer_value rows (efficiency.CUSTOMER_VALUE_SCHEMA)
    transaction_days: int  # customer-days with revenue in the log
    clv: dict[str, float]  # distribution of CLV over customers not closed
    efficiency: dict[str, float]  # distribution of efficiency over all customers
    totals: dict[str, float | int]  # the whole base as one roll-up row
    rollups: dict[str, pa.Table]  # by channel, campaign, advisor, branch, cohort
    campaigns: pa.Table  # per campaign: role, spend, touch cost, customers, share each
    unattributed_spend: float  # campaign spend nobody carries (no conversions / targets)
    version: int | None = None  # Delta version of the customer_value write
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    payback: ValueView | None = None  # the same customers over clv.payback_months

    @property
    def lifetime(self) -> ValueView:
        """The default view (the fields above) as a ValueView."""
        return ValueView("lifetime", self.config.clv.horizon_months, self.per_customer,
                         self.clv, self.efficiency, self.totals, self.rollups)

    @property
    def views(self) -> list[ValueView]:
        return [self.lifetime] + ([self.payback] if self.payback is not None else [])


class CustomerValue:
    def __init__(self, container: Container) -> None:
        self.c = container

    def run(self, tenant: str, as_of: dt.date | None = None, *, engine: str = "duckdb",
            write: bool = True) -> CustomerValueResult:
        t0 = time.perf_counter()
        tz = get_tenant(self.c, tenant).timezone
        config, source = load_config(self.c, tenant)
        with self.c.lock(tenant, VALUE_TABLE), \
                self.c.job_session(engine, f"value-{tenant}") as s:
            result = self._run(s, tenant, tz, as_of, config, source, write)
        result.seconds = round(time.perf_counter() - t0, 3)
        return result

    def _campaign_inputs(self, s: EngineSession, tenant: str) -> tuple[ir.Table, ir.Table | None]:
        contract = registry()["campaigns"]
        with self.c.engine.connect() as conn:
            data = ingest_repo.rows(conn, tenant, contract)
        campaigns = s.from_arrow(f"{tenant}_campaigns",
                                 data if data is not None else contract_schema(contract)
                                 .empty_table())
        files = self.c.lake.files(tenant, "campaign_touches")
        touches = s.read_parquet(f"{tenant}_campaign_touches", files) if files else None
        return campaigns, touches

    def _run(self, s: EngineSession, tenant: str, tz: str, as_of: dt.date | None,
             config: ValueConfig, source: str, write: bool) -> CustomerValueResult:
        build = Build(self.c)
        inputs = build.load_inputs(s, tenant)
        if as_of is None:
            as_of = build.data_as_of(s, inputs, tz) or dt.datetime.now(ZoneInfo(tz)).date()
        offset = utc_offset_hours(tz, as_of)
        campaigns, touches = self._campaign_inputs(s, tenant)
        notes: list[str] = []
        missing = [ch for ch in CHANNELS if ch not in config.acquisition.channel_costs]
        if missing:
            notes.append(f"{source}: no acquisition cost for channel(s) {', '.join(missing)}; "
                         "their customers' channel cost is 0")

        base_expr = an.customer_base(inputs.customers, as_of, config.cohort)
        base = s.to_arrow(base_expr)
        if base.num_rows == 0:
            raise ConfigError(f"tenant {tenant!r} has no customers opened by {as_of}")
        log_expr = an.revenue_log(inputs.trades, inputs.fund_transactions, inputs.securities,
                                  config.revenue, as_of, config.clv.history_start)
        log = s.to_arrow(log_expr) if log_expr is not None else None
        history_start = config.clv.history_start
        if history_start is None and log is not None and log.num_rows:
            history_start = pc.min(log["date"]).as_py()
        if log is None or log.num_rows == 0:
            notes.append(f"no trade or fund-purchase revenue by {as_of}: CLV is 0")

        est = an.estimate_clv(base.sort_by("customer_id"), log, config.clv, as_of, history_start)
        notes += est.notes
        costs = s.to_arrow(an.customer_costs(base_expr, log_expr, campaigns, touches, config,
                                             as_of, offset))
        unit_days, window = DAYS_PER_UNIT[config.clv.time_unit], config.retention.window_months
        table = eff.customer_value_table(as_of, base, costs, est, unit_days, window)
        payback_table = eff.customer_value_table(as_of, base, costs, est.payback_view(),
                                                 unit_days, window)
        per_campaign = s.to_arrow(an.campaign_costs(base_expr, campaigns, touches, config, as_of,
                                                    offset)).sort_by("campaign_id")
        unattributed = sum(r["spend"] + (r["touch_cost"] if r["role"] == "acquisition" else 0)
                           for r in per_campaign.to_pylist() if not r["customers"])
        if unattributed:
            notes.append(f"{yuan(unattributed)} yuan of campaign spend is carried by nobody "
                         "(campaigns without conversions or targeted customers by as-of)")

        version = None
        if write:
            meta = {"caifu.as_of": as_of.isoformat(), "caifu.value_config": source,
                    "caifu.clv_converged": str(bool(
                        est.bgnbd and est.bgnbd.report.converged and est.gamma_gamma
                        and est.gamma_gamma.report.converged)).lower()}
            version = self.c.lake.write_snapshot(tenant, VALUE_TABLE, table, as_of.isoformat(),
                                                 meta)
            self.c.lake.write_snapshot(tenant, PAYBACK_TABLE, payback_table, as_of.isoformat(),
                                       {**meta, "caifu.view": "payback"})
        life = _view(s, f"{tenant}_customer_value", "lifetime", config.clv.horizon_months,
                     table)
        payback = _view(s, f"{tenant}_customer_value_payback", "payback",
                        config.clv.payback_months, payback_table)
        return CustomerValueResult(
            tenant, as_of, config, source, history_start, est.bgnbd, est.gamma_gamma,
            table.num_rows, table, log.num_rows if log is not None else 0,
            life.clv, life.efficiency, life.totals, life.rollups, per_campaign,
            float(unattributed), version, notes, payback=payback)


def _view(s: EngineSession, name: str, view: str, months: int, table: pa.Table) -> ValueView:
    """Roll-ups, totals and distributions of one view's per-customer table."""
    t = s.from_arrow(name, table)
    rollups = {by: s.to_arrow(eff.rollup(t, by)) for by in an.ROLLUPS}
    whole = s.to_arrow(eff.totals(t)).to_pylist()[0]
    whole.pop("group")
    alive = pc.not_equal(table["clv_basis"], "closed")
    return ValueView(
        view, months, table,
        eff.distribution(table.filter(alive)["clv"].cast(pa.float64()).to_numpy()),
        eff.distribution(table["efficiency"].cast(pa.float64()).to_numpy()),
        {k: (float(v) if not isinstance(v, int) else v) for k, v in whole.items()}, rollups)


def latest(c: Container, tenant: str) -> pa.Table | None:
    """The newest ``customer_value`` snapshot (for the value report), or None."""
    return c.lake.latest_snapshot(tenant, VALUE_TABLE)
