"""Tenants: one per broker. The id appears in every SoR key and every lake path."""

from __future__ import annotations

import re
from typing import Final

from caifu.core.errors import TenantError

TENANT_ID_PATTERN: Final = r"^[a-z][a-z0-9_-]{1,31}$"
_TENANT_RE: Final = re.compile(TENANT_ID_PATTERN)


def check_tenant_id(tenant_id: str) -> str:
    """``tenant_id`` if it is safe as a key and a folder name, else a TenantError."""
    if not _TENANT_RE.match(tenant_id):
        raise TenantError(
            f"invalid tenant id {tenant_id!r}: use 2-32 lowercase letters, digits, - or _, "
            "starting with a letter"
        )
    return tenant_id
