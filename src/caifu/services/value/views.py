"""What the API shows of customer value and fund redemption — always within the caller's
scope: per-customer rows only for customers he may see, roll-ups over those same customers
(a branch manager's efficiency by advisor is his branch's), redemption answers as the
aggregates the redemption job stored (no customer ids), the reassurance list per scope.
"""

from __future__ import annotations

from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from caifu.analytics import efficiency as eff
from caifu.analytics.value import ROLLUPS
from caifu.core.errors import ConfigError, NotFoundError, PermissionDeniedError
from caifu.core.identity import Principal
from caifu.services.container import Container
from caifu.services.platform import access
from caifu.services.platform.jobs import Jobs, plain
from caifu.services.value.customer_value import VALUE_TABLE
from caifu.services.value.redemption import TASK_TABLE


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
    """CLV, acquisition and retention cost and efficiency per ``by``, over the customers the
    caller may see."""
    if by not in ROLLUPS:
        raise ConfigError(f"by: one of {', '.join(ROLLUPS)}, not {by!r}")
    t = _values(c, p)
    con = ibis.duckdb.connect()
    try:
        view = ibis.memtable(t)
        groups = con.to_pyarrow(eff.rollup(view, by)) if t.num_rows else None
        whole = con.to_pyarrow(eff.totals(view)).to_pylist() if t.num_rows else []
    finally:
        con.disconnect()
    return {"by": by, "customers": t.num_rows,
            "as_of": t["as_of"][0].as_py().isoformat() if t.num_rows else None,
            "totals": plain(whole[0]) if whole else None,
            "items": plain(groups, rows=100_000) if groups is not None else []}


def redemption_answers(c: Container, p: Principal) -> dict[str, Any]:
    """The four answers of the newest redemption job (aggregates only)."""
    tenant = access.tenant_of(p)
    if access.visible_ids(c, p) is not None:
        raise PermissionDeniedError(f"a {p.role} may not see the tenant-wide redemption "
                                    "answers; the reassurance list shows his customers")
    job = Jobs(c).latest_result(tenant, "redemption")
    if job is None:
        raise NotFoundError("no redemption answers yet: POST /v1/jobs {\"kind\": "
                            "\"redemption\"} and follow the job")
    return {"job_id": job["job_id"], "finished_at": job["finished_at"], **job["result"]}


def reassurance(c: Container, p: Principal, limit: int, offset: int) -> dict[str, Any]:
    """Fund holders to reassure before they redeem, ranked, with the reasons — an advisor's
    own, a branch's, or the tenant's."""
    tenant = access.tenant_of(p)
    t = _in_scope(c, p, _latest(c, tenant, TASK_TABLE, "reassurance list",
                                "POST /v1/jobs {\"kind\": \"redemption\"}"))
    t = t.sort_by([("rank", "ascending")]).drop_columns(["reasons_json"])
    return {"total": t.num_rows, "limit": limit, "offset": offset,
            "items": plain(t.slice(offset, limit), rows=limit)}
