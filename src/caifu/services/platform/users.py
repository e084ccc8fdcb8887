"""Users (password login, argon2id) and API keys (shown once, stored hashed, revocable).

    caifu user add wang.advisor -t demo --role advisor --advisor-id TG00001
    caifu key create -t demo --role ops --name crm-sync [--quota 600]
    caifu key list -t demo · caifu key revoke KEY_ID -t demo

Creating and revoking keys are audit events. Authentication answers only "who is this"
(a ``Principal``) or None — never why not, so a caller cannot probe which part was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update

from caifu.adapters.sor.models import CONTRACT_TABLES, api_keys, users
from caifu.core.errors import ConfigError
from caifu.core.identity import ROLES, Principal, check_password, check_user, parse_key
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

# argon2id with the library's current recommended parameters: what every service uses.
PRODUCTION_HASHER = PasswordHasher()
# The same argon2id at its minimum cost, so a test suite's hundreds of logins take no time.
# Only code can select it (``use_test_hasher``): no setting or environment variable reaches it,
# and a hash made with it is re-hashed at production strength on the next login (see ``login``).
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_HASHER = PRODUCTION_HASHER
# verified against when the user does not exist, so a wrong user id costs the same time
_DUMMY_HASHES = {id(PRODUCTION_HASHER): PRODUCTION_HASHER.hash("caifu-no-such-user")}
DEFAULT_QUOTA = 600  # requests per minute per key


def use_test_hasher(enabled: bool = True) -> None:
    """Hash passwords at minimum cost in this process (test suites only); False restores the
    production hasher."""
    global _HASHER
    _HASHER = TEST_HASHER if enabled else PRODUCTION_HASHER


def hasher() -> PasswordHasher:
    """The password hasher in use in this process."""
    return _HASHER


def _dummy_hash() -> str:
    key = id(_HASHER)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = _HASHER.hash("caifu-no-such-user")
    return _DUMMY_HASHES[key]


def add_user(c: Container, user_id: str, role: str, password: str, *, tenant: str | None,
             display_name: str = "", branch_id: str | None = None,
             advisor_id: str | None = None) -> Principal:
    check_user(user_id, role, tenant, branch_id, advisor_id)
    check_password(password)
    with c.engine.begin() as conn:
        if tenant is not None:
            get_tenant(c, tenant)
            _must_exist(conn, tenant, "branches", "branch_id", branch_id)
            _must_exist(conn, tenant, "advisors", "advisor_id", advisor_id)
        if conn.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first():
            raise ConfigError(f"user {user_id!r} exists already")
        conn.execute(insert(users).values(
            user_id=user_id, tenant_id=tenant, display_name=display_name or user_id, role=role,
            branch_id=branch_id, advisor_id=advisor_id, password_hash=_HASHER.hash(password),
            active=True, created_at=c.clock.now()))
    return Principal(tenant, user_id, role, branch_id, advisor_id)


def _must_exist(conn: Any, tenant: str, table: str, column: str, value: str | None) -> None:
    if value is None:
        return
    t = CONTRACT_TABLES[table]
    if conn.execute(select(t.c[column]).where(t.c.tenant_id == tenant,
                                              t.c[column] == value)).first() is None:
        raise ConfigError(f"no {column} {value!r} in tenant {tenant!r} ({table})")


def login(c: Container, user_id: str, password: str) -> Principal | None:
    with c.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.user_id == user_id)).first()
    try:
        _HASHER.verify(row.password_hash if row else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.active:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):  # parameters raised since: re-hash
        with c.engine.begin() as conn:
            conn.execute(update(users).where(users.c.user_id == user_id)
                         .values(password_hash=_HASHER.hash(password)))
    return Principal(row.tenant_id, row.user_id, row.role, row.branch_id, row.advisor_id)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str  # the whole key, "cf_<id>_<secret>": shown once, never stored

    def __str__(self) -> str:
        return self.secret


def create_key(c: Container, tenant: str, role: str, name: str, created_by: str,
               quota_per_minute: int = DEFAULT_QUOTA) -> NewKey:
    get_tenant(c, tenant)
    if role not in ROLES or role == "platform_admin":
        raise ConfigError(f"a key's role is one of {', '.join(r for r in ROLES if r != 'platform_admin')}")
    if role in ("advisor", "branch_manager"):
        raise ConfigError(f"keys act for a whole tenant; a {role} signs in as a user")
    if not name.strip():
        raise ConfigError("a key needs a name that says what it is for (--name)")
    if not 1 <= quota_per_minute <= 100_000:
        raise ConfigError("--quota is requests per minute, 1 to 100,000")
    key_id = secrets.token_hex(4)
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    with c.engine.begin() as conn:
        conn.execute(insert(api_keys).values(
            key_id=key_id, tenant_id=tenant, name=name.strip(), role=role,
            secret_sha256=hashlib.sha256(raw.encode()).hexdigest(),
            quota_per_minute=quota_per_minute, created_by=created_by, created_at=c.clock.now()))
    audit.append(c, tenant, created_by, "key_create", reason=f"{key_id} {role}: {name.strip()}")
    return NewKey(key_id, f"cf_{key_id}_{raw}")


def revoke_key(c: Container, tenant: str, key_id: str, revoked_by: str) -> None:
    with c.engine.begin() as conn:
        done = conn.execute(update(api_keys).where(
            api_keys.c.tenant_id == tenant, api_keys.c.key_id == key_id,
            api_keys.c.revoked_at.is_(None)).values(revoked_at=c.clock.now())).rowcount
    if done != 1:
        raise ConfigError(f"no active key {key_id!r} in tenant {tenant!r}")
    audit.append(c, tenant, revoked_by, "key_revoke", reason=f"{key_id} revoked")


def list_keys(c: Container, tenant: str) -> list[dict[str, Any]]:
    get_tenant(c, tenant)
    with c.engine.connect() as conn:
        rows = conn.execute(select(
            api_keys.c.key_id, api_keys.c.name, api_keys.c.role, api_keys.c.quota_per_minute,
            api_keys.c.created_by, api_keys.c.created_at, api_keys.c.revoked_at)
            .where(api_keys.c.tenant_id == tenant).order_by(api_keys.c.created_at)).all()
    return [dict(r._mapping) for r in rows]


def authenticate_key(c: Container, presented: str) -> Principal | None:
    parts = parse_key(presented)
    if parts is None:
        return None
    key_id, raw = parts
    with c.engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    digest = hashlib.sha256(raw.encode()).hexdigest()
    if not hmac.compare_digest(digest, row.secret_sha256):
        return None
    return Principal(row.tenant_id, f"key:{key_id}", row.role,
                     quota_per_minute=row.quota_per_minute)
