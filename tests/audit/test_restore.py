"""Events a stopping gateway could not store are logged whole, and written back from the log."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.models import Agent
from cerberus.app import CerberusApp
from cerberus.audit import writer as writer_module
from cerberus.audit.models import AuditEvent
from cerberus.audit.restore import restore
from cerberus.audit.writer import UNWRITTEN, AuditWriter
from cerberus.db import create_sessionmaker
from cerberus.logs import JsonFormatter
from tests.audit.events import committed_agent, unreachable_engine

FAILED_AT_SHUTDOWN = "audit flush failed at shutdown"

TRIGGERED = [
    {
        "guardrail": "pii_email",
        "action": "modify",
        "findings": [{"type": "email", "count": 2, "where": ["params.arguments.text"]}],
    }
]


def _values(agent: Agent, index: int) -> dict[str, Any]:
    return {
        "request_id": f"req-{index}",
        "decision_id": f"unwritten-{index}",
        "organisation_id": agent.organisation_id,
        "workspace_id": agent.workspace_id,
        "agent_id": agent.id,
        "direction": "response" if index % 2 else "request",
        "method": "tools/call",
        "tool_name": None if index == 2 else f"tool-{index}",
        "action": "modify" if index == 1 else "allow",
        "guardrails_triggered": TRIGGERED if index == 1 else [],
        "processing_ms": 0.25 * index,
        "upstream_status": None if index == 2 else 200,
        "upstream_latency_ms": None if index == 2 else 3.5,
    }


@dataclass
class Stopped:
    agent: Agent
    recorded: list[dict[str, Any]]  # the values of each event queued
    lines: list[str]  # the writer's log lines, as the gateway's formatter writes them


@pytest.fixture
async def stopped(
    app: CerberusApp,
    session: AsyncSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Stopped:
    """Three events queued on a writer whose database cannot be reached, then its stop."""
    agent = await committed_agent(session)
    monkeypatch.setattr(writer_module, "RETRY_SECONDS", 0.0)
    unreachable = unreachable_engine(tmp_path)
    sessionmaker = create_sessionmaker(unreachable)
    writer = AuditWriter(lambda: sessionmaker, batch_size=2, flush_interval=3600)
    writer.start()
    recorded = [_values(agent, index) for index in range(3)]
    for values in recorded:
        writer.record(**values)
        writer.used(agent.id)
    try:
        with caplog.at_level(logging.INFO, logger="cerberus.audit"):
            await writer.stop()
    finally:
        await unreachable.dispose()
    assert writer.pending == 0
    formatter = JsonFormatter()
    return Stopped(agent, recorded, [formatter.format(record) for record in caplog.records])


async def test_events_the_database_cannot_take_at_shutdown_are_logged_whole(
    stopped: Stopped,
) -> None:
    entries = [orjson.loads(line) for line in stopped.lines]
    logged = [entry["audit_event"] for entry in entries if entry["message"] == UNWRITTEN]
    assert len(logged) == len(stopped.recorded)
    for values, event in zip(stopped.recorded, logged, strict=True):
        values = dict(values)
        triggered = orjson.loads(event.pop("guardrails_triggered"))
        assert triggered == values.pop("guardrails_triggered")
        assert event.pop("created_at").endswith("+00:00")
        assert event == values
    (usage,) = [entry for entry in entries if entry["message"] == "agent usage not written"]
    assert usage["agent_id"] == stopped.agent.id
    assert usage["usage_count"] == 3
    tries = [entry["attempt"] for entry in entries if entry["message"] == FAILED_AT_SHUTDOWN]
    assert tries == [1, 2]


async def test_restore_writes_back_what_shutdown_logged_once_whatever_surrounds_it(
    app: CerberusApp, session: AsyncSession, stopped: Stopped
) -> None:
    recorded, lines = stopped.recorded, stopped.lines
    unwritten = [line for line in lines if UNWRITTEN in line]
    log = [
        '{"message": "request", "path": "/mcp"}',
        "not json at all",
        # As a log export writes it: a timestamp before the JSON line.
        f"2026-11-29T23:10:01.000Z {unwritten[0]}",
        *unwritten[1:],
        unwritten[1],  # the same line twice
        unwritten[2][:-30],  # cut short: named, but not readable
    ]

    first = await restore(app.state.sessionmaker, log)
    again = await restore(app.state.sessionmaker, log)

    assert (first.written, first.already_stored, first.unreadable) == (3, 0, 1)
    assert (again.written, again.already_stored) == (0, 3)
    query = select(AuditEvent).where(AuditEvent.agent_id == stopped.agent.id)
    stored = {event.decision_id: event for event in await session.scalars(query)}
    assert sorted(stored) == sorted(values["decision_id"] for values in recorded)
    for values in recorded:
        event = stored[values["decision_id"]]
        assert {name: getattr(event, name) for name in values} == values
        assert event.created_at.utcoffset() is not None


async def test_restore_skips_a_logged_event_with_a_field_of_the_wrong_type(
    app: CerberusApp, session: AsyncSession
) -> None:
    agent = await committed_agent(session)
    event = {**_values(agent, 0), "guardrails_triggered": "[]", "created_at": "2026-11-29T23:00"}
    naive = {"message": UNWRITTEN, "audit_event": event}  # a time without its offset
    wrong = {"message": UNWRITTEN, "audit_event": {**event, "processing_ms": "fast"}}
    good = {"message": UNWRITTEN, "audit_event": {**event, "created_at": "2026-11-29T23:00+00:00"}}
    lines = [orjson.dumps(entry).decode() for entry in (naive, wrong, good)]

    done = await restore(app.state.sessionmaker, lines)

    assert (done.written, done.unreadable) == (1, 2)


@pytest.mark.parametrize(
    "change",
    [
        {"upstream_status": 2**31},
        {"request_id": "r" * 65},
        {"tool_name": "t" * 257},
        {"method": "tools/\x00call"},
        {"processing_ms": float("inf")},
        {"created_at": "0001-01-01T00:00:00+01:00"},
        {"tool_name": "tool-\ud800"},
        {"guardrails_triggered": '[{"guardrail": "x", "score": NaN}]'},
    ],
    ids=[
        "status",
        "request_id",
        "tool_name",
        "nul",
        "infinite",
        "before_year_1",
        "lone_surrogate",
        "nan_in_findings",
    ],
)
async def test_restore_skips_a_value_its_column_cannot_hold_and_writes_the_rest(
    app: CerberusApp, session: AsyncSession, change: dict[str, Any]
) -> None:
    # Each made the whole restore fail, its good lines unwritten: on PostgreSQL as "cannot
    # reach the database", on SQLite with a traceback (docs/audit.md: skipped and counted).
    agent = await committed_agent(session)
    good = {**_values(agent, 0), "guardrails_triggered": "[]"}
    good["created_at"] = "2026-11-29T23:00+00:00"
    bad = {**_values(agent, 1), "guardrails_triggered": "[]", "created_at": good["created_at"]}
    # The standard library's encoder, which writes a lone surrogate as its escape.
    lines = [
        json.dumps({"message": UNWRITTEN, "audit_event": event})
        for event in (good, {**bad, **change})
    ]

    done = await restore(app.state.sessionmaker, lines)

    assert (done.written, done.unreadable) == (1, 1)


async def test_events_beyond_the_queue_bound_go_to_the_log_while_the_database_is_down(
    app: CerberusApp,
    session: AsyncSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = await committed_agent(session)
    monkeypatch.setattr(writer_module, "RETRY_SECONDS", 0.0)
    monkeypatch.setattr(writer_module, "MAX_QUEUED", 3)
    unreachable = unreachable_engine(tmp_path)
    target = {"sessionmaker": create_sessionmaker(unreachable)}
    writer = AuditWriter(lambda: target["sessionmaker"], batch_size=5, flush_interval=3600)
    writer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="cerberus.audit"):
            for index in range(5):
                writer.record(**{**_values(agent, 0), "decision_id": f"queued-{index}"})
            for _ in range(200):  # the fifth record wakes the writer; its flush fails
                if writer.pending == 3:
                    break
                await asyncio.sleep(0.01)
        spilled = [r.audit_event["decision_id"] for r in caplog.records if r.msg == UNWRITTEN]
        assert spilled == ["queued-0", "queued-1"]
        assert writer.pending == 3

        target["sessionmaker"] = app.state.sessionmaker  # the database is back
        await writer.stop()
    finally:
        await unreachable.dispose()
    query = select(AuditEvent.decision_id).where(AuditEvent.agent_id == agent.id)
    assert sorted(await session.scalars(query)) == ["queued-2", "queued-3", "queued-4"]
