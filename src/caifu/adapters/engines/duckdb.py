"""Ephemeral in-process DuckDB for one job, reached through Ibis.

DuckDB must never fetch an extension at run time (no network in CI or at many brokers), so
auto-install and auto-load are off; what caifu needs (Parquet, JSON, ICU) is built in.
"""

from __future__ import annotations

from pathlib import Path

import ibis
from ibis.backends.duckdb import Backend


def connect(temp_dir: Path | None = None, memory_limit: str | None = None,
            threads: int | None = None) -> Backend:
    config: dict[str, str | bool | int] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
    }
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_dir)
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    return ibis.duckdb.connect(":memory:", **config)
