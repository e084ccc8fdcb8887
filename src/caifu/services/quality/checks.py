"""The thresholds as they apply to a tenant, and checking them: after each load (the loaded
table) and on demand (every table). A breach raises an alert, or refreshes the open one; a
later check that passes resolves it.

Thresholds are ``caifu/data/quality/default.yaml`` with the tenant's
``quality/<tenant>.yaml`` in the workspace laid over it (only what differs).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from caifu.adapters.sor.repos import quality as repo
from caifu.core.errors import ConfigError
from caifu.data.contracts import Registry, registry
from caifu.pipelines.quality import (
    Batch,
    Check,
    LoadProfile,
    Thresholds,
    check_table,
    parse_thresholds,
)
from caifu.services.container import Container
from caifu.services.platform.tenant_files import TenantFile, load_yaml
from caifu.services.platform.workspace import get_tenant

THRESHOLDS = TenantFile("quality")


_PACKAGED = "caifu/data/quality/default.yaml (packaged default)"


def packaged(contracts: Registry | None = None) -> Thresholds:
    """The packaged thresholds alone (the business date columns are these, per tenant too)."""
    return parse_thresholds(load_yaml(THRESHOLDS.default_text(), _PACKAGED), _PACKAGED,
                            contracts or registry())


def thresholds(c: Container, tenant: str, contracts: Registry | None = None) -> Thresholds:
    """The tenant's thresholds; ``ConfigError`` names the file and field of a bad one."""
    path = THRESHOLDS.path(c, tenant)
    if not path.is_file():
        return packaged(contracts)
    tenant_doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return parse_thresholds(load_yaml(THRESHOLDS.default_text(), _PACKAGED), _PACKAGED,
                            contracts or registry(), {} if tenant_doc is None else tenant_doc,
                            str(path))


def today(c: Container, tenant: str) -> dt.date:
    """The tenant's calendar date now."""
    tz = ZoneInfo(get_tenant(c, tenant).timezone)
    return c.clock.now().replace(tzinfo=dt.UTC).astimezone(tz).date()


@dataclass
class CheckRun:
    """What one run of the checks did: each check with its outcome (raised, still open,
    resolved, ok)."""

    today: dt.date
    outcomes: list[tuple[Check, str]] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for _, o in self.outcomes if o == outcome)

    def plain(self) -> dict[str, Any]:
        return {"today": self.today.isoformat(),
                "checks": [{"table": ch.table, "rule": ch.rule, "subject": ch.subject,
                            "breached": ch.breached, "observed": ch.observed,
                            "threshold": ch.threshold, "batch_id": ch.batch_id,
                            "detail": ch.detail, "outcome": o} for ch, o in self.outcomes]}


def _batch(row: dict[str, Any]) -> Batch:
    profile = None
    if row["rows_loaded"] is not None:
        profile = LoadProfile(rows=int(row["rows_loaded"]), nulls=json.loads(row["nulls_json"]),
                              date_column=row["date_column"], oldest=row["oldest_date"],
                              newest=row["newest_date"])
    return Batch(row["batch_id"], int(row["rows_in"]), int(row["quarantined"]), profile)


def check(c: Container, tenant: str, tables: Iterable[str] | None = None, *,
          by: str = "check", rules: Thresholds | None = None,
          contracts: Registry | None = None) -> CheckRun:
    """Judge the thresholds for ``tables`` (default: every table) and store the alerts, in
    one transaction. ``by``: the batch whose load asked, or ``"check"``."""
    contracts = contracts or registry()
    rules = rules or thresholds(c, tenant, contracts)
    run = CheckRun(today(c, tenant))
    names = list(tables) if tables is not None else [t.name for t in contracts]
    for name in names:
        if name not in contracts:
            raise ConfigError(f"table: no such table {name!r}; tables: "
                              + ", ".join(t.name for t in contracts))
    now = c.clock.now()
    with c.engine.begin() as conn:
        newest = repo.newest_dates(conn, tenant)
        for name in names:
            batches = [_batch(r) for r in repo.latest_batches(conn, tenant, name)]
            latest = batches[0] if batches else None
            previous = batches[1] if len(batches) > 1 else None
            for ch in check_table(contracts[name], rules.of(name), latest, previous,
                                  newest.get(name, {}).get("newest_date"), run.today):
                outcome = repo.apply(conn, tenant, ch.table, ch.rule, ch.subject,
                                     breached=ch.breached, observed=ch.observed,
                                     threshold=ch.threshold, batch_id=ch.batch_id,
                                     detail=ch.detail, now=now, by=by)
                run.outcomes.append((ch, outcome))
    return run
