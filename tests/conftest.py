"""Shared fixtures: workspaces on SQLite and PostgreSQL, a tenant, a scored demo broker."""

from __future__ import annotations

import io
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from caifu.adapters.sor.store import migrate, open_engine
from caifu.data.demo import generate
from caifu.services.container import Container, build
from caifu.services.ingest.load import Ingest
from caifu.services.platform import users
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.value.scoring import Scoring, ScoringResult
from caifu.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "CAIFU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


MATRIX_ENV = "CAIFU_TEST_MATRIX"

# Property tests: CI draws the same examples on every run, so a red build is one anybody can
# reproduce; `make test-random` draws afresh under a printed seed (docs/testing.md).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("random", print_blob=True)
hypothesis_settings.load_profile(os.environ.get("CAIFU_HYPOTHESIS_PROFILE")
                                 or ("ci" if IN_CI else "random"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--matrix", action="store_true", default=os.environ.get(MATRIX_ENV) == "1",
                     help="run every SoR test on SQLite and on PostgreSQL (default: PostgreSQL "
                          "only for tests marked `dialect`); also CAIFU_TEST_MATRIX=1")


def pytest_configure(config: pytest.Config) -> None:
    # argon2id at minimum cost: hundreds of logins per run (production keeps the defaults,
    # tests/integration/platform/test_password_hasher.py)
    users.use_test_hasher()


# first: xdist's worker hook reads the ``xdist_group`` marks to name each test's group, and is
# otherwise called before this one: marks added after it are ignored and a module's tests are
# spread over both workers, each building its fixtures (``_groups_in_effect`` checks)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``--matrix``, a test parametrised over ``sor_dialect`` runs on PostgreSQL only
    when it is marked ``dialect`` (its SQL, locking, COPY or row-level security differs);
    every other test runs on SQLite. ``make test-matrix`` (CI) runs both for all."""
    for item in items:
        # under `-n 2 --dist loadgroup` every user of the 4,000-customer broker runs on one
        # worker, which builds it once, instead of both building it
        if "scored" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("scored"))
        # one local Spark (a JVM of ~1.4 GB that takes seconds to start) instead of one per
        # worker: every Spark case runs on the same worker
        elif item.get_closest_marker("spark") is not None:
            item.add_marker(pytest.mark.xdist_group("spark"))
        # every other test stays with its module: a module-scoped fixture (a demo broker, a
        # built workspace) is then built once, not once per worker, and the module's tests
        # run in file order, as they do without xdist (some erase or add to what they share)
        elif item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    if config.getoption("--matrix"):
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_pg = callspec is not None and callspec.params.get("sor_dialect") == "postgres"
        (drop if on_pg and item.get_closest_marker("dialect") is None else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    _groups_in_effect(session.config, session.items)


def _groups_in_effect(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` each worker's test ids end in ``@<group>``; when they do not,
    grouping silently stopped (pytest-xdist 3.8 with pytest 9.2:
    https://github.com/pytest-dev/pytest-xdist/issues/1386, hence ``pytest<9.2`` in
    pyproject.toml) and every module fixture would be built on both workers: refuse to run."""
    if not getattr(config.option, "loadgroup", False) or not items:
        return
    ungrouped = [i.nodeid for i in items if "@" not in i.nodeid.rsplit("]", 1)[-1]]
    if ungrouped:
        raise pytest.UsageError(
            f"--dist loadgroup is not grouping ({len(ungrouped)} tests without a group, e.g. "
            f"{ungrouped[0]}): see tests/conftest.py _groups_in_effect")


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


def _db_name(kind: str) -> str:
    # unique across xdist workers and across suites sharing one server
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"caifu_{kind}_{worker}_{uuid.uuid4().hex[:10]}"


@contextmanager
def _pg_database(pg_admin: str, template: str | None = None, kind: str = "test"
                 ) -> Iterator[str]:
    name = _db_name(kind)
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'
                          + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield pg_admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with _pg_database(pg_admin) as url:
        yield url


@pytest.fixture(scope="session")
def pg_template(pg_admin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a database migrated to head once per session (per xdist worker); tests get
    copies of it (``CREATE DATABASE … TEMPLATE``), much cheaper than running the migrations."""
    with _pg_database(pg_admin, kind="tmpl") as url:
        # migrations only: a database ``init_workspace`` made carries its workspace's claim,
        # and every copy would be refused as another workspace's database
        engine = open_engine(url)
        migrate(engine)
        engine.dispose()  # a template may have no open connection
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def pg_migrated_url(pg_admin: str, pg_template: str) -> Iterator[str]:
    """A PostgreSQL database of one test's own, already migrated to head."""
    with _pg_database(pg_admin, template=pg_template) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite system of record migrated to head once per session; tests copy the file."""
    path = tmp_path_factory.mktemp("sqlite-template") / "sor.db"
    engine = open_engine(f"sqlite:///{path}")  # migrations only, unclaimed (see pg_template)
    migrate(engine)
    with engine.connect() as conn:  # everything in the .db file, nothing left in the WAL
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _migrated_sqlite(template: Path, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sor_dialect(request: pytest.FixtureRequest) -> str:
    """The system of record's database. Without ``--matrix`` the postgres case runs only for
    tests marked ``dialect`` (see ``pytest_collection_modifyitems``)."""
    return str(request.param)


@pytest.fixture
def sor_url(request: pytest.FixtureRequest, sor_dialect: str, tmp_path: Path) -> str:
    """An empty system of record (nothing migrated), on SQLite and on PostgreSQL."""
    if sor_dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'sor.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def migrated_sor_url(request: pytest.FixtureRequest, sor_dialect: str, tmp_path: Path) -> str:
    """A system of record of the test's own, at head, on SQLite and on PostgreSQL."""
    if sor_dialect == "sqlite":
        return _migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "sor.db")
    return str(request.getfixturevalue("pg_migrated_url"))


@pytest.fixture
def workspace(tmp_path: Path, migrated_sor_url: str) -> Iterator[Container]:
    """A migrated workspace with tenant ``acme``, on SQLite and on PostgreSQL."""
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="2GB"), migrated_sor_url)
    create_tenant(c, "acme", "甲乙证券")
    yield c
    c.close()


@pytest.fixture
def sqlite_workspace(tmp_path: Path, sqlite_template: Path) -> Iterator[Container]:
    """A SQLite-only workspace with tenant ``acme`` (for tests of file handling)."""
    _migrated_sqlite(sqlite_template, tmp_path / "ws" / "sor.db")
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


@dataclass(frozen=True)
class Broker:
    """A demo broker prepared once per session: ``root`` is a closed workspace (tenant
    ``acme``, the exports ingested), ``exports`` the generated files with their ground truth."""

    root: Path
    exports: Path
    customers: int
    seed: int

    def copy(self, dest: Path, settings: Settings | None = None) -> Container:
        """A workspace of the caller's own: a copy of ``root`` (its paths are relative and its
        SQLite file lives inside it), open. Much cheaper than ingesting the exports again."""
        shutil.copytree(self.root, dest)
        return build(settings or Settings(duckdb_memory_limit="2GB"), dest)


@pytest.fixture(scope="session")
def small_broker(tmp_path_factory: pytest.TempPathFactory) -> Broker:
    """The small demo broker (600 customers, seed 3), ingested once per session (per xdist
    worker). Tests take ``small_broker.copy(tmp_path / "ws")``, a workspace of their own.
    Modules whose assertions hold only for their own size or seed (the lifecycle counts of
    2,000 customers, the build's redemption-intent messages of seed 5) keep their brokers."""
    base = tmp_path_factory.mktemp("small-broker")
    out = base / "exports"
    generate(out, customers=600, seed=3)
    return ingest_broker(base, out, 600, 3)


def ingest_broker(base: Path, exports: Path, customers: int, seed: int) -> Broker:
    """``exports`` ingested into a new workspace ``base/ws`` (tenant ``acme``), closed with
    everything in its .db file, ready to be copied."""
    c = init_workspace(base / "ws", Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    Ingest(c).ingest("acme", [exports])
    with c.engine.connect() as conn:  # everything in the .db file, nothing left in the WAL
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return Broker(base / "ws", exports, customers, seed)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What caifu logs during the test, as the service's JSON lines."""
    from caifu.api.logs import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    lg = logging.getLogger("caifu")
    # setLevel, not the attribute: it also clears the loggers' cached isEnabledFor answers
    level = lg.level
    lg.setLevel(logging.INFO)
    lg.addHandler(handler)
    yield out
    lg.removeHandler(handler)
    lg.setLevel(level)
