"""The counts the profile surfaces show — customers per tag, segment sizes, customers per
lifecycle stage and the flows between stages — answered by the metric layer for the caller.

    tag_holders(c, p)              tag_holders by tag, today (the tenant's date)
    segment_sizes(c, p)            segment_size by segment, on the newest build date
    lifecycle(c, p, as_of)         lifecycle_customers by stage, lifecycle_flow_customers by
                                   from/to stage, on a lifecycle run's date

Each returns the values keyed the way the surface shows them and the metrics it used (id,
version, definition hash), so a reader can trace every number (``docs/metrics.md``). The
caller's scope applies: an advisor's counts are his customers'; storage-only customers
count for nobody.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from caifu.adapters.sor.repos import profiles as repo
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.metrics.query import Answer, answer
from caifu.services.platform.access import tenant_of
from caifu.services.profiles.segments import MEMBER_TABLE
from caifu.services.quality.checks import today


@dataclass
class Figures:
    """Values by the dimension values of a cut (one key: the value itself, several: a tuple)
    and the metrics they came from."""

    values: dict[Any, int | None] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def get(self, key: Any) -> int | None:
        """A count: 0 where the metric has no row (nobody in the group), None where it is
        withheld (a level-3 group of fewer than 10 customers; these metrics read level-2
        columns, so only if a level is raised)."""
        return self.values.get(key, 0)


def counted(a: Answer) -> Figures:
    """The rows of a one-period answer by their dimension values."""
    by = a.query.by
    values = {(r[by[0]] if len(by) == 1 else tuple(r[d] for d in by)): r["value"]
              for r in a.rows}
    return Figures(values, [a.cited()])


def tag_holders(c: Container, p: Principal) -> Figures:
    """Customers holding each tag now (assignments not lapsed by the end of today)."""
    day = today(c, tenant_of(p))
    return counted(answer(c, p, "tag_holders", by=("tag",), grain="all", start=day, end=day))


def segment_sizes(c: Container, p: Principal) -> tuple[dt.date | None, Figures, set[str]]:
    """Each segment's members on the newest build date; that date (None before the first
    build that recorded members) and the segments that build sized (a segment created since,
    or one that no longer evaluated, has no size then)."""
    tenant = tenant_of(p)
    dates = c.lake.snapshot_dates(tenant, MEMBER_TABLE)
    day = dt.date.fromisoformat(dates[-1]) if dates else today(c, tenant)
    figures = counted(answer(c, p, "segment_size", by=("segment",), grain="all", start=day,
                             end=day))
    if not dates:
        return None, figures, set()
    with c.engine.connect() as conn:
        sized = repo.segments_sized_on(conn, tenant, day)
    return day, figures, sized


@dataclass
class LifecycleFigures:
    stages: Figures  # stage → customers
    flows: Figures  # (from stage, to stage) → customers


def lifecycle(c: Container, p: Principal, as_of: dt.date) -> LifecycleFigures:
    """Customers per stage and per (stage at the flows' start, stage on ``as_of``) in the
    lifecycle run of ``as_of`` (``services/profiles/lifecycle.py`` writes both tables)."""
    stages = answer(c, p, "lifecycle_customers", by=("lifecycle_run_stage",), grain="all",
                    start=as_of, end=as_of)
    flows = answer(c, p, "lifecycle_flow_customers", by=("flow_from_stage", "flow_to_stage"),
                   grain="all", start=as_of, end=as_of)
    return LifecycleFigures(counted(stages), counted(flows))
