"""Roles and key format (core.identity)."""

from __future__ import annotations

import pytest

from caifu.core.errors import ConfigError
from caifu.core.identity import CAN_UNMASK, ROLES, SCOPE, check_user, parse_key


def test_every_role_has_a_scope_and_only_compliance_unmasks() -> None:
    assert set(SCOPE) == set(ROLES)
    assert SCOPE["advisor"] == "own_customers" and SCOPE["branch_manager"] == "branch"
    assert CAN_UNMASK == {"compliance"}


def test_key_format() -> None:
    secret = "A" * 43
    assert parse_key(f"cf_0a1b2c3d_{secret}") == ("0a1b2c3d", secret)
    assert parse_key(f"  cf_0a1b2c3d_{secret}\n") == ("0a1b2c3d", secret)
    for bad in ("", "cf_0a1b2c3d", f"cf_0A1B2C3D_{secret}", f"xx_0a1b2c3d_{secret}",
                f"cf_0a1b2c3d_{secret}=", f"cf_0a1b2c3_{secret}"):
        assert parse_key(bad) is None, bad


def test_platform_admin_has_no_tenant_and_others_do() -> None:
    check_user("root.admin", "platform_admin", None, None, None)
    with pytest.raises(ConfigError, match="belongs to no tenant"):
        check_user("root.admin", "platform_admin", "acme", None, None)
    with pytest.raises(ConfigError, match="invalid user id 'Li Lei'"):
        check_user("Li Lei", "ops", "acme", None, None)
