"""Row-level security on PostgreSQL: the database itself keeps tenants apart.

The service layer already filters every query by the caller's tenant and scope
(``services/access``). On PostgreSQL a second wall stands behind it: every table with a
``tenant_id`` column has row-level security enabled and one policy,

    tenant_id = current_setting('caifu.tenant', true)

for the non-owner role ``caifu_tenant`` (NOLOGIN, no BYPASSRLS). A request of the API runs
inside ``tenant_scope(tenant)``; each transaction it begins on the engine then starts with
``SET LOCAL ROLE caifu_tenant`` and ``set_config('caifu.tenant', tenant, true)`` — both end
with the transaction, so a pooled connection never carries them to the next request. A
query that forgot its tenant filter sees only the caller's tenant; an insert of another
tenant's row is refused; with the role but no tenant it sees nothing (fail closed).

The owner (migrations, batch jobs, the CLI, sign-in lookups before the tenant is known) is
not subject to the policies: RLS is not FORCEd. SQLite has no row-level security; there the
service layer's filters are the only wall.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect

ROLE = "caifu_tenant"
SETTING = "caifu.tenant"
POLICY = "tenant_isolation"

# ContextVar, not a thread-local: FastAPI runs sync routes in worker threads with a copy of
# the request task's context, so the tenant set by the request's dependency follows it there.
_tenant: ContextVar[str | None] = ContextVar("caifu_rls_tenant", default=None)


@contextmanager
def tenant_scope(tenant: str) -> Iterator[None]:
    """Run the block's database work as ``caifu_tenant`` for ``tenant`` (PostgreSQL)."""
    token = _tenant.set(tenant)
    try:
        yield
    finally:
        _tenant.reset(token)


def enter(tenant: str) -> None:
    """Set the tenant for the rest of the current context (a request's own task)."""
    _tenant.set(tenant)


def _on_begin(conn: Connection) -> None:
    tenant = _tenant.get()
    if tenant is not None:
        conn.exec_driver_sql(f"SET LOCAL ROLE {ROLE}")
        conn.exec_driver_sql(f"SELECT set_config('{SETTING}', %(t)s, true)", {"t": tenant})


def install(engine: Engine) -> None:
    """Apply the request's tenant at the start of every transaction on ``engine``."""
    if engine.dialect.name == "postgresql":
        event.listen(engine, "begin", _on_begin)


def tenant_tables(bind: Connection) -> list[str]:
    insp = inspect(bind)
    return sorted(t for t in insp.get_table_names()
                  if any(c["name"] == "tenant_id" for c in insp.get_columns(t)))


def secure(bind: Connection) -> None:
    """Create the role if missing, grant it the tables, and put the tenant policy on every
    table with a ``tenant_id`` column. Idempotent; every migration that adds a tenant table
    ends with it. A no-op on SQLite."""
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql(
        f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
    # membership lets a non-superuser owner SET ROLE to it (a superuser may anyway)
    if not bind.exec_driver_sql(
            "SELECT pg_has_role(current_user, %(r)s, 'MEMBER')", {"r": ROLE}).scalar():
        bind.exec_driver_sql(f"GRANT {ROLE} TO CURRENT_USER")
    schema = bind.exec_driver_sql("SELECT current_schema()").scalar_one()
    bind.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {ROLE}')
    bind.exec_driver_sql(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {ROLE}')
    for table in tenant_tables(bind):
        bind.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO {ROLE}')
        bind.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        bind.exec_driver_sql(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
        bind.exec_driver_sql(
            f'CREATE POLICY {POLICY} ON "{table}" TO {ROLE} '
            f"USING (tenant_id = current_setting('{SETTING}', true)) "
            f"WITH CHECK (tenant_id = current_setting('{SETTING}', true))")


def unsecured(bind: Connection) -> list[str]:
    """Tenant tables without row-level security and the policy (PostgreSQL) — for tests
    and ``caifu doctor``-style checks; empty when all are covered."""
    rows: Any = bind.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relrowsecurity AND EXISTS ("
        "  SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %(p)s)",
        {"p": POLICY})
    covered = {r[0] for r in rows}
    return [t for t in tenant_tables(bind) if t not in covered]
