"""Users and API keys on SQLite and PostgreSQL: hashes not secrets, revocation, tenants apart."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from caifu.adapters.sor.models import CONTRACT_TABLES, api_keys
from caifu.adapters.sor.models import users as users_table
from caifu.cli import app
from caifu.core.errors import ConfigError
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform import users
from caifu.services.platform.workspace import create_tenant

PASSWORD = "correct horse battery"


def _advisor(c: Container, tenant: str = "acme") -> None:
    with c.engine.begin() as conn:
        conn.execute(insert(CONTRACT_TABLES["branches"]).values(
            tenant_id=tenant, branch_id="YYB001", name="上海营业部"))
        conn.execute(insert(CONTRACT_TABLES["advisors"]).values(
            tenant_id=tenant, advisor_id="TG00001", name="李投顾", branch_id="YYB001",
            sac_number="A0120612345678", status="active"))


def test_users_log_in_with_argon2(workspace: Container) -> None:
    _advisor(workspace)
    p = users.add_user(workspace, "li.advisor", "advisor", PASSWORD, tenant="acme",
                          advisor_id="TG00001")
    assert (p.tenant_id, p.role, p.advisor_id, p.can_unmask) == ("acme", "advisor", "TG00001",
                                                                 False)
    with workspace.engine.connect() as conn:
        stored = conn.execute(select(users_table.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert users.login(workspace, "li.advisor", PASSWORD) == p
    assert users.login(workspace, "li.advisor", PASSWORD + "!") is None
    assert users.login(workspace, "nobody.here", PASSWORD) is None
    with pytest.raises(ConfigError, match="exists already"):
        users.add_user(workspace, "li.advisor", "ops", PASSWORD, tenant="acme")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"role": "advisor", "advisor_id": "TG99999"}, "no advisor_id 'TG99999' in tenant 'acme'"),
    ({"role": "advisor"}, "needs the advisor record"),
    ({"role": "branch_manager"}, "needs his branch"),
    ({"role": "wizard"}, "unknown role 'wizard'"),
    ({"role": "ops", "password": "123456789012"}, "only digits"),
    ({"role": "ops", "password": "short"}, "at least 10 characters"),
])
def test_bad_users_are_refused_with_the_reason(workspace: Container, kwargs: dict,
                                               message: str) -> None:
    _advisor(workspace)
    args = {"password": PASSWORD, **kwargs}
    with pytest.raises(ConfigError, match=message):
        users.add_user(workspace, "x.user", args.pop("role"), args.pop("password"),
                          tenant="acme", **args)


def test_keys_are_shown_once_hashed_scoped_and_revocable(workspace: Container) -> None:
    create_tenant(workspace, "beta", "丙丁证券")
    key = users.create_key(workspace, "acme", "ops", "crm-sync", "admin.zhang")
    other = users.create_key(workspace, "beta", "compliance", "regulator", "admin.qian")
    with workspace.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.secret_sha256, api_keys.c.key_id)).all()
    assert all(key.secret.split("_", 2)[2] not in row.secret_sha256 for row in stored)
    p = users.authenticate_key(workspace, key.secret)
    assert p is not None and (p.tenant_id, p.role, p.subject) == ("acme", "ops",
                                                                  f"key:{key.key_id}")
    q = users.authenticate_key(workspace, other.secret)
    assert q is not None and q.tenant_id == "beta" and q.can_unmask
    tampered = key.secret[:-1] + ("A" if key.secret[-1] != "A" else "B")
    assert users.authenticate_key(workspace, tampered) is None
    assert users.authenticate_key(workspace, "cf_zzzz") is None
    users.revoke_key(workspace, "acme", key.key_id, "admin.zhang")
    assert users.authenticate_key(workspace, key.secret) is None
    with pytest.raises(ConfigError, match="no active key"):
        users.revoke_key(workspace, "beta", key.key_id, "admin.qian")  # not beta's key
    actions = [r.entry.action for r in audit.records(workspace, "acme")]
    assert actions == ["key_create", "key_revoke"] and audit.verify(workspace, "acme").ok
    with pytest.raises(ConfigError, match="signs in as a user"):
        users.create_key(workspace, "acme", "advisor", "x", "admin.zhang")


def test_cli_user_and_keys(sqlite_workspace: Container) -> None:
    c = sqlite_workspace
    runner = CliRunner(env={"COLUMNS": "200"})
    w = ["-w", str(c.root)]
    added = runner.invoke(app, ["user", "add", "wang.ops", "-t", "acme", "--role", "ops",
                                "--password-stdin", *w], input=PASSWORD + "\n")
    assert added.exit_code == 0 and "wang.ops added: ops of acme" in added.output
    assert users.login(c, "wang.ops", PASSWORD) is not None
    made = runner.invoke(app, ["key", "create", "-t", "acme", "--role", "ops", "--name",
                               "crm-sync", "--actor", "wang.ops", *w])
    assert made.exit_code == 0
    secret = next(line for line in made.output.splitlines() if line.startswith("cf_"))
    assert users.authenticate_key(c, secret) is not None
    listed = runner.invoke(app, ["key", "list", "-t", "acme", *w])
    assert "crm-sync" in listed.output and secret not in listed.output
    key_id = secret.split("_")[1]
    revoked = runner.invoke(app, ["key", "revoke", key_id, "-t", "acme", "--actor", "wang.ops",
                                  *w])
    assert revoked.exit_code == 0 and users.authenticate_key(c, secret) is None
    bad = runner.invoke(app, ["user", "add", "x.y", "--role", "ops", "--password-stdin", *w],
                        input=PASSWORD + "\n")
    assert bad.exit_code == 2 and "belongs to a tenant" in bad.output
