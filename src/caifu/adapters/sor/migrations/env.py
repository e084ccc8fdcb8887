"""Alembic environment: caifu passes the connection in; there is no alembic.ini URL."""

from __future__ import annotations

from alembic import context

from caifu.adapters.sor.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via caifu.adapters.sor.store.migrate
    raise RuntimeError("run migrations through caifu (caifu init / caifu migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
