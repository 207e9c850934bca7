"""The embedded SQLite database behaves under concurrent sessions as PostgreSQL does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cerberus.db import create_engine, create_sessionmaker
from cerberus.migrate import upgrade
from cerberus.tenancy.models import Organisation
from tests.conftest import Backend, settings_for


async def test_read_then_write_does_not_fail_when_another_session_wrote_meanwhile(
    tmp_path: Path,
) -> None:
    """Deferred SQLite transactions fail with "database is locked" on read-then-write."""
    settings = settings_for(
        Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", None, tmp_path)
    )
    await upgrade(settings)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as setup:
            setup.add(Organisation(name="A", slug="a"))
            await setup.commit()

        async def other_writer() -> None:
            async with sessionmaker() as other:
                other.add(Organisation(name="B", slug="b"))
                await other.commit()

        async with sessionmaker() as first:
            found = (await first.execute(select(Organisation))).scalars().all()
            writer = asyncio.create_task(other_writer())
            await asyncio.sleep(0.2)
            found[0].name = "A renamed"
            await first.commit()
        await asyncio.wait_for(writer, 10)

        async with sessionmaker() as check:
            names = sorted((await check.execute(select(Organisation.name))).scalars())
        assert names == ["A renamed", "B"]
    finally:
        await engine.dispose()


async def test_a_failed_statement_names_no_value_it_was_given(backend: Backend) -> None:
    # Its error is logged (the control plane's 500s): the values were password hashes, key
    # hashes and whatever a client sent.
    engine = create_engine(settings_for(backend))
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            session.add(Organisation(name="x", slug="secret-slug-value"))
            await session.commit()
        async with sessionmaker() as session:
            session.add(Organisation(name="y", slug="secret-slug-value"))
            with pytest.raises(IntegrityError) as failed:
                await session.commit()
        assert "secret-slug-value" not in str(failed.value)
    finally:
        await engine.dispose()
