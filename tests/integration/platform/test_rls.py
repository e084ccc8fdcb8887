"""Row-level security on PostgreSQL: a query that forgets its tenant filter still sees only
the tenant of the request (``adapters/sor/rls``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from caifu.adapters.sor import rls
from caifu.adapters.sor.models import segments
from caifu.adapters.sor.repos.profiles import save_segment
from caifu.adapters.sor.schema import metadata
from caifu.services.container import Container
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.dialect]  # PostgreSQL only: row-level security
NOW = dt.datetime(2026, 11, 26, 8, 0)


@pytest.fixture
def two_tenants(tmp_path: Path, pg_url: str) -> Iterator[Container]:
    c = init_workspace(tmp_path / "ws", Settings(), pg_url)
    for tenant, name in (("acme", "甲乙证券"), ("beta", "丙丁证券")):
        create_tenant(c, tenant, name)
        with c.engine.begin() as conn:
            save_segment(conn, tenant, f"{tenant}_seg", "高净值", "aum >= 1000000", NOW)
    yield c
    c.close()


def _segment_tenants(c: Container) -> list[str]:
    with c.engine.connect() as conn:  # deliberately no tenant filter
        return sorted(r[0] for r in conn.execute(select(segments.c.tenant_id)))


def test_every_tenant_table_has_the_policy(two_tenants: Container) -> None:
    with two_tenants.engine.connect() as conn:
        tables = rls.tenant_tables(conn)
        assert rls.unsecured(conn) == []
    expected = {t.name for t in metadata.sorted_tables if "tenant_id" in t.c}
    assert set(tables) == expected
    assert {"customers", "accounts", "users", "api_keys", "audit_log", "jobs"} <= set(tables)


def test_an_unfiltered_query_sees_only_the_scoped_tenant(two_tenants: Container) -> None:
    assert _segment_tenants(two_tenants) == ["acme", "beta"]  # the owner: both
    with rls.tenant_scope("acme"):
        assert _segment_tenants(two_tenants) == ["acme"]
        with two_tenants.engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == rls.ROLE
            assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 1
    with rls.tenant_scope("beta"):
        assert _segment_tenants(two_tenants) == ["beta"]
    with rls.tenant_scope(""):  # the role without a tenant: nothing at all
        assert _segment_tenants(two_tenants) == []
    # the pooled connection carries neither the role nor the tenant to the next user
    with two_tenants.engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() != rls.ROLE
        assert conn.execute(text("SELECT current_setting('caifu.tenant', true)")).scalar() in (
            None, "")


def test_writing_another_tenants_row_is_refused(two_tenants: Container) -> None:
    with rls.tenant_scope("acme"), pytest.raises(DBAPIError, match="row-level security"):
        with two_tenants.engine.begin() as conn:
            save_segment(conn, "beta", "planted", "植入", "aum > 0", NOW)
    with rls.tenant_scope("acme"):
        with two_tenants.engine.begin() as conn:  # another tenant's rows: nothing to update
            n = conn.execute(segments.update().where(segments.c.tenant_id == "beta")
                             .values(name="改")).rowcount
        assert n == 0
    assert "planted" not in _segment_ids(two_tenants)
    assert _segment_names(two_tenants, "beta") == ["高净值"]


def test_the_scope_holds_after_a_commit_in_the_same_connection(two_tenants: Container) -> None:
    with rls.tenant_scope("beta"), two_tenants.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()  # a new transaction begins: the role and tenant are set again
        assert [r[0] for r in conn.execute(select(segments.c.tenant_id))] == ["beta"]


def _segment_ids(c: Container) -> list[str]:
    with c.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(segments.c.segment_id))]


def _segment_names(c: Container, tenant: str) -> list[str]:
    with c.engine.connect() as conn:
        return [r[0] for r in conn.execute(
            select(segments.c.name).where(segments.c.tenant_id == tenant))]
