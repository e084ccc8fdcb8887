"""Who acts in caifu: roles, what each may see, and the shape of users and API keys.

| role | sees | may unmask |
|---|---|---|
| platform_admin | tenants, keys and quotas — no customer data | no |
| tenant_admin | the tenant, masked | no |
| ops | the tenant, masked | no |
| branch_manager | customers of his branch, masked | no |
| advisor | customers assigned to him or following him on WeCom, masked | no |
| compliance | the tenant, masked | yes, with a reason (audited) |

The service applies these rules on every query (issue 5); this module only states them.
What each role may *do* is the action table of ``core/roles``.
An API key reads ``cf_<key id>_<secret>``: the key id is public and looked up, the secret
(32 random bytes, URL-safe base64) is stored only as its SHA-256 — it is random, not a
password, so a slow hash would add nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from caifu.core.errors import ConfigError
from caifu.core.roles import ROLES as ROLES  # re-exported: users and the CLI read it here
from caifu.core.roles import allowed

SCOPE: Final = {"platform_admin": "none", "tenant_admin": "tenant", "ops": "tenant",
                "branch_manager": "branch", "advisor": "own_customers", "compliance": "tenant"}
CAN_UNMASK: Final = frozenset(allowed("customers.unmask"))
USER_ID_PATTERN: Final = r"^[a-z][a-z0-9._-]{2,63}$"
MIN_PASSWORD: Final = 10
_USER_RE: Final = re.compile(USER_ID_PATTERN)
_KEY_RE: Final = re.compile(r"^cf_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """An authenticated user or key: what every service call is scoped by."""

    tenant_id: str | None  # None only for platform_admin
    subject: str  # user id, or "key:<key id>"
    role: str
    branch_id: str | None = None
    advisor_id: str | None = None
    quota_per_minute: int | None = None  # API keys: requests per minute (429 beyond)

    @property
    def can_unmask(self) -> bool:
        return self.role in CAN_UNMASK


def check_user(user_id: str, role: str, tenant_id: str | None, branch_id: str | None,
               advisor_id: str | None) -> None:
    """A user's fields make sense together, or a ConfigError that says which does not."""
    problems = []
    if not _USER_RE.match(user_id):
        problems.append(f"invalid user id {user_id!r}: 3-64 lowercase letters, digits, . _ -, "
                        "starting with a letter")
    if role not in ROLES:
        problems.append(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "platform_admin" and tenant_id is not None:
        problems.append("a platform_admin belongs to no tenant")
    if role != "platform_admin" and tenant_id is None:
        problems.append(f"a {role} belongs to a tenant (--tenant)")
    if role == "branch_manager" and not branch_id:
        problems.append("a branch_manager needs his branch (--branch-id)")
    if role == "advisor" and not advisor_id:
        problems.append("an advisor user needs the advisor record it is (--advisor-id)")
    if problems:
        raise ConfigError("; ".join(problems))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    if password.strip() != password or password.isdigit():
        raise ConfigError("a password may not be only digits, nor start or end with spaces")


def parse_key(presented: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None (never say why to the caller)."""
    m = _KEY_RE.match(presented.strip())
    return (m.group(1), m.group(2)) if m else None
