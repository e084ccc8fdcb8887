"""Fixtures of the API tests shared across modules: ``client`` (a seeded two-tenant workspace
served in-process, or by uvicorn for tests marked ``real_socket``; on SQLite and PostgreSQL)
lives with the customer tests."""

from tests.api.profiles.test_customers import client  # noqa: F401
