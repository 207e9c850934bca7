"""What one audit event costs the gateway's process, queued and then written, per backend.

The writes run in aiosqlite's thread or asyncpg's protocol, so a `--gil` profile hides them;
`time.process_time` counts every thread of this process (not the database server's). The
events look like the proxy's: a request and a response per call, one in four with a
triggered guardrail. Best of several rounds, each writing EVENTS events in batches of
AUDIT_BATCH_SIZE.

    .venv/bin/python -m bench.audit_cost              # SQLite in a temporary folder
    .venv/bin/python -m bench.audit_cost postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cerberus.audit.models import AuditEvent
from cerberus.audit.writer import AuditWriter
from cerberus.db import create_engine, create_sessionmaker
from cerberus.settings import Settings

EVENTS = 20_000
ROUNDS = 5
TRIGGERED = [
    {
        "guardrail": "pii_email",
        "action": "modify",
        "findings": [{"type": "email", "count": 1, "where": ["params.arguments.text"]}],
    }
]


def _queue(writer: AuditWriter, ids: list[str]) -> None:
    agent = ids[0]
    for index, decision_id in enumerate(ids):
        writer.record(
            request_id=decision_id,
            decision_id=decision_id,
            organisation_id=agent,
            workspace_id=agent,
            agent_id=agent,
            direction="request" if index % 2 == 0 else "response",
            method="tools/call",
            tool_name="echo",
            action="allow" if index % 4 else "modify",
            guardrails_triggered=[] if index % 4 else TRIGGERED,
            processing_ms=0.12,
            upstream_status=200,
            upstream_latency_ms=1.5,
        )


async def _measure(settings: Settings) -> dict[str, float]:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(AuditEvent.metadata.create_all, [AuditEvent.__table__])
        writer = AuditWriter(
            lambda: sessionmaker, batch_size=settings.AUDIT_BATCH_SIZE, flush_interval=3600
        )
        queue_us = write_us = float("inf")
        for _ in range(ROUNDS):
            # Made before timing: the proxy has its ids already when it queues an event.
            ids = [uuid.uuid4().hex for _ in range(EVENTS)]
            started = time.process_time()
            _queue(writer, ids)
            queued = time.process_time()
            await writer.flush()
            written = time.process_time()
            queue_us = min(queue_us, (queued - started) / EVENTS * 1e6)
            write_us = min(write_us, (written - queued) / EVENTS * 1e6)
            async with sessionmaker() as session:
                assert await session.scalar(select(func.count(AuditEvent.id))) == EVENTS
                await session.execute(delete(AuditEvent))
                await session.commit()
        return {
            "queue_us_per_event": round(queue_us, 2),
            "write_cpu_us_per_event": round(write_us, 2),
        }
    finally:
        await engine.dispose()


async def _on_postgres(server_url: str) -> dict[str, float]:
    name = f"cerberus_audit_cost_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        try:
            return await _measure(Settings(DATABASE_URL=url))
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def run(database_url: str | None) -> dict[str, Any]:
    if database_url:
        backend, result = "postgresql", await _on_postgres(database_url)
    else:
        with tempfile.TemporaryDirectory() as folder:
            backend = "sqlite"
            result = await _measure(Settings(DATA_DIR=Path(folder)))
    return {"backend": backend, "events": EVENTS, "rounds": ROUNDS, **result}


if __name__ == "__main__":
    result = asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else None))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())  # noqa: T201
