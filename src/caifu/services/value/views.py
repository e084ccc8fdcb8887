"""What the API shows of customer value and fund redemption — always within the caller's
scope: per-customer rows only for customers he may see, roll-ups over those same customers
(a branch manager's efficiency by advisor is his branch's; governed metrics), redemption
answers as aggregates (no customer ids: metrics over the study's rows, and what the job
stored of the rest), the reassurance list per scope.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from caifu.analytics.redemption import Period
from caifu.analytics.value import ROLLUPS
from caifu.core.errors import ConfigError, NotFoundError, PermissionDeniedError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.platform import access
from caifu.services.platform.jobs import Jobs, plain
from caifu.services.value import figures
from caifu.services.value.customer_value import VALUE_TABLE
from caifu.services.value.redemption import TASK_TABLE

FUNDS_SHOWN = 50  # question 1's funds in the answer, by redeemed amount


def _latest(c: Container, tenant: str, table: str, what: str, how: str) -> pa.Table:
    found = c.lake.latest_snapshot(tenant, table)
    if found is None:
        raise NotFoundError(f"no {what} yet: {how}")
    return found


def _in_scope(c: Container, p: Principal, table: pa.Table) -> pa.Table:
    allowed = access.visible_ids(c, p)
    if allowed is None:
        return table
    return table.filter(pc.is_in(table["customer_id"], pa.array(sorted(allowed), pa.string())))


def _values(c: Container, p: Principal) -> pa.Table:
    tenant = access.tenant_of(p)
    return _in_scope(c, p, _latest(c, tenant, VALUE_TABLE, "customer value",
                                   "POST /v1/jobs {\"kind\": \"value\"}"))


def customer_values(c: Container, p: Principal, sort: str, limit: int, offset: int
                    ) -> dict[str, Any]:
    """Per-customer CLV, costs and efficiency, highest ``sort`` first, a page."""
    if sort not in ("clv", "efficiency", "p_alive", "revenue_window"):
        raise ConfigError(f"sort: one of clv, efficiency, p_alive, revenue_window, not {sort!r}")
    t = _values(c, p)
    t = t.sort_by([(sort, "descending"), ("customer_id", "ascending")])
    as_of = t["as_of"][0].as_py().isoformat() if t.num_rows else None
    return {"as_of": as_of, "total": t.num_rows, "limit": limit, "offset": offset,
            "items": plain(t.slice(offset, limit), rows=limit)}


def rollup(c: Container, p: Principal, by: str) -> dict[str, Any]:
    """CLV, acquisition and retention cost and efficiency per ``by`` in the newest value run,
    over the customers the caller may see — governed metrics (``figures.ROLLUP_FIELDS``) cut
    by the run's own attribution; a group's level-3 figures are withheld (null,
    ``suppressed``) when fewer than 10 customers are behind it."""
    if by not in ROLLUPS:
        raise ConfigError(f"by: one of {', '.join(ROLLUPS)}, not {by!r}")
    tenant = access.tenant_of(p)
    as_of = figures.value_run_date(c, tenant)
    if as_of is None:
        raise NotFoundError("no customer value yet: POST /v1/jobs {\"kind\": \"value\"}")
    f = figures.value_figures(c, p, as_of, [by])
    return {"by": by, "customers": f.totals["customers"] if f.totals else 0,
            "as_of": as_of.isoformat(), "totals": plain(f.totals) if f.totals else None,
            "items": plain(f.rollups[by], rows=100_000), "metrics": f.metrics}


def redemption_answers(c: Container, p: Principal) -> dict[str, Any]:
    """The newest redemption job's answers: the figures of questions 1–3 from the metric
    layer over the study's rows in the lake (``figures.study_figures``), beside what no
    metric says — the numeric features' rank statistics and the redemption waves — as the job
    stored them."""
    tenant = access.tenant_of(p)
    if access.visible_ids(c, p) is not None:
        raise PermissionDeniedError(f"a {p.role} may not see the tenant-wide redemption "
                                    "answers; the reassurance list shows his customers")
    job = Jobs(c).latest_result(tenant, "redemption")
    if job is None:
        raise NotFoundError("no redemption answers yet: POST /v1/jobs {\"kind\": "
                            "\"redemption\"} and follow the job")
    result = job["result"]
    period = Period(dt.date.fromisoformat(result["period"]["start"]),
                    dt.date.fromisoformat(result["period"]["end"]))
    f = figures.study_figures(c, p, period)
    notes = list(result.get("notes") or [])
    if not f.stored:
        notes.append(f"the lake holds no study rows of {period.start} … {period.end} (a later "
                     "study ending that day replaced them, or the job ran before caifu "
                     "stored them): submit the job again for its figures")
    return {"job_id": job["job_id"], "finished_at": job["finished_at"], **result,
            "funds": plain(f.funds[:FUNDS_SHOWN], rows=FUNDS_SHOWN),
            "comparison": plain(figures.with_numeric(f, result.get("comparison") or [])),
            "holding_summary": plain(f.holding),
            "notes": notes, "metrics": f.metrics}


def reassurance(c: Container, p: Principal, limit: int, offset: int) -> dict[str, Any]:
    """Fund holders to reassure before they redeem, ranked, with the reasons — an advisor's
    own, a branch's, or the tenant's."""
    tenant = access.tenant_of(p)
    t = _in_scope(c, p, _latest(c, tenant, TASK_TABLE, "reassurance list",
                                "POST /v1/jobs {\"kind\": \"redemption\"}"))
    t = t.sort_by([("rank", "ascending")]).drop_columns(["reasons_json"])
    return {"total": t.num_rows, "limit": limit, "offset": offset,
            "items": plain(t.slice(offset, limit), rows=limit)}
