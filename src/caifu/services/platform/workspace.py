"""Creating and opening a workspace; tenants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, insert, inspect, select
from sqlalchemy.engine import make_url

from caifu.adapters.sor.models import CONTRACT_TABLES, schema_version
from caifu.adapters.sor.store import migrate, open_engine
from caifu.core.errors import TenantError, WorkspaceError
from caifu.core.tenancy import check_tenant_id
from caifu.services.container import (
    WORKSPACE_FILE,
    Container,
    build,
    default_sor_url,
    moved_from,
    owning_workspace,
    read_workspace_file,
    resolve_sor_url,
    sqlite_path,
    write_workspace_file,
)
from caifu.settings import Settings

tenants_t = CONTRACT_TABLES["tenants"]
meta_t = schema_version  # caifu_meta


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    timezone: str


def init_workspace(root: Path, settings: Settings | None = None, sor_url: str | None = None,
                   *, share_database: bool = False) -> Container:
    """Create (or upgrade) a workspace at ``root``: config file, SoR schema, lake folder.

    Without ``sor_url`` (or CAIFU_SOR_URL) an existing workspace keeps its database and a new
    one gets SQLite in its folder. A database another workspace already uses — a SQLite file
    inside another workspace's folder, one claimed by another workspace, or one holding
    tenants no workspace claimed — is refused unless ``share_database`` says it is meant.
    """
    settings = settings or Settings()
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / "lake").mkdir(exist_ok=True)
    existing: dict[str, object] = {}
    if (root / WORKSPACE_FILE).is_file():
        existing = read_workspace_file(root)
    own = _existing_url(existing, root)
    url = sor_url or settings.sor_url or own or default_sor_url(root)
    workspace_id = str(existing.get("workspace_id") or uuid.uuid4().hex)
    shared = share_database or bool(existing.get("share_database") and url == own)
    share = shared
    path = sqlite_path(url)
    # a file in the workspace's own folder is its own, whoever initialised it: a copied
    # workspace (or a copied template database) is a copy, not a share
    if path is not None and path.resolve().is_relative_to(root):
        share = True
    if not share:
        _refuse_shared_sqlite(url, root)
    engine = open_engine(url)
    try:
        claim = _claim(engine)
        if not share:
            _refuse_claimed(engine, url, root, claim, workspace_id, own)
    finally:
        engine.dispose()
    write_workspace_file(root, url, workspace_id, shared)
    container = build(settings.model_copy(update={"sor_url": url}), root, check_schema=False)
    migrate(container.engine)
    if claim is None:
        with container.engine.begin() as conn:
            conn.execute(insert(meta_t).values(key=WORKSPACE_KEY, value=workspace_id))
    return container


WORKSPACE_KEY = "workspace_id"  # caifu_meta: the workspace that initialised this database


def _existing_url(config: dict[str, object], root: Path) -> str | None:
    """The database an existing workspace file names (absolute); for a workspace an older
    caifu wrote and that was then copied or moved, its own file instead of the original's."""
    stored = config.get("sor_url")
    if not stored:
        return None
    local = moved_from(str(stored), root)
    if local is not None:
        return default_sor_url(root) if local.name == "sor.db" else f"sqlite:///{local}"
    return resolve_sor_url(str(stored), root)


def _refuse_shared_sqlite(url: str, root: Path) -> None:
    path = sqlite_path(url)
    if path is None:
        return
    other = owning_workspace(path.resolve(), root)
    if other is not None:
        raise WorkspaceError(
            f"{path} is inside the workspace at {other}: {root} would write into that "
            "workspace's database. Leave --sor-url out to give it its own, or pass "
            "--share-database if sharing is meant")


def _claim(engine: Engine) -> str | None:
    if not inspect(engine).has_table(meta_t.name):
        return None
    with engine.connect() as conn:
        return conn.execute(select(meta_t.c.value).where(meta_t.c.key == WORKSPACE_KEY)
                            ).scalar_one_or_none()


def _refuse_claimed(engine: Engine, url: str, root: Path, claim: str | None,
                    workspace_id: str, own: str | None) -> None:
    shown = make_url(url).render_as_string(hide_password=True)
    if claim is not None and claim != workspace_id:
        raise WorkspaceError(
            f"the database {shown} belongs to another workspace (id {claim}); initialising "
            f"{root} on it would mix the two. Use a database of its own, or pass "
            "--share-database if sharing is meant")
    if claim is None and url != own and inspect(engine).has_table(tenants_t.name):
        with engine.connect() as conn:
            names = conn.execute(select(tenants_t.c.tenant_id).order_by(tenants_t.c.tenant_id)
                                 .limit(5)).scalars().all()
        if names:
            raise WorkspaceError(
                f"the database {shown} already holds tenants ({', '.join(names)}) of another "
                f"workspace; initialising {root} on it would mix the two. Use a database of "
                "its own, or pass --share-database if sharing is meant")


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
