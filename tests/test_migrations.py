"""The migration history matches the models and runs both ways on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from cerberus.db import Base, create_engine, import_models
from cerberus.migrate import alembic_config, head_revision, upgrade
from tests.conftest import Backend, settings_for


async def test_models_and_migrations_agree(backend: Backend) -> None:
    import_models()

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(settings_for(backend))
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_back_to_head(tmp_path: Path) -> None:
    backend = Backend("scratch", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", None, tmp_path)
    settings = settings_for(backend)
    assert (await upgrade(settings)).after == head_revision()

    def downgrade(connection: Connection) -> None:
        config = alembic_config(settings.database_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        connection.commit()

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(downgrade)
    finally:
        await engine.dispose()
    outcome = await upgrade(settings)
    assert outcome.before is None
    assert outcome.after == head_revision()


def test_alembic_runs_from_the_repository_root(repo_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'root.db'}"}
    alembic = str(Path(sys.executable).with_name("alembic"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [alembic, *args], cwd=repo_root, env=env, capture_output=True, text=True, timeout=60
        )

    assert "CREATE TABLE agents" in run("upgrade", "head", "--sql").stdout
    assert run("upgrade", "head").returncode == 0
    assert f"{head_revision()} (head)" in run("current").stdout
