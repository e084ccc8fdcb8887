"""A workspace's database is its own: caifu.yaml keeps a SQLite path inside the workspace
relative to it, so a copy opens the copy's database; `caifu init` refuses to share one
silently."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from caifu.core.errors import WorkspaceError
from caifu.services.container import build
from caifu.services.platform.workspace import create_tenant, init_workspace, list_tenants
from caifu.settings import Settings

SETTINGS = Settings(duckdb_memory_limit="1GB")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tenants(root: Path) -> list[str]:
    c = build(SETTINGS, root)
    try:
        return [t.tenant_id for t in list_tenants(c)]
    finally:
        c.close()


def test_a_copied_workspace_writes_its_own_database(tmp_path: Path) -> None:
    original = tmp_path / "a"
    c = init_workspace(original, SETTINGS)
    create_tenant(c, "acme", "甲乙证券")
    c.close()
    config = yaml.safe_load((original / "caifu.yaml").read_text("utf-8"))
    assert config["sor_url"] == "sqlite:///sor.db"  # relative: resolved against the folder
    before = _digest(original / "sor.db")

    copy = tmp_path / "moved" / "b"
    shutil.copytree(original, copy)
    c = build(SETTINGS, copy)
    assert c.sor_url == f"sqlite:///{(copy / 'sor.db').resolve()}"
    create_tenant(c, "beta", "乙")
    c.close()
    assert _tenants(copy) == ["acme", "beta"]
    assert _tenants(original) == ["acme"]
    assert _digest(original / "sor.db") == before
    # and re-initialising the copy (an upgrade) keeps its own database
    init_workspace(copy, SETTINGS).close()
    assert _tenants(copy) == ["acme", "beta"] and _tenants(original) == ["acme"]


def test_a_copy_of_an_older_workspace_file_is_refused_then_repaired(tmp_path: Path) -> None:
    """caifu.yaml as earlier versions wrote it: the absolute path of the original's file."""
    original = tmp_path / "a"
    init_workspace(original, SETTINGS).close()
    copy = tmp_path / "b"
    shutil.copytree(original, copy)
    legacy = f"sqlite:///{(original / 'sor.db').resolve()}"
    (copy / "caifu.yaml").write_text(yaml.safe_dump({"version": 1, "sor_url": legacy,
                                                     "lake": "lake"}), "utf-8")
    before = _digest(original / "sor.db")
    with pytest.raises(WorkspaceError, match=r"points at .*a/sor\.db, outside this workspace.*"
                                             r"copied or moved.*caifu init"):
        build(SETTINGS, copy)
    c = init_workspace(copy, SETTINGS)  # re-points it to its own file
    create_tenant(c, "beta", "乙")
    c.close()
    assert yaml.safe_load((copy / "caifu.yaml").read_text("utf-8"))["sor_url"] == \
        "sqlite:///sor.db"
    assert _tenants(copy) == ["beta"] and _tenants(original) == []
    assert _digest(original / "sor.db") == before


def test_init_on_another_workspaces_sqlite_file_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "a"
    c = init_workspace(first, SETTINGS)
    create_tenant(c, "acme", "甲乙证券")
    c.close()
    url = f"sqlite:///{(first / 'sor.db').resolve()}"
    before = _digest(first / "sor.db")
    with pytest.raises(WorkspaceError, match=r"inside the workspace at .*/a: .*"
                                             r"--share-database"):
        init_workspace(tmp_path / "b", SETTINGS, url)
    assert _digest(first / "sor.db") == before
    assert not (tmp_path / "b" / "caifu.yaml").exists()
    # said explicitly, sharing is allowed, and remembered when the workspace is opened
    shared = init_workspace(tmp_path / "b", SETTINGS, url, share_database=True)
    assert [t.tenant_id for t in list_tenants(shared)] == ["acme"]
    shared.close()
    assert _tenants(tmp_path / "b") == ["acme"]


def test_init_on_a_database_another_workspace_uses_is_refused(tmp_path: Path,
                                                              sor_url: str) -> None:
    """A database outside any workspace folder (PostgreSQL, or a SQLite file elsewhere):
    the first workspace claims it; a second one is refused unless sharing is said."""
    c = init_workspace(tmp_path / "a", SETTINGS, sor_url)
    create_tenant(c, "acme", "甲乙证券")
    c.close()
    with pytest.raises(WorkspaceError, match="belongs to another workspace .*--share-database"):
        init_workspace(tmp_path / "b", SETTINGS, sor_url)
    # the first one re-initialises (upgrades) its own without being told the URL again
    again = init_workspace(tmp_path / "a", Settings(duckdb_memory_limit="1GB"))
    assert again.sor_url == sor_url and [t.tenant_id for t in list_tenants(again)] == ["acme"]
    again.close()
    assert _tenants(tmp_path / "a") == ["acme"]
    shared = init_workspace(tmp_path / "b", SETTINGS, sor_url, share_database=True)
    assert [t.tenant_id for t in list_tenants(shared)] == ["acme"]
    shared.close()


def test_a_database_with_tenants_but_no_claim_is_refused(tmp_path: Path) -> None:
    """A database an older caifu initialised (tenants, no claim) is another workspace's."""
    from sqlalchemy import delete

    from caifu.adapters.sor.models import schema_version

    db = tmp_path / "shared" / "sor.db"
    db.parent.mkdir()
    c = init_workspace(tmp_path / "a", SETTINGS, f"sqlite:///{db}")
    create_tenant(c, "acme", "甲乙证券")
    with c.engine.begin() as conn:
        conn.execute(delete(schema_version))
    c.close()
    with pytest.raises(WorkspaceError, match=r"already holds tenants \(acme\)"):
        init_workspace(tmp_path / "b", SETTINGS, f"sqlite:///{db}")
