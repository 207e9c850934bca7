"""Alembic migrations shipped in the package, run under a PostgreSQL advisory lock."""
