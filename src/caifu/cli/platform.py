"""Workspace, tenants, users and API keys, the HTTP service, the generated docs."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from caifu.cli.common import (
    TenantOpt,
    WorkspaceOpt,
    _container,
    _settings,
    app,
    console,
    tenant_app,
)


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Workspace folder")] = Path("caifu-workspace"),
         sor_url: Annotated[str | None, typer.Option(help="System-of-record URL (default: SQLite in the workspace)")] = None,
         share_database: Annotated[bool, typer.Option(
             help="Allow a database another workspace already uses")] = False) -> None:
    """Create a workspace: system of record (migrated) and lake."""
    from caifu.adapters.sor.store import current_revision
    from caifu.services.platform.workspace import init_workspace

    c = init_workspace(path, _settings(path), sor_url, share_database=share_database)
    console.print(f"workspace [bold]{c.root}[/] ready: SoR {c.engine.dialect.name} "
                  f"(schema {current_revision(c.engine)}), lake {c.lake.root}")


@tenant_app.command("create")
def tenant_create(tenant_id: str, name: Annotated[str, typer.Option(help="Broker name")] = "",
                  timezone: str = "Asia/Shanghai", workspace: WorkspaceOpt = None) -> None:
    """Create a tenant."""
    from caifu.services.platform.workspace import create_tenant

    t = create_tenant(_container(workspace), tenant_id, name or tenant_id, timezone)
    console.print(f"tenant [bold]{t.tenant_id}[/] created ({t.name}, {t.timezone})")


@tenant_app.command("list")
def tenant_list(workspace: WorkspaceOpt = None) -> None:
    """List tenants."""
    from caifu.services.platform.workspace import list_tenants

    tenants = list_tenants(_container(workspace))
    for t in tenants:
        console.print(f"{t.tenant_id}\t{t.name}\t{t.timezone}")




@app.command()
def docs(out: Annotated[Path, typer.Option(help="Where to write data-model.md")] = Path("docs/data-model.md"),
         features_out: Annotated[Path, typer.Option(help="Where to write profile-features.md")] = Path("docs/profile-features.md"),
         dictionary_out: Annotated[Path, typer.Option(help="Where to write data-dictionary.md")] = Path("docs/data-dictionary.md")) -> None:
    """Regenerate docs/data-model.md, docs/profile-features.md and docs/data-dictionary.md
    from the code."""
    from caifu.adapters.sor.docs import data_model
    from caifu.pipelines import profile_docs
    from caifu.services.metrics import dictionary

    for path, text in ((out, data_model()), (features_out, profile_docs.render()),
                       (dictionary_out, dictionary.render_shipped())):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path}")


user_app = typer.Typer(no_args_is_help=True, help="Console users (password login, argon2id).")
key_app = typer.Typer(no_args_is_help=True, help="API keys: shown once, stored hashed, revocable.")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")


@user_app.command("add")
def user_add(user_id: str, role: Annotated[str, typer.Option(help="platform_admin, tenant_admin, "
                                                            "ops, branch_manager, advisor, compliance")],
             tenant: Annotated[str | None, typer.Option("--tenant", "-t",
                                                         help="Tenant (none for platform_admin)")] = None,
             name: Annotated[str, typer.Option(help="Display name")] = "",
             branch_id: Annotated[str | None, typer.Option(help="branch_manager's branch")] = None,
             advisor_id: Annotated[str | None, typer.Option(help="advisor's advisor id")] = None,
             password_stdin: Annotated[bool, typer.Option(
                 help="Read the password from stdin instead of asking")] = False,
             workspace: WorkspaceOpt = None) -> None:
    """Add a user; the password is asked for (hidden) or read from stdin, never an argument."""
    import sys

    from caifu.services.platform.users import add_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else \
        getpass.getpass("password: ")
    p = add_user(_container(workspace), user_id, role, password, tenant=tenant,
                 display_name=name, branch_id=branch_id, advisor_id=advisor_id)
    console.print(f"user {p.subject} added: {p.role}" + (f" of {p.tenant_id}" if p.tenant_id else ""))


@key_app.command("create")
def key_create(tenant: TenantOpt, role: Annotated[str, typer.Option(help="tenant_admin, ops or compliance")],
               name: Annotated[str, typer.Option(help="What the key is for")],
               quota: Annotated[int, typer.Option(help="Requests per minute")] = 600,
               actor: Annotated[str | None, typer.Option(help="Who creates it [default: OS user]")] = None,
               workspace: WorkspaceOpt = None) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    from caifu.services.platform.users import create_key

    key = create_key(_container(workspace), tenant, role, name, actor or getpass.getuser(),
                     quota)
    console.print(f"key {key.key_id} ({role}, {quota}/min) — copy it now, it is not stored:")
    console.print(key.secret, highlight=False, soft_wrap=True)


@key_app.command("list")
def key_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """The tenant's keys (never their secrets)."""
    from caifu.services.platform.users import list_keys

    keys = list_keys(_container(workspace), tenant)
    t = RichTable("key", "name", "role", "quota/min", "created by", "created", "revoked")
    for k in keys:
        t.add_row(k["key_id"], k["name"], k["role"], str(k["quota_per_minute"]), k["created_by"],
                  f"{k['created_at']:%Y-%m-%d %H:%M}",
                  f"{k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "")
    console.print(t)


@key_app.command("revoke")
def key_revoke(key_id: str, tenant: TenantOpt,
               actor: Annotated[str | None, typer.Option(help="Who revokes it [default: OS user]")] = None,
               workspace: WorkspaceOpt = None) -> None:
    """Revoke a key at once (recorded in the audit log)."""
    from caifu.services.platform.users import revoke_key

    revoke_key(_container(workspace), tenant, key_id, actor or getpass.getuser())
    console.print(f"key {key_id} revoked")


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port")] = 8000,
          workspace: WorkspaceOpt = None) -> None:
    """Run the API (needs CAIFU_SECRET_KEY); OpenAPI at /docs, health at /healthz and /readyz."""
    import uvicorn

    from caifu.api import create_app
    from caifu.api.logs import configure

    settings = _settings(workspace)
    api = create_app(settings)
    configure()
    console.print(f"caifu API on http://{host}:{port} — workspace {settings.workspace}")
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False)
