"""Users and API keys."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table as RichTable

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, _fail, app, console
from caifu.core.errors import CaifuError

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

    from caifu.services.identity import add_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else \
        getpass.getpass("password: ")
    try:
        p = add_user(_container(workspace), user_id, role, password, tenant=tenant,
                     display_name=name, branch_id=branch_id, advisor_id=advisor_id)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"user {p.subject} added: {p.role}" + (f" of {p.tenant_id}" if p.tenant_id else ""))


@key_app.command("create")
def key_create(tenant: TenantOpt, role: Annotated[str, typer.Option(help="tenant_admin, ops or compliance")],
               name: Annotated[str, typer.Option(help="What the key is for")],
               quota: Annotated[int, typer.Option(help="Requests per minute")] = 600,
               actor: Annotated[str | None, typer.Option(help="Who creates it [default: OS user]")] = None,
               workspace: WorkspaceOpt = None) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    from caifu.services.identity import create_key

    try:
        key = create_key(_container(workspace), tenant, role, name, actor or getpass.getuser(),
                         quota)
    except CaifuError as exc:
        _fail(exc)
    console.print(f"key {key.key_id} ({role}, {quota}/min) — copy it now, it is not stored:")
    console.print(key.secret, highlight=False, soft_wrap=True)


@key_app.command("list")
def key_list(tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """The tenant's keys (never their secrets)."""
    from caifu.services.identity import list_keys

    try:
        keys = list_keys(_container(workspace), tenant)
    except CaifuError as exc:
        _fail(exc)
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
    from caifu.services.identity import revoke_key

    try:
        revoke_key(_container(workspace), tenant, key_id, actor or getpass.getuser())
    except CaifuError as exc:
        _fail(exc)
    console.print(f"key {key_id} revoked")
