"""The audit writer on an SQLite file reached through an engine, as `cerberus serve` runs it:
batches go through the stdlib driver (audit/sqlite_sink.py), not the tests' rolled-back session."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cerberus.agents.models import Agent
from cerberus.audit import writer as writer_module
from cerberus.audit.models import AuditEvent
from cerberus.audit.sqlite_sink import (
    BACKLOG_CHUNK_ROWS,
    BACKLOG_ROWS,
    BUSY_CHUNK_ROWS,
    BUSY_ROWS,
    CHUNK_ROWS,
    SqliteSink,
)
from cerberus.audit.writer import AuditWriter
from cerberus.db import create_engine, create_sessionmaker
from cerberus.migrate import upgrade
from cerberus.settings import Settings
from tests.factories import create_agent, create_organisation, create_workspace


@dataclass
class Embedded:
    path: Path
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    agent: Agent


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    path = tmp_path / "cerberus.db"
    settings = Settings(DATABASE_URL=f"sqlite+aiosqlite:///{path}", DATA_DIR=tmp_path)
    await upgrade(settings)
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        workspace = await create_workspace(session, await create_organisation(session))
        agent, _ = await create_agent(session, workspace)
        await session.commit()
    try:
        yield Embedded(path, engine, sessions, agent)
    finally:
        await engine.dispose()


def _record(writer: AuditWriter, agent: Agent, decision_id: str) -> None:
    writer.record(
        request_id="req",
        decision_id=decision_id,
        organisation_id=agent.organisation_id,
        workspace_id=agent.workspace_id,
        agent_id=agent.id,
        direction="request",
        action="modify",
        method="tools/call",
        tool_name="lookup",
        guardrails_triggered=[{"guardrail": "pii_email", "action": "modify", "findings": []}],
        processing_ms=0.5,
        upstream_status=200,
        upstream_latency_ms=1.5,
    )


async def _written(embedded: Embedded) -> tuple[list[AuditEvent], Agent]:
    async with embedded.sessions() as session:
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
        agent = await session.get(Agent, embedded.agent.id)
        assert agent is not None
        return list(events), agent


async def test_batches_and_usage_are_written_through_the_stdlib_driver(
    embedded: Embedded,
) -> None:
    writer = AuditWriter(lambda: embedded.sessions, batch_size=250, flush_interval=3600)
    for index in range(600):
        _record(writer, embedded.agent, f"d-{index:04d}")
        writer.used(embedded.agent.id)
    await writer.stop()
    events, agent = await _written(embedded)
    assert sorted(event.decision_id for event in events) == [f"d-{i:04d}" for i in range(600)]
    assert all(uuid.UUID(event.id).version == 7 for event in events)
    first = events[0]
    assert first.guardrails_triggered == [
        {"guardrail": "pii_email", "action": "modify", "findings": []}
    ]
    assert (first.tool_name, first.processing_ms, first.upstream_status) == ("lookup", 0.5, 200)
    assert first.created_at.tzinfo is not None
    assert agent.usage_count == 600
    assert agent.last_used_at is not None


async def test_last_used_at_keeps_the_later_use_through_the_stdlib_driver(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances' flushes, the older use last: last_used_at stays at the later one."""
    later = datetime(2026, 11, 30, 12, 1, 0, 500_000, tzinfo=UTC)
    clock = SimpleNamespace(time=lambda: 0.0)
    monkeypatch.setattr(writer_module, "time", clock)
    first = AuditWriter(lambda: embedded.sessions, batch_size=250, flush_interval=3600)
    second = AuditWriter(lambda: embedded.sessions, batch_size=250, flush_interval=3600)
    try:
        clock.time = lambda: (later - timedelta(minutes=1)).timestamp()
        first.used(embedded.agent.id)
        clock.time = later.timestamp
        second.used(embedded.agent.id)
        await second.flush()
        await first.flush()
    finally:
        await first.stop()
        await second.stop()
    _, agent = await _written(embedded)
    assert agent.usage_count == 2
    assert agent.last_used_at == later


async def test_a_held_write_lock_delays_the_batch_without_stopping_the_loop(
    embedded: Embedded,
) -> None:
    writer = AuditWriter(lambda: embedded.sessions, batch_size=500, flush_interval=3600)
    for index in range(10):
        _record(writer, embedded.agent, f"w-{index}")
    other = sqlite3.connect(embedded.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0.3)
    assert not flushing.done()
    assert ticks >= 10  # the loop kept running while the flush waited for the lock
    other.execute("ROLLBACK")
    other.close()
    await flushing
    ticker.cancel()
    await writer.stop()
    events, _ = await _written(embedded)
    assert len(events) == 10


async def test_a_refused_row_is_dropped_and_the_rest_written(embedded: Embedded) -> None:
    writer = AuditWriter(lambda: embedded.sessions, batch_size=500, flush_interval=3600)
    _record(writer, embedded.agent, "same")
    _record(writer, embedded.agent, "same")  # decision ids are unique: the second is refused
    _record(writer, embedded.agent, "other")
    await writer.stop()
    events, _ = await _written(embedded)
    assert sorted(event.decision_id for event in events) == ["other", "same"]
    assert writer.pending == 0


async def test_rows_stay_queued_until_the_file_can_be_opened(
    embedded: Embedded, tmp_path: Path
) -> None:
    missing = create_engine(
        Settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'cerberus.db'}")
    )
    target = {"sessions": create_sessionmaker(missing)}
    writer = AuditWriter(lambda: target["sessions"], batch_size=500, flush_interval=3600)
    _record(writer, embedded.agent, "kept")
    writer.used(embedded.agent.id)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await writer.flush()
        assert writer.pending == 1
    finally:
        await missing.dispose()
    target["sessions"] = embedded.sessions
    await writer.stop()
    events, agent = await _written(embedded)
    assert [event.decision_id for event in events] == ["kept"]
    assert agent.usage_count == 1


async def test_a_flush_writes_what_was_queued_when_it_began(embedded: Embedded) -> None:
    # Events queued while a flush runs wait for the next one: a flush that looped until the
    # queue was empty kept a busy gateway writing tiny transactions back to back.
    writer = AuditWriter(lambda: embedded.sessions, batch_size=500, flush_interval=3600)
    for index in range(150):
        _record(writer, embedded.agent, f"before-{index}")
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)  # the flush writes its first chunk of rows, then lets the loop run
    for index in range(5):
        _record(writer, embedded.agent, f"during-{index}")
        writer.used(embedded.agent.id)
    await flushing
    assert writer.pending == 5
    events, _ = await _written(embedded)
    assert len(events) == 150
    await writer.stop()  # stop writes everything, however often it takes
    events, agent = await _written(embedded)
    assert len(events) == 155
    assert agent.usage_count == 5


async def _loop_turns_while_writing(path: Path, rows: int, backlog: int) -> int:
    """How many times the event loop served something else while the sink wrote `rows`."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS u (v INTEGER)")
    sink = SqliteSink(str(path), "INSERT INTO t VALUES (?)", "INSERT INTO u VALUES (?)")
    turns, done = 0, False

    async def count_turns() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.ensure_future(count_turns())
    await asyncio.sleep(0)
    try:
        await sink.write([(value,) for value in range(rows)], [], backlog=backlog)
    finally:
        done = True
        await counter
        sink.close()
    return turns


async def test_a_writer_falling_behind_writes_bigger_chunks(tmp_path: Path) -> None:
    # With 25-row chunks the embedded writer fell behind a sustained ~3,000 calls/s: the queue
    # (memory) grew by thousands of events a minute. Busy, it yields a third as often as when
    # it keeps up; behind, an eighth as often as busy.
    rows = 40 * CHUNK_ROWS
    keeping_up = await _loop_turns_while_writing(tmp_path / "a.db", rows, backlog=0)
    busy = await _loop_turns_while_writing(tmp_path / "c.db", rows, backlog=BUSY_ROWS + 1)
    behind = await _loop_turns_while_writing(tmp_path / "b.db", rows, backlog=BACKLOG_ROWS + 1)
    assert keeping_up >= rows // CHUNK_ROWS - 1
    assert rows // BUSY_CHUNK_ROWS - 1 <= busy <= rows // BUSY_CHUNK_ROWS + 1
    assert behind <= rows // BACKLOG_CHUNK_ROWS + 1
