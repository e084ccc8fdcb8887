"""Typed settings: one object, read when an entry point starts, passed down from there."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    # The service (`caifu serve`): signs console session tokens; required there, and refused
    # when it is short or a placeholder (see `secret_problem`).
    secret_key: str | None = None
    session_minutes: int = 60
    session_quota_per_minute: int = 1200  # console users, per user (API keys carry their own)
    # failed sign-ins (POST /v1/auth/login) allowed per user id and per client address
    # within the window; past either, sign-in answers 429 until the oldest failure ages out
    login_failures_per_user: int = Field(10, ge=1)
    login_failures_per_address: int = Field(30, ge=1)
    login_failure_window_seconds: int = Field(900, ge=1)
    max_body_bytes: int = 1_000_000
    # an upload (POST /v1/ingest/files) streams to disk; this bounds one file
    max_upload_bytes: int = 2_000_000_000
    # the service runs queued jobs in a worker thread; off for a read-only replica
    run_jobs: bool = True
    # the service applies pushed events (POST /v1/events/…) in micro-batches in a thread
    run_events: bool = True
    # where customers reach this service: campaign tracking links are <this>/t/<token>
    public_base_url: str = "http://127.0.0.1:8000"
    # WeCom callbacks: a timestamp further than this from now is a replay (STALE_TIMESTAMP)
    wecom_replay_window_seconds: int = 300
    shutdown_seconds: float = 30.0  # how long a stopping service waits for a running job

    def secret_problem(self) -> str | None:
        """Why ``secret_key`` cannot sign sessions, or None."""
        key = self.secret_key or ""
        if not key:
            return "CAIFU_SECRET_KEY is not set (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        if len(key) < 32 or key.lower() in PLACEHOLDERS or len(set(key)) < 8:
            return "CAIFU_SECRET_KEY looks like a placeholder: use at least 32 random characters"
        return None


PLACEHOLDERS = frozenset({"changeme", "change-me", "changethis", "secret", "password",
                          "caifu", "test", "dev"})
