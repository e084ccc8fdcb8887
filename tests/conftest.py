"""Shared fixtures: workspaces on SQLite and PostgreSQL, a tenant, a scored demo broker."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from caifu.data.demo import generate
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.value.scoring import Scoring, ScoringResult
from caifu.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "CAIFU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def chromium(what: str) -> str:
    """Debian's chromium for a browser test: fail under CI (``.ci/run`` installs it), skip
    with the reason elsewhere."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("the browser test must run in CI: install Debian's chromium (.ci/run does)")
        pytest.skip(reason=f"no chromium on this machine (apt-get install chromium): the {what} "
                    "runs in CI")
    return path


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # any driver/connection failure means "not here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
        pytest.skip(reason=f"PostgreSQL not reachable at {PG_ADMIN_URL} ({problem}); "
                    "set CAIFU_TEST_PG_URL to run these tests")
    yield PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"caifu_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_admin.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sor_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sor.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def workspace(tmp_path: Path, sor_url: str) -> Iterator[Container]:
    """A migrated workspace with tenant ``acme``, on SQLite and on PostgreSQL."""
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="2GB"), sor_url)
    create_tenant(c, "acme", "甲乙证券")
    yield c
    c.close()


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Iterator[Container]:
    """A SQLite-only workspace with tenant ``acme`` (for tests of file handling)."""
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    yield c
    c.close()


@pytest.fixture(scope="session")
def scored(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Container, ScoringResult, Path]]:
    """A 4,000-customer demo broker, ingested and scored (tenant ``acme``); its exports folder
    holds the ground truth. Tests may build on it but must not change its inputs."""
    out = tmp_path_factory.mktemp("scored-demo") / "exports"
    generate(out, customers=4000, seed=11)
    c = init_workspace(tmp_path_factory.mktemp("scored-ws") / "ws",
                       Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    Ingest(c).ingest("acme", [out])
    result = Scoring(c).run("acme")
    yield c, result, out
    c.close()
