"""A tenant's WeCom app is cached per container, never across containers.

Found while speeding up the suite: the cache was a module dict keyed by ``id(container)``, so a
container made after another was closed could get the closed one's id — and its tenant's app,
or its "no app". Each container now keeps its own cache (``wecom_shared["apps"]``).
"""

from __future__ import annotations

import gc
from pathlib import Path

from caifu.services.container import Container
from caifu.services.platform.workspace import create_tenant, init_workspace
from caifu.services.scrm import wecom_app
from caifu.settings import Settings

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # 43 characters, the protocol's length


def _configure(c: Container) -> None:
    wecom_app.configure(c, "acme", corp_id="wwcorp", agent_id="1000002", token="tok",
                        encoding_aes_key=AES_KEY, secret="s3cret")


def test_a_new_container_reads_its_own_workspace_not_a_closed_ones_cache(
        sqlite_workspace: Container, tmp_path: Path) -> None:
    _configure(sqlite_workspace)
    app = wecom_app.get_app(sqlite_workspace, "acme")
    assert app is not None and app.corp_id == "wwcorp"
    assert set(sqlite_workspace.wecom_shared["apps"]) == {"acme"}  # the container's own cache
    sqlite_workspace.close()
    gc.collect()  # the closed container's id may now be handed to the next one

    other = init_workspace(tmp_path / "other", Settings(duckdb_memory_limit="1GB"))
    try:
        create_tenant(other, "acme", "另一家证券")  # same tenant id, no WeCom app
        assert wecom_app.get_app(other, "acme") is None
        _configure(other)  # configuring drops the cached "no app" at once
        again = wecom_app.get_app(other, "acme")
        assert again is not None and again.agent_id == "1000002"
    finally:
        other.close()
