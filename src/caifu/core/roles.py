"""Who may do what: the six roles and one table of named actions → the roles allowed.

Every route declares its action (``api/deps.require``); the service layer reads the same table
where a rule is about a role (``core/identity.CAN_UNMASK``, storage-only customers in
``services/platform/access``). *Which* customers a permitted caller sees is not here: that is
the data scope of ``core/identity.SCOPE``, applied by ``services/platform/access`` (an id
outside it is 404, never 403).

The table in ``docs/api.md`` is ``markdown()`` of this module; a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from caifu.core.errors import ConfigError, PermissionDeniedError

ROLES: Final = ("platform_admin", "tenant_admin", "ops", "branch_manager", "advisor",
                "compliance")
_TENANT: Final = frozenset(ROLES) - {"platform_admin"}  # every role that belongs to a tenant
_TENANT_WIDE: Final = frozenset({"tenant_admin", "ops", "compliance"})  # see the whole tenant
_OPERATORS: Final = frozenset({"tenant_admin", "ops"})  # change the tenant's data
_PRIVACY: Final = frozenset({"tenant_admin", "compliance"})


@dataclass(frozen=True)
class Action:
    """Who may do it; ``doing`` completes "a <role> may not …"; ``note`` is for the docs."""

    roles: frozenset[str]
    doing: str
    note: str = ""


POLICY: Final[Mapping[str, Action]] = MappingProxyType({
    "customers.read": Action(frozenset(ROLES), "read customers",
                             "customer 360 within the scope: 404 outside it, and a "
                             "platform_admin's scope is empty"),
    "customers.search": Action(_TENANT, "search customers", "within the scope"),
    "customers.unmask": Action(frozenset({"compliance"}), "unmask personal data",
                               "with a reason, audited"),
    "customers.restricted": Action(frozenset({"compliance"}), "see storage-only customers",
                                   "kept by law, no longer processed"),
    "tags.read": Action(_TENANT, "see the tag catalogue", "holder counts within the scope"),
    "segments.read": Action(_TENANT, "see segments", "sizes and members within the scope"),
    "events.push": Action(_OPERATORS, "push events"),
    "ingest.write": Action(_OPERATORS, "ingest data"),
    "ingest.read": Action(_TENANT_WIDE, "see ingest batches and quarantined rows"),
    "quality.read": Action(_TENANT_WIDE, "see data quality",
                           "per-load history, freshness and alerts: tenant-wide "
                           "operational data"),
    "jobs.submit": Action(_OPERATORS, "start jobs"),
    "jobs.read": Action(_TENANT_WIDE, "see jobs"),
    "value.read": Action(_TENANT, "see customer value",
                         "per-customer rows, roll-ups and the reassurance list within the scope"),
    "kpis.read": Action(_TENANT, "query business metrics (KPIs)",
                           "figures of the customers in the scope; tenant-wide figures "
                           "(no customer behind them) for tenant-wide roles only"),
    "value.redemption": Action(_TENANT_WIDE, "see the tenant-wide redemption answers",
                               "aggregates over the tenant"),
    "privacy.handle": Action(_PRIVACY, "handle data-subject requests"),
    "chat_flags.read": Action(_PRIVACY, "read the chat-compliance queue"),
    "chat_flags.decide": Action(frozenset({"compliance"}), "decide on chat flags", "audited"),
    "chats.intake": Action(_OPERATORS, "take in chats"),
    "wecom.rejections.read": Action(_TENANT_WIDE | {"platform_admin"}, "see rejected callbacks",
                                    "a platform_admin sees the refusals no tenant owns: "
                                    "unknown tenant, no WeCom app"),
    "campaigns.run": Action(_OPERATORS, "gate campaign runs or poll their delivery"),
    "campaigns.send": Action(_OPERATORS, "send campaigns", "audited"),
    "campaigns.read": Action(_TENANT_WIDE, "see campaign funnels"),
    "campaigns.decisions": Action(_TENANT, "see campaign gate decisions", "within the scope"),
    "risk.ingest": Action(_OPERATORS, "take in risk news"),
    "risk.read": Action(_TENANT, "read risk news stories",
                        "public news and announcements, with every source"),
    "risk.rejections.read": Action(_TENANT_WIDE, "see rejected risk news documents",
                                   "the documents as received, with the reason"),
    "risk.classify": Action(_OPERATORS, "classify risk stories",
                            "an operator's event type and polarity, audited"),
    "risk.alerts.read": Action(_TENANT, "see risk alerts",
                               "holders' alerts within the scope, customers masked"),
    "risk.tasks.read": Action(_TENANT, "see risk tasks",
                              "within the scope: an advisor his customers' tasks"),
    "risk.tasks.update": Action(_TENANT - {"compliance"}, "move risk tasks",
                                "within the scope, audited with who and when"),
    "risk.reference.read": Action(_TENANT, "see the tenant's company aliases and relations"),
    "risk.reference.load": Action(_OPERATORS, "load company aliases and relations",
                                  "a file whole or not at all, audited"),
    "recommendations.read": Action(_TENANT, "read a customer's recommendations",
                                   "within the scope, audited and logged"),
    "groups.content": Action(_TENANT, "see preference groups' content plans",
                             "counts over the group's members, no customer shown"),
    "metrics.read": Action(_TENANT_WIDE | {"platform_admin"}, "read the service's metrics",
                           "a tenant's roles their tenant's series, a platform_admin all"),
    "dictionary.read": Action(_TENANT, "read the data dictionary",
                              "tables, columns, levels and lineage; no customer data"),
})


def _action(action: str) -> Action:
    try:
        return POLICY[action]
    except KeyError:
        raise ConfigError(f"unknown action {action!r}; actions: {', '.join(POLICY)}") from None


def allowed(action: str) -> tuple[str, ...]:
    """The roles that may do ``action``, in the order of ``ROLES``."""
    roles = _action(action).roles
    return tuple(r for r in ROLES if r in roles)


def may(role: str, action: str) -> bool:
    return role in _action(action).roles


def check(role: str, action: str) -> None:
    """Nothing if ``role`` may do ``action``, else a PermissionDeniedError naming who may."""
    a = _action(action)
    if role not in a.roles:
        raise PermissionDeniedError(f"a {role} may not {a.doing}; roles: "
                                    + ", ".join(allowed(action)))


def markdown() -> str:
    """The table as Markdown: one row per action, one column per role."""
    lines = ["| action | " + " | ".join(ROLES) + " | note |",
             "|---|" + "---|" * len(ROLES) + "---|"]
    for name, a in POLICY.items():
        marks = " | ".join("✓" if r in a.roles else "" for r in ROLES)
        lines.append(f"| `{name}` | {marks} | {a.note} |")
    return "\n".join(lines) + "\n"
