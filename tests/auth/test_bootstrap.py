"""The first super_admin, from the CLI or from CERBERUS_ADMIN_EMAIL/PASSWORD at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cerberus.app import create_app
from cerberus.cli import build_parser
from cerberus.settings import Settings
from cerberus.tenancy.models import User
from tests.conftest import TEST_DATABASE_URL, TEST_SECRET_KEY, fresh_postgres_database

LOGIN = "/control-plane/api/v1/auth/login"


@pytest.fixture
async def empty_database(backend_name: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database nobody has used yet, on this backend (start-up commits for real)."""
    if backend_name == "embedded":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    assert TEST_DATABASE_URL is not None
    async with fresh_postgres_database(TEST_DATABASE_URL) as url:
        yield url


def _settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "APP_ENV": "test",
        "DATABASE_URL": url,
        "DATA_DIR": tmp_path,
        "SECRET_KEY": TEST_SECRET_KEY,
        "RUN_MIGRATIONS_ON_STARTUP": True,
        "LOG_LEVEL": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _login(settings: Settings, email: str, password: str) -> int:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(LOGIN, json={"email": email, "password": password})
            return response.status_code


async def test_environment_creates_the_first_super_admin_once(
    empty_database: str, tmp_path: Path
) -> None:
    first = _settings(
        empty_database,
        tmp_path,
        CERBERUS_ADMIN_EMAIL="root@example.com",
        CERBERUS_ADMIN_PASSWORD="first-password",
    )
    second = _settings(
        empty_database,
        tmp_path,
        CERBERUS_ADMIN_EMAIL="other@example.com",
        CERBERUS_ADMIN_PASSWORD="second-password",
    )

    assert await _login(first, "root@example.com", "first-password") == 200
    # A super_admin exists now: the variables change nothing on later starts.
    assert await _login(second, "other@example.com", "second-password") == 401
    assert await _login(second, "root@example.com", "first-password") == 200


async def test_without_the_variables_nobody_is_created(empty_database: str, tmp_path: Path) -> None:
    settings = _settings(empty_database, tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app), app.state.sessionmaker() as session:
        assert (await session.scalars(select(User))).all() == []


def _cli(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    code: int = args.command(args, settings)
    return code


def test_cli_creates_a_super_admin_and_refuses_a_duplicate_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cerberus.cli import CommandError

    settings = _settings(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", tmp_path)
    command = ("admin", "create-superuser", "--email", "Root@Example.com")

    assert _cli(settings, *command, "--password", "long-enough-pw") == 0
    assert "created super_admin root@example.com" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already exists"):
        _cli(settings, *command, "--password", "long-enough-pw")
    with pytest.raises(CommandError, match=r"^password: must be at least 8 characters$"):
        _cli(settings, "admin", "create-superuser", "--email", "b@example.com", "--password", "x")
    with pytest.raises(CommandError, match=r"^email: "):
        _cli(settings, "admin", "create-superuser", "--email", "nope", "--password", "long-pw-1")
