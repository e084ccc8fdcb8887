"""Fixtures of the API tests shared across modules: ``client`` (a seeded two-tenant workspace
behind a real uvicorn server, on SQLite and PostgreSQL) lives with the customer tests."""

from tests.api.profiles.test_customers import client  # noqa: F401
