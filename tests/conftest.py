"""Fixtures shared by the whole suite: backends from the environment, the app, an API client.

Every database- and cache-dependent test runs once on the embedded default (a SQLite file and
the in-process cache) and, when CERBERUS_TEST_DATABASE_URL and CERBERUS_TEST_REDIS_URL are set
(CI sets them), once more on PostgreSQL + Redis. If those are set but unreachable the tests
fail; they never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.app import CerberusApp, create_app
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.migrate import upgrade
from cerberus.settings import Settings
from cerberus.tenancy.models import User

TEST_DATABASE_URL = os.environ.get("CERBERUS_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("CERBERUS_TEST_REDIS_URL")
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-for-production-0123456789"

BACKENDS = ["embedded"] + (["postgres"] if TEST_DATABASE_URL and TEST_REDIS_URL else [])


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    data_dir: Path


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def backend(
    backend_name: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """A freshly migrated database for this test session, on one backend."""
    data_dir = tmp_path_factory.mktemp(f"backend-{backend_name}")
    if backend_name == "embedded":
        url = f"sqlite+aiosqlite:///{data_dir / 'test.db'}"
        chosen = Backend("embedded", url, None, data_dir)
        await upgrade(settings_for(chosen))
        yield chosen
        return
    assert TEST_DATABASE_URL is not None
    async with fresh_postgres_database(TEST_DATABASE_URL) as url:
        chosen = Backend("postgres", url, TEST_REDIS_URL, data_dir)
        await upgrade(settings_for(chosen))
        yield chosen


def settings_for(backend: Backend, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "APP_ENV": "test",
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url,
        "DATA_DIR": backend.data_dir,
        "RUN_MIGRATIONS_ON_STARTUP": False,
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(backend: Backend) -> Settings:
    return settings_for(backend)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[CerberusApp]:
    """The app with its lifespan running; every database write is rolled back afterwards."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await flush_test_cache(settings)
        async with application.state.engine.connect() as connection:
            transaction = await connection.begin()
            application.state.sessionmaker = async_sessionmaker(
                bind=connection,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            )
            try:
                yield application
            finally:
                await transaction.rollback()


@pytest.fixture
async def client(app: CerberusApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def auth_headers(settings: Settings, user: User) -> dict[str, str]:
    """An Authorization header carrying a fresh access token for the user."""
    from cerberus.auth.tokens import issue

    return {"Authorization": f"Bearer {issue(user, settings, 'access').token}"}


@pytest.fixture
def headers_for(settings: Settings) -> Callable[[User], dict[str, str]]:
    """`headers_for(user)`: the Authorization header of an access token for that user."""
    return lambda user: auth_headers(settings, user)


class Invalidations(list[Invalidation]):
    """Invalidation events seen on the shared cache's channel since the fixture started."""

    async def wait_for(self, kind: str, object_id: str) -> Invalidation:
        with anyio.fail_after(10):
            while True:
                for event in self:
                    if (event.kind, event.id) == (kind, object_id):
                        return event
                await anyio.sleep(0.01)

    async def wait_until(self, arrived: Callable[[], bool]) -> None:
        """Until `arrived()` holds: with Redis, events come on the channel after the answer
        to the request that published them, each in its own time."""
        with anyio.fail_after(10):
            while True:
                if arrived():
                    return
                await anyio.sleep(0.01)


@pytest.fixture
async def invalidations(app: CerberusApp) -> Invalidations:
    seen = Invalidations()
    await app.state.cache.subscribe(CHANNEL, lambda raw: seen.append(Invalidation.decode(raw)))
    return seen


@pytest.fixture
async def session(app: CerberusApp) -> AsyncIterator[AsyncSession]:
    """A session on the same rolled-back connection the app's requests use."""
    async with app.state.sessionmaker() as db_session:
        yield db_session


async def flush_test_cache(settings: Settings) -> None:
    if settings.REDIS_URL:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.REDIS_URL)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()


class fresh_postgres_database:
    """Create a uniquely named database next to the given one, and drop it afterwards."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self._admin = make_url(admin_url)
        self.name = f"cerberus_test_{uuid.uuid4().hex[:12]}"

    async def __aenter__(self) -> str:
        await self._execute(f'CREATE DATABASE "{self.name}"')
        return self._admin.set(database=self.name).render_as_string(hide_password=False)

    async def __aexit__(self, *exc: object) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def _execute(self, statement: str) -> None:
        import asyncpg

        url = self._admin
        connection = await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database or "postgres",
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
