"""Several instances starting at once on a fresh PostgreSQL database: one migrates, all serve."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL, TEST_SECRET_KEY, fresh_postgres_database
from tests.servers import cerberus_servers

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL is None, reason="needs CERBERUS_TEST_DATABASE_URL (PostgreSQL)"
)


def applied_count(log: str) -> int:
    messages = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return sum(1 for entry in messages if entry.get("message") == "migrations applied")


def test_three_instances_on_a_fresh_database_migrate_once_and_all_serve(
    tmp_path: Path,
) -> None:
    assert TEST_DATABASE_URL is not None
    database = fresh_postgres_database(TEST_DATABASE_URL)
    url = asyncio.run(database.__aenter__())
    try:
        env = {
            "DATABASE_URL": url,
            "RUN_MIGRATIONS_ON_STARTUP": "true",
            "LOG_LEVEL": "INFO",
            "SECRET_KEY": TEST_SECRET_KEY,
        }
        with cerberus_servers(3, env, tmp_path) as servers:
            for server in servers:
                response = httpx.get(f"{server.url}/health/detailed", timeout=5)
                assert response.json()["checks"]["database"]["status"] == "healthy"
            logs = [server.log() for server in servers]
    finally:
        asyncio.run(database.__aexit__())
    assert sum(applied_count(log) for log in logs) == 1
