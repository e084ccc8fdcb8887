"""The demo job's workspace: its own folder and SQLite, never a real deployment's."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.core.errors import WorkspaceError
from caifu.services.container import Container, default_sor_url
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings

if TYPE_CHECKING:
    from caifu.services.profiles.cards import CardsResult

MARKER = ".caifu-demo"
TENANT = "demo"


def prepare_workspace(root: Path, settings: Settings) -> Container:
    """A new, empty demo workspace at ``root``; only ever replaces an earlier demo workspace.

    The demo always uses its own SQLite system of record, whatever CAIFU_SOR_URL says, so it
    can never write into a real deployment's database.
    """
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise WorkspaceError(
                f"{root} exists and is not a demo workspace; the demo replaces its workspace, "
                "so give it a folder of its own (--workspace)")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("created by `caifu demo`; deleted and rebuilt by the next one\n")
    c = init_workspace(root, settings, sor_url=default_sor_url(root.resolve()))
    create_tenant(c, TENANT, "演示证券股份有限公司")
    return c


# Segments an operations analyst would start from; the build records their sizes.
DEMO_SEGMENTS = (
    ("rich_sleepers", "沉睡高净值客户", "tag:dormant and aum >= 100000"),
    ("chinext_leads", "创业板开通线索", "(tag:interest_chinext or tag:intent_open_permission) "
     "and not chinext_opened and c_level >= 'C3'"),
    ("fund_reassurance", "需安抚的基金持有人", "fund_value > 0 and (tag:intent_redeem or "
     "tag:loss_anxiety or tag:recent_loss)"),
    ("idle_depositors", "入金未交易", "tag:deposited_not_traded"),
)


def create_demo_segments(c: Container) -> None:
    from caifu.services.profiles.segments import Segments

    segments = Segments(c)
    for segment_id, name, expression in DEMO_SEGMENTS:
        segments.save(TENANT, segment_id, name, expression)


INGEST_TOTALS = ("rows_read", "rows_loaded", "rows_quarantined", "duplicate_rows")


@dataclass(frozen=True)
class IngestTotals:
    """The demo's ingest totals (metric → rows) and the metrics they came from."""

    rows: dict[str, int]
    metrics: list[dict[str, Any]]


def ingest_totals(c: Container, since: dt.date, tenant: str = TENANT) -> IngestTotals:
    """Rows read, loaded, quarantined and skipped as duplicates by the ingest batches from
    ``since`` (the tenant's date when the demo started) to today: the metric layer's
    ingest_batches metrics. The demo's workspace is new on every run, so these are its own
    batches."""
    from caifu.core.identity import Principal
    from caifu.services.metrics.query import answers
    from caifu.services.quality.checks import today

    got = answers(c, Principal(tenant, "demo", "ops"), list(INGEST_TOTALS), grain="all",
                  start=since, end=today(c, tenant))
    return IngestTotals({a.metric.name: int(a.rows[0]["value"] or 0) if a.rows else 0
                         for a in got}, [a.cited() for a in got])


def build_cards(c: Container, progress: Callable[[str], None] | None = None) -> CardsResult:
    """The customer cards the 360 and the sidebar show — after scores, value, lifecycle and
    the redemption analysis, whose lake snapshots they read."""
    from caifu.services.profiles.cards import Cards

    return Cards(c, progress).build(TENANT)


def record_redemption_answers(c: Container) -> dict[str, Any]:
    """Run the redemption job once, as the service would: the API's answers and the
    advisors' reassurance tasks (``GET /v1/value/redemption``, ``…/reassurance``)."""
    from caifu.services.platform.jobs import Jobs

    jobs = Jobs(c)
    job = jobs.submit(TENANT, "redemption", {}, "demo")
    while jobs.run_next() is not None:  # the demo's own queue: only this job
        pass
    return jobs.get(TENANT, job["job_id"])


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    role: str
    password: str
    sees: str  # what this role may see, for the printout


def load_risk_reference(c: Container, tenant: str = TENANT) -> dict[str, int]:
    """The demo tenant's company aliases (real former names of companies in the A-share
    list) and relations (real unlisted shareholders), as an operator would load them."""
    from importlib.resources import as_file, files

    from caifu.core.identity import Principal
    from caifu.services.risk.reference import load

    loaded = {}
    for table in ("aliases", "relations"):
        with as_file(files("caifu.data").joinpath("risk", f"demo_{table}.csv")) as path:
            r = load(c, Principal(tenant, "demo", "ops"), table, path)
        if not r.loaded:
            raise AssertionError(f"demo {table}: {r.rejected}")  # shipped files are checked
        loaded[table] = r.added + r.updated
    return loaded


def create_demo_users(c: Container, tenant: str = TENANT) -> list[DemoUser]:
    """One console user per role, with fresh random passwords (printed by `caifu demo
    --serve`; the demo workspace is rebuilt on every run). The branch manager gets the branch
    with most customers, the advisor the advisor with most customers."""
    from caifu.services.platform import users

    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        branch = conn.execute(select(t.c.branch_id).where(t.c.tenant_id == tenant)
                              .group_by(t.c.branch_id)
                              .order_by(func.count().desc(), t.c.branch_id).limit(1)).scalar_one()
        advisor = conn.execute(select(t.c.advisor_id).where(t.c.tenant_id == tenant,
                                                            t.c.advisor_id.is_not(None))
                               .group_by(t.c.advisor_id)
                               .order_by(func.count().desc(), t.c.advisor_id).limit(1)).scalar_one()
    plan = [("demo.admin", "tenant_admin", {}, "every customer, masked"),
            ("demo.ops", "ops", {}, "every customer, masked"),
            ("demo.compliance", "compliance", {}, "every customer; may unmask with a reason"),
            ("demo.branch", "branch_manager", {"branch_id": branch},
             f"customers of branch {branch}"),
            ("demo.advisor", "advisor", {"advisor_id": advisor},
             f"customers of advisor {advisor} and those following him on WeCom"),
            ("demo.platform", "platform_admin", {}, "no customer data (tenants, keys)")]
    made = []
    for user_id, role, extra, sees in plan:
        password = secrets.token_urlsafe(12)
        users.add_user(c, user_id, role, password,
                       tenant=None if role == "platform_admin" else tenant, **extra)
        made.append(DemoUser(user_id, role, password, sees))
    return made
