"""Upgrading the schema safely when several instances start at once: one migrates, others wait."""

from __future__ import annotations

import fcntl
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from cerberus.db import create_engine
from cerberus.settings import Settings

logger = logging.getLogger("cerberus.migrate")

# Any constant shared by every instance works; this one spells "cerberus" in ASCII.
ADVISORY_LOCK_KEY = 0x6365726265727573


@dataclass(frozen=True)
class MigrationOutcome:
    before: str | None
    after: str | None

    @property
    def applied(self) -> bool:
        return self.before != self.after


def alembic_config(url: str, *, output: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", "cerberus:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade_sql(settings: Settings, revision: str = "head") -> str:
    """The SQL an upgrade would run, for review (no connection is made)."""
    output = io.StringIO()
    command.upgrade(alembic_config(settings.database_url, output=output), revision, sql=True)
    return output.getvalue()


async def upgrade(settings: Settings, revision: str = "head") -> MigrationOutcome:
    """Upgrade under a lock so only one of several starting instances runs the migration."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                await connection.commit()
                try:
                    outcome = await connection.run_sync(_upgrade, settings, revision)
                finally:
                    await connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
                    await connection.commit()
            else:
                with _file_lock(settings.DATA_DIR / "migrate.lock"):
                    outcome = await connection.run_sync(_upgrade, settings, revision)
    finally:
        await engine.dispose()
    if outcome.applied:
        logger.info(
            "migrations applied",
            extra={"from_revision": outcome.before, "to_revision": outcome.after},
        )
    else:
        logger.info("schema already current", extra={"revision": outcome.after})
    return outcome


def _upgrade(connection: Connection, settings: Settings, revision: str) -> MigrationOutcome:
    before = MigrationContext.configure(connection).get_current_revision()
    config = alembic_config(settings.database_url)
    target = (
        ScriptDirectory.from_config(config).get_current_head() if revision == "head" else revision
    )
    if before != target:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    after = MigrationContext.configure(connection).get_current_revision()
    return MigrationOutcome(before=before, after=after)


async def current_revision(settings: Settings) -> str | None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
