"""Creating and opening a workspace; tenants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.store import migrate
from caifu.core.errors import TenantError
from caifu.core.tenancy import check_tenant_id
from caifu.services.container import (
    Container,
    build,
    default_sor_url,
    write_workspace_file,
)
from caifu.settings import Settings

tenants_t = CONTRACT_TABLES["tenants"]


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    timezone: str


def init_workspace(root: Path, settings: Settings | None = None, sor_url: str | None = None) -> Container:
    """Create (or upgrade) a workspace at ``root``: config file, SoR schema, lake folder."""
    settings = settings or Settings()
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / "lake").mkdir(exist_ok=True)
    url = sor_url or settings.sor_url or default_sor_url(root)
    write_workspace_file(root, url)
    container = build(settings.model_copy(update={"sor_url": url}), root, check_schema=False)
    migrate(container.engine)
    return container


def create_tenant(c: Container, tenant_id: str, name: str, timezone: str = "Asia/Shanghai") -> Tenant:
    check_tenant_id(tenant_id)
    with c.engine.begin() as conn:
        exists = conn.execute(select(func.count()).where(tenants_t.c.tenant_id == tenant_id)).scalar()
        if exists:
            raise TenantError(f"tenant {tenant_id!r} already exists")
        conn.execute(insert(tenants_t).values(
            tenant_id=tenant_id, name=name, timezone=timezone,
            created_at=c.clock.now()))
    return Tenant(tenant_id, name, timezone)


def get_tenant(c: Container, tenant_id: str) -> Tenant:
    with c.engine.connect() as conn:
        row = conn.execute(select(tenants_t).where(tenants_t.c.tenant_id == tenant_id)).first()
    if row is None:
        raise TenantError(f"no tenant {tenant_id!r} (create it with `caifu tenant create {tenant_id}`)")
    return Tenant(row.tenant_id, row.name, row.timezone)


def list_tenants(c: Container) -> list[Tenant]:
    with c.engine.connect() as conn:
        rows = conn.execute(select(tenants_t).order_by(tenants_t.c.tenant_id)).all()
    return [Tenant(r.tenant_id, r.name, r.timezone) for r in rows]
