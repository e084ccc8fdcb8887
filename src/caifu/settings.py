"""Typed settings: one object, read when an entry point starts, passed down from there."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """caifu settings; environment variables are ``CAIFU_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CAIFU_", extra="ignore")

    workspace: Path = Path("caifu-workspace")
    # System of record; default is SQLite (WAL) inside the workspace.
    sor_url: str | None = None
    # DuckDB per job: memory cap and spill directory keep big ingests within the machine.
    duckdb_memory_limit: str = "6GB"
    duckdb_threads: int | None = None
    # Spark master for `--engine spark`: local mode by default, or a cluster URL.
    spark_master: str = "local[2]"
