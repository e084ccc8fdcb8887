"""Who may see which customer: the scope rules, applied in the service layer to every query.

    ops, tenant_admin, compliance   every customer of their tenant
    branch_manager                  customers whose branch is his
    advisor                         customers assigned to him, or following him on WeCom
                                    (an active follow: not removed)
    platform_admin                  no customer data

What each role may *do* (call which route, unmask, see storage-only customers) is the
action table of ``core/roles``; this module is about *which* customers.

A customer outside the caller's scope, of another tenant, or missing is the same answer —
``NotFoundError`` — so an id's existence is never revealed. Unmasking needs a role that may
unmask (compliance) and a reason, and is audited before the read (``services/customers``).

``search`` finds customers by masked keys (anyone, within his scope) or by unmasked ones
(full mobile, ID number, name: compliance with a reason, audited); results are always masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from caifu.adapters.sor.repos import customer_scope as scope_repo
from caifu.core import roles
from caifu.core.errors import ConfigError, NotFoundError, PermissionDeniedError
from caifu.core.identity import SCOPE, Principal
from caifu.services.container import Container
from caifu.services.profiles.customers import Unmask, customer_view, masked_row


def scope_of(p: Principal) -> scope_repo.Scope:
    """The customers ``p`` may see, as the repository's ``Scope``."""
    return scope_repo.Scope(
        tenant=p.tenant_id, kind=SCOPE[p.role], branch_id=p.branch_id, advisor_id=p.advisor_id,
        include_restricted=roles.may(p.role, "customers.restricted"))  # services/privacy


def visible(c: Container, p: Principal, customer_id: str) -> bool:
    with c.engine.connect() as conn:
        return scope_repo.in_scope(conn, scope_of(p), customer_id)


def customer_360(c: Container, p: Principal, customer_id: str, *, unmask: bool = False,
                 reason: str = "") -> dict[str, Any]:
    """The customer's master data (masked unless unmasked), profile, tags with evidence and
    tag history — if ``p`` may see the customer."""
    if not visible(c, p, customer_id):
        raise NotFoundError(f"no customer {customer_id!r}")
    who = None
    if unmask:
        if not p.can_unmask:
            raise PermissionDeniedError(f"a {p.role} may not unmask personal data")
        who = Unmask(p.subject, reason)
    assert p.tenant_id is not None
    return customer_view(c, p.tenant_id, customer_id, who)


def visible_ids(c: Container, p: Principal) -> set[str] | None:
    """Every customer id ``p`` may see, or None when that is the whole tenant (no filter
    needed); an advisor's or a branch's customers are a bounded set."""
    if SCOPE[p.role] == "tenant" and p.tenant_id is not None:
        return None
    with c.engine.connect() as conn:
        return scope_repo.ids_in_scope(conn, scope_of(p))


def tenant_of(p: Principal) -> str:
    """The tenant whose data ``p`` works on; a platform_admin has none."""
    if p.tenant_id is None or SCOPE[p.role] == "none":
        raise PermissionDeniedError(f"a {p.role} sees no tenant's customer data")
    return p.tenant_id


def segment_members(c: Container, p: Principal, segment_id: str, limit: int, offset: int
                    ) -> dict[str, Any]:
    """A segment's members on its newest date, only those ``p`` may see, a page at a time."""
    from caifu.services.profiles.segments import Segments

    tenant = tenant_of(p)
    segments = Segments(c)
    try:
        segments.get(tenant, segment_id)
    except ConfigError:
        raise NotFoundError(f"no segment {segment_id!r}") from None
    day, members = segments.members(tenant, segment_id)
    ids = members["customer_id"].to_pylist()
    allowed = visible_ids(c, p)
    if allowed is not None:
        ids = [i for i in ids if i in allowed]
    return {"segment_id": segment_id, "as_of": day.isoformat(), "total": len(ids),
            "limit": limit, "offset": offset, "items": ids[offset:offset + limit]}


# --- customer search -------------------------------------------------------------------------

UNMASKED_KEYS = ("mobile", "id_number", "name")  # level-3 values in clear: compliance only
SEARCH_LIMIT = 1000
SEARCH_SHOWN = ("customer_id", "name", "gender", "mobile", "branch_id", "advisor_id", "channel",
                "opened_on", "status")
_DIGITS4, _MOBILE_HEAD = re.compile(r"\d{4}", re.ASCII), re.compile(r"1[3-9]\d", re.ASCII)


@dataclass(frozen=True)
class SearchQuery:
    """What to search by. Masked keys (anyone in scope): ``customer_id`` (exact),
    ``customer_id_prefix``, ``mobile_last4`` (with ``mobile_first3`` optionally),
    ``branch_id``, ``advisor_id``, ``tag_id``, ``stage`` (lifecycle stage on the customer's
    card). Unmasked keys (``UNMASKED_KEYS``, exact match): the full ``mobile``, the full
    ``id_number``, the ``name``."""

    customer_id: str | None = None
    customer_id_prefix: str | None = None
    mobile_last4: str | None = None
    mobile_first3: str | None = None
    branch_id: str | None = None
    advisor_id: str | None = None
    tag_id: str | None = None
    stage: str | None = None
    mobile: str | None = None
    id_number: str | None = None
    name: str | None = None

    def used(self) -> list[str]:
        return [k for k, v in self.__dict__.items() if v is not None]

    def unmasked(self) -> list[str]:
        return [k for k in UNMASKED_KEYS if getattr(self, k) is not None]


class SearchQueryError(ConfigError):
    """Bad search input, field by field (the API answers 422 naming each field)."""

    code = "invalid.search"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {p}" for f, p in problems))
        self.problems = problems


def query_problems(q: SearchQuery, limit: int, offset: int) -> list[tuple[str, str]]:
    from caifu.analytics.lifecycle import REPORT_ORDER
    from caifu.core.ids import validate_mobile

    out: list[tuple[str, str]] = []
    if not q.used():
        out.append(("query", "give at least one search key: " + ", ".join(
            SearchQuery.__dataclass_fields__)))
    for k in q.used():
        if not str(getattr(q, k)).strip():
            out.append((k, "empty"))
    if q.mobile_last4 is not None and not _DIGITS4.fullmatch(q.mobile_last4):
        out.append(("mobile_last4", "the last 4 digits of a mobile number"))
    if q.mobile_first3 is not None and (q.mobile_last4 is None
                                        or not _MOBILE_HEAD.fullmatch(q.mobile_first3)):
        out.append(("mobile_first3", "the first 3 digits (1[3-9]x), only with mobile_last4"))
    if q.mobile is not None and validate_mobile(q.mobile.replace(" ", "")) is not None:
        out.append(("mobile", "not a mainland mobile number (1[3-9] + 9 digits, +86 allowed)"))
    if q.stage is not None and q.stage not in REPORT_ORDER:
        out.append(("stage", f"unknown lifecycle stage; one of {', '.join(REPORT_ORDER)}"))
    if not 1 <= limit <= SEARCH_LIMIT:
        out.append(("limit", f"between 1 and {SEARCH_LIMIT}"))
    if offset < 0:
        out.append(("offset", "0 or more"))
    return out


def _keys(q: SearchQuery) -> dict[str, Any]:
    """The search keys as the repository takes them: trimmed, a mobile in each stored form
    (E.164, 86… or the bare 11 digits), an ID number in each case."""
    from caifu.core.ids import normalise_mobile

    keys: dict[str, Any] = {k: str(getattr(q, k)).strip() for k in q.used()
                            if k not in {"mobile", "id_number"}}
    if q.mobile is not None:
        n = normalise_mobile(q.mobile)[3:]
        keys["mobiles"] = [f"+86{n}", f"86{n}", n]
    if q.id_number is not None:
        v = q.id_number.strip()
        keys["id_numbers"] = sorted({v, v.upper(), v.lower()})
    return keys


def search(c: Container, p: Principal, q: SearchQuery, *, reason: str = "", limit: int = 100,
           offset: int = 0) -> dict[str, Any]:
    """Customers matching every key of ``q`` that ``p`` may see, masked, a page at a time
    (ordered by customer id; ``total`` counts all matches).

    Unmasked keys need a role that may unmask and a reason. Such a search is audited
    (action ``search``: the keys searched on — never their values — the reason, and the
    ids of the customers it returns) after the matching ids are found and before any of
    their data is read: a result that cannot be audited is never returned.
    """
    from caifu.services.compliance import audit

    tenant = tenant_of(p)
    problems = query_problems(q, limit, offset)
    if problems:
        raise SearchQueryError(problems)
    unmasked = q.unmasked()
    if unmasked and not p.can_unmask:
        raise PermissionDeniedError(f"a {p.role} may not search by {', '.join(unmasked)} "
                                    "(personal data in clear); search by masked keys instead")
    if unmasked and len(reason.strip()) < 4:
        raise SearchQueryError([("X-Caifu-Reason", "searching by " + ", ".join(unmasked)
                                 + " needs a reason (at least 4 characters), audited")])
    with c.engine.connect() as conn:
        total, ids = scope_repo.search_ids(conn, scope_of(p), _keys(q), limit, offset)
    if unmasked:
        audit.append(c, tenant, p.subject, "search", customer_ids=ids, fields=q.used(),
                     reason=reason)
    with c.engine.connect() as conn:
        rows = [masked_row(r) for r in scope_repo.search_rows(conn, tenant, ids, SEARCH_SHOWN)]
    return {"total": total, "limit": limit, "offset": offset, "items": rows}
