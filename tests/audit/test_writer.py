"""The audit writer: rows go straight to the driver, yet read back exactly through the model."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.models import Agent
from cerberus.app import CerberusApp
from cerberus.audit import writer as writer_module
from cerberus.audit.models import AuditEvent
from cerberus.audit.sqlite_sink import CHUNK_ROWS
from cerberus.audit.writer import COPY_CHUNK_ROWS, DRIVER_CHUNK_ROWS, UNWRITTEN, AuditWriter
from cerberus.db import create_engine, create_sessionmaker
from cerberus.settings import Settings
from tests.audit.events import add_event, committed_agent, unreachable_engine

TRIGGERED = [
    {
        "guardrail": "pii_email",
        "action": "modify",
        "findings": [{"type": "email", "count": 2, "where": ["params.arguments.text", "é€"]}],
    }
]


def _writer(app: CerberusApp, batch_size: int = 500) -> AuditWriter:
    return AuditWriter(lambda: app.state.sessionmaker, batch_size=batch_size, flush_interval=3600)


def _record(writer: AuditWriter, agent: Agent, decision_id: str, **fields: Any) -> None:
    values: dict[str, Any] = {
        "request_id": "req-1",
        "decision_id": decision_id,
        "organisation_id": agent.organisation_id,
        "workspace_id": agent.workspace_id,
        "agent_id": agent.id,
        "direction": "request",
        "method": "tools/call",
        "tool_name": "echo",
        "action": "allow",
        "guardrails_triggered": [],
        "processing_ms": 0.25,
        "upstream_status": 200,
        "upstream_latency_ms": 3.5,
    }
    values.update(fields)
    writer.record(**values)


async def _events(session: AsyncSession, agent: Agent) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.agent_id == agent.id)
    return list((await session.scalars(statement.order_by(AuditEvent.decision_id))).all())


async def test_written_events_read_back_with_every_value(
    app: CerberusApp, session: AsyncSession
) -> None:
    agent = await committed_agent(session)
    writer = _writer(app)
    before = datetime.now(UTC) - timedelta(seconds=1)
    _record(writer, agent, "d-1", action="modify", guardrails_triggered=TRIGGERED)
    _record(
        writer,
        agent,
        "d-2",
        direction="response",
        method=None,
        tool_name=None,
        upstream_status=None,
        upstream_latency_ms=None,
    )
    await writer.flush()
    after = datetime.now(UTC) + timedelta(seconds=1)

    first, second = await _events(session, agent)
    assert (first.action, first.guardrails_triggered, first.processing_ms) == (
        "modify",
        TRIGGERED,
        0.25,
    )
    assert (first.request_id, first.method, first.tool_name) == ("req-1", "tools/call", "echo")
    assert (first.upstream_status, first.upstream_latency_ms) == (200, 3.5)
    assert (second.direction, second.method, second.tool_name) == ("response", None, None)
    assert (second.guardrails_triggered, second.upstream_status) == ([], None)
    for event in (first, second):
        assert uuid.UUID(event.id).version == 7  # time-ordered (cerberus/ids.py)
        assert event.created_at.tzinfo is not None
        assert before <= event.created_at <= after
    # Time filters (the audit list, analytics, export) find them.
    in_range = select(AuditEvent.id).where(
        AuditEvent.agent_id == agent.id,
        AuditEvent.created_at >= before,
        AuditEvent.created_at <= after,
    )
    assert len((await session.scalars(in_range)).all()) == 2


async def test_timestamps_are_stored_as_the_model_stores_them(
    app: CerberusApp, session: AsyncSession, settings: Settings
) -> None:
    agent = await committed_agent(session)
    modelled = await add_event(session, agent)
    await session.commit()
    writer = _writer(app)
    _record(writer, agent, "written")
    await writer.flush()

    raw = text("SELECT created_at FROM audit_events WHERE decision_id = :d")
    by_model = (await session.execute(raw, {"d": modelled.decision_id})).scalar_one()
    by_writer = (await session.execute(raw, {"d": "written"})).scalar_one()
    if settings.is_postgres:
        assert isinstance(by_writer, datetime)
        assert by_writer.tzinfo is not None
    else:
        # SQLite compares this text in every time filter: same shape as SQLAlchemy's.
        shape = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
        assert shape.fullmatch(by_model)
        assert shape.fullmatch(by_writer)


async def test_a_refused_row_is_dropped_and_the_rest_written(
    app: CerberusApp, session: AsyncSession
) -> None:
    agent = await committed_agent(session)
    existing = await add_event(session, agent)
    await session.commit()
    writer = _writer(app)
    _record(writer, agent, "a")
    _record(writer, agent, existing.decision_id)  # the unique index refuses it
    _record(writer, agent, "b")
    await writer.flush()

    assert writer.pending == 0
    decisions = [event.decision_id for event in await _events(session, agent)]
    assert sorted(decisions) == sorted(["a", "b", existing.decision_id])


async def test_values_orjson_cannot_write_are_written_by_the_stdlib(
    app: CerberusApp, session: AsyncSession
) -> None:
    agent = await committed_agent(session)
    writer = _writer(app)
    triggered = [{"guardrail": "x", "action": "block", "findings": [{"count": 2**70}]}]
    _record(writer, agent, "big", guardrails_triggered=triggered)
    await writer.flush()
    (event,) = await _events(session, agent)
    assert event.guardrails_triggered == triggered


async def test_events_stay_queued_while_the_database_is_unreachable(
    app: CerberusApp, session: AsyncSession, tmp_path: Path
) -> None:
    agent = await committed_agent(session)
    unreachable = unreachable_engine(tmp_path)
    target = {"sessionmaker": create_sessionmaker(unreachable)}
    writer = AuditWriter(lambda: target["sessionmaker"], batch_size=2, flush_interval=3600)
    for index in range(5):
        _record(writer, agent, f"q-{index}")
        writer.used(agent.id)
    try:
        for _ in range(2):
            try:
                await writer.flush()
            except Exception:
                pass
            else:
                raise AssertionError("the flush should have failed")
            assert writer.pending == 5
    finally:
        await unreachable.dispose()

    target["sessionmaker"] = app.state.sessionmaker
    await writer.flush()
    assert writer.pending == 0
    assert len(await _events(session, agent)) == 5
    await session.refresh(agent)
    assert agent.usage_count == 5
    assert agent.last_used_at is not None


async def test_a_connection_killed_in_the_middle_of_a_batch_loses_and_repeats_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL only (its batches go by COPY, chunk after chunk in one transaction): the
    writer's connection is terminated while a batch is being written. The batch stays
    queued, and the next flush writes every event exactly once."""
    if not settings.is_postgres:
        pytest.skip("terminates a PostgreSQL backend")
    import asyncpg

    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    writer = AuditWriter(lambda: sessionmaker, batch_size=1_000_000, flush_interval=3600)
    invalidated: list[BaseException | None] = []
    sqlalchemy_event.listen(
        engine.sync_engine, "invalidate", lambda _c, _r, exc: invalidated.append(exc)
    )
    prefix = f"killed-{uuid.uuid4().hex[:8]}-"
    count = 40 * COPY_CHUNK_ROWS
    for index in range(count):
        writer.record(
            request_id="req",
            decision_id=f"{prefix}{index:05d}",
            organisation_id="o",
            workspace_id="w",
            agent_id="a",
            direction="request",
            action="allow",
        )
    url = engine.url
    observer = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )

    async def kill_the_copy() -> None:
        while True:
            killed = await observer.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND query LIKE 'COPY %' LIMIT 1"
            )
            if killed:
                return
            await asyncio.sleep(0.002)

    try:
        killer = asyncio.create_task(kill_the_copy())
        # Whichever the driver reports of the dead connection: not a refusal of the rows.
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await writer.flush()
        await asyncio.wait_for(killer, 10)
        assert writer.pending == count
        # Discarded at once: back in the pool, the dead connection could still look as if in
        # a transaction, and the next checkout's ping failed on it (a flush, or a key lookup).
        assert len(invalidated) == 1

        caplog.clear()
        await writer.flush()
        assert writer.pending == 0
        # Written whole by the retry: no row was found there already and refused.
        assert not [r for r in caplog.records if r.name == "cerberus.audit"]
        written = await observer.fetchval(
            "SELECT count(DISTINCT decision_id) FROM audit_events WHERE decision_id LIKE $1",
            f"{prefix}%",
        )
        assert written == count
    finally:
        await observer.execute("DELETE FROM audit_events WHERE decision_id LIKE $1", f"{prefix}%")
        await observer.close()
        await engine.dispose()


async def test_a_batch_written_in_chunks_is_one_transaction(
    app: CerberusApp, session: AsyncSession
) -> None:
    """Rows go to the database in chunks (DRIVER_CHUNK_ROWS; CHUNK_ROWS on an SQLite file;
    COPY_CHUNK_ROWS on PostgreSQL), yet a row refused in the last chunk neither loses nor
    repeats the chunks before it."""
    agent = await committed_agent(session)
    existing = await add_event(session, agent)
    await session.commit()
    writer = _writer(app)
    size = 2 * max(DRIVER_CHUNK_ROWS, CHUNK_ROWS, COPY_CHUNK_ROWS) + 3
    for index in range(size):
        _record(writer, agent, f"c-{index:03d}")
    _record(writer, agent, existing.decision_id)  # refused by the unique index, last of all
    await writer.flush()

    assert writer.pending == 0
    decisions = [event.decision_id for event in await _events(session, agent)]
    assert decisions == sorted([f"c-{index:03d}" for index in range(size)] + [existing.decision_id])


async def test_usage_counted_once_when_a_row_of_its_batch_is_refused(
    app: CerberusApp, session: AsyncSession
) -> None:
    """The refused batch's transaction held the usage counts too: they are written once,
    neither lost with the batch nor added again by the retry."""
    agent = await committed_agent(session)
    existing = await add_event(session, agent)
    await session.commit()
    writer = _writer(app)
    for index in range(3):
        _record(writer, agent, f"u-{index}")
        writer.used(agent.id)
    _record(writer, agent, existing.decision_id)
    await writer.flush()
    await writer.flush()

    assert writer.pending == 0
    assert len(await _events(session, agent)) == 4
    await session.refresh(agent)
    assert agent.usage_count == 3


async def test_usage_counts_add_up_across_flushes(app: CerberusApp, session: AsyncSession) -> None:
    agent = await committed_agent(session)
    writer = _writer(app)
    for _ in range(3):
        writer.used(agent.id)
    await writer.flush()
    writer.used(agent.id)
    await writer.flush()
    await session.refresh(agent)
    assert agent.usage_count == 4


async def test_last_used_at_never_moves_back_when_instances_flush_out_of_order(
    app: CerberusApp, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances count uses of one agent; the one that served the older call flushes
    last (its periodic flush came later, or its retry after a database blip). last_used_at
    was set to whatever came last and went back in time; it now keeps the later use."""
    agent = await committed_agent(session)
    clock = SimpleNamespace(time=lambda: 0.0)
    monkeypatch.setattr(writer_module, "time", clock)
    first, second = _writer(app), _writer(app)
    earlier = datetime(2026, 11, 30, 12, 0, 0, 250_000, tzinfo=UTC)
    clock.time = lambda: earlier.timestamp()
    first.used(agent.id)
    clock.time = lambda: (earlier + timedelta(minutes=1)).timestamp()
    second.used(agent.id)

    await second.flush()
    await session.refresh(agent)
    assert agent.last_used_at == earlier + timedelta(minutes=1)
    await first.flush()
    await session.refresh(agent)
    assert agent.usage_count == 2
    assert agent.last_used_at == earlier + timedelta(minutes=1)

    # A later use still moves it forward.
    clock.time = lambda: (earlier + timedelta(minutes=2)).timestamp()
    first.used(agent.id)
    await first.flush()
    await session.refresh(agent)
    assert agent.usage_count == 3
    assert agent.last_used_at == earlier + timedelta(minutes=2)


async def test_stop_drains_every_batch(app: CerberusApp, session: AsyncSession) -> None:
    agent = await committed_agent(session)
    writer = _writer(app, batch_size=3)
    writer.start()
    for index in range(10):
        _record(writer, agent, f"s-{index:02d}")
    await writer.stop()
    assert writer.pending == 0
    assert [event.decision_id for event in await _events(session, agent)] == [
        f"s-{index:02d}" for index in range(10)
    ]


async def test_a_value_too_long_for_its_column_does_not_hold_the_queue(
    app: CerberusApp, session: AsyncSession, settings: Settings
) -> None:
    agent = await committed_agent(session)
    writer = _writer(app)
    _record(writer, agent, "short-1")
    _record(writer, agent, "long", request_id="r" * 65)  # String(64): PostgreSQL refuses it
    _record(writer, agent, "short-2")
    await writer.flush()

    assert writer.pending == 0
    written = {event.decision_id for event in await _events(session, agent)}
    expected = {"short-1", "short-2"} | (set() if settings.is_postgres else {"long"})
    assert written == expected


async def test_findings_are_written_as_they_were_when_queued(
    app: CerberusApp, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    # Serialised when queued: the queue holds text, and a list changed later is not re-read;
    # what no JSON writer takes is dropped there, logged, without raising into the proxy.
    agent = await committed_agent(session)
    writer = _writer(app)
    triggered = [{"guardrail": "pii_email", "action": "modify", "findings": []}]
    _record(writer, agent, "kept", guardrails_triggered=triggered)
    triggered.append({"guardrail": "later", "action": "block", "findings": []})
    _record(writer, agent, "unwritable", guardrails_triggered=[{1j: 1}])
    assert writer.pending == 1
    assert "could not be serialised" in caplog.text
    await writer.flush()
    (event,) = await _events(session, agent)
    assert event.guardrails_triggered == [triggered[0]]


def test_the_gateway_imports_sqlite3_only_to_write_to_an_sqlite_file() -> None:
    # A process on PostgreSQL never writes through the SQLite sink: sqlite3 cost it ~0.9 MiB.
    result = subprocess.run(
        [sys.executable, "-c", "import sys, cerberus.app; print('sqlite3' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


async def test_a_nul_character_in_a_recorded_value_does_not_lose_the_event(
    app: CerberusApp, session: AsyncSession
) -> None:
    # A client chooses the tool name and the method; PostgreSQL's text refuses U+0000.
    agent = await committed_agent(session)
    writer = _writer(app)
    where = ["$.result.structuredContent['a\x00b']"]  # an object key, the upstream's
    triggered = [{"guardrail": "pii_email", "action": "modify", "findings": [{"where": where}]}]
    _record(
        writer,
        agent,
        "nul",
        method="tools/\x00call",
        tool_name="ec\x00ho",
        guardrails_triggered=triggered,
    )
    await writer.flush()
    (event,) = await _events(session, agent)
    assert (event.method, event.tool_name) == ("tools/\ufffdcall", "ec\ufffdho")
    assert event.guardrails_triggered == triggered


@asynccontextmanager
async def silent_database() -> AsyncIterator[str]:
    """A PostgreSQL URL whose server accepts connections and never answers (a stalled
    database, or one whose tables a migration holds locked)."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql+asyncpg://cerberus@127.0.0.1:{port}/audit"
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_database_that_never_answers_cannot_hold_shutdown_nor_lose_the_queue(
    session: AsyncSession, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stop() waited for ever (182 s here before asyncpg gave up): an orchestrator kills the
    # process first, and the queue was gone without a line.
    agent = await committed_agent(session)
    monkeypatch.setattr(writer_module, "STOP_TIMEOUT_SECONDS", 0.5)
    async with silent_database() as url:
        engine = create_engine(Settings(DATABASE_URL=url))
        sessionmaker = create_sessionmaker(engine)
        writer = AuditWriter(lambda: sessionmaker, batch_size=2, flush_interval=3600)
        writer.start()
        for index in range(3):
            _record(writer, agent, f"stalled-{index}")
        with caplog.at_level(logging.INFO, logger="cerberus.audit"):
            await asyncio.wait_for(writer.stop(), 10)
        await engine.dispose()
    messages = [record.getMessage() for record in caplog.records]
    assert "audit flush did not finish at shutdown" in messages
    logged = [r.audit_event["decision_id"] for r in caplog.records if r.getMessage() == UNWRITTEN]
    assert sorted(logged) == ["stalled-0", "stalled-1", "stalled-2"]
    assert writer.pending == 0


async def test_a_flush_that_never_ends_times_out_and_the_queue_stays_bounded(
    session: AsyncSession, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hung flush held the queue, which grew unseen: only a failed flush spilled it.
    agent = await committed_agent(session)
    monkeypatch.setattr(writer_module, "FLUSH_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(writer_module, "RETRY_SECONDS", 0.0)
    monkeypatch.setattr(writer_module, "MAX_QUEUED", 2)
    monkeypatch.setattr(writer_module, "STOP_TIMEOUT_SECONDS", 0.5)
    async with silent_database() as url:
        engine = create_engine(Settings(DATABASE_URL=url))
        sessionmaker = create_sessionmaker(engine)
        writer = AuditWriter(lambda: sessionmaker, batch_size=500, flush_interval=0.05)
        writer.start()
        for index in range(5):
            _record(writer, agent, f"queued-{index}")
        with caplog.at_level(logging.INFO, logger="cerberus.audit"):
            for _ in range(100):
                if writer.pending <= 2:
                    break
                await asyncio.sleep(0.05)
            assert writer.pending == 2
            spilled = [
                r.audit_event["decision_id"] for r in caplog.records if r.getMessage() == UNWRITTEN
            ]
            assert spilled == ["queued-0", "queued-1", "queued-2"]
            await asyncio.wait_for(writer.stop(), 10)
        await engine.dispose()


async def test_a_row_stored_by_a_flush_whose_answer_was_lost_is_not_called_dropped(
    app: CerberusApp, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    # The retry after a commit whose acknowledgement was lost finds the row there; it was
    # logged as refused and dropped, which an admin reads as an event lost.
    agent = await committed_agent(session)
    writer = _writer(app)
    _record(writer, agent, "stored-once")
    await writer.flush()
    _record(writer, agent, "stored-once")  # the same event, queued again
    _record(writer, agent, "after-it")
    with caplog.at_level(logging.INFO, logger="cerberus.audit"):
        await writer.flush()
    messages = [record.getMessage() for record in caplog.records]
    assert "audit event already stored" in messages
    assert "audit event refused by the database; dropped" not in messages
    decisions = [event.decision_id for event in await _events(session, agent)]
    assert sorted(decisions) == ["after-it", "stored-once"]
