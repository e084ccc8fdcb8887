"""System of record: SQLAlchemy 2 models generated from the contracts, Alembic migrations."""
