"""Audit events and usage counters: written in batches off the request path, none lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from sqlalchemy import select

from cerberus.audit.models import AuditEvent
from cerberus.db import create_engine, create_sessionmaker
from tests.conftest import TEST_SECRET_KEY, Backend
from tests.proxy.conftest import (
    Gateway,
    audit_events,
    create_tenant,
    create_tenant_in,
    running_gateway,
    usage_count,
)
from tests.proxy.test_transport import modern_call, modern_headers
from tests.servers import Server, cerberus_servers


async def test_n_concurrent_calls_give_exactly_n_request_events(
    gateway: Gateway, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    tenant = await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")
    count = 40
    answers = await asyncio.gather(
        *(
            http.post(
                gateway.mcp,
                json=modern_call(index, "add", {"a": index, "b": 1}),
                headers=modern_headers(tenant, name="add"),
            )
            for index in range(count)
        )
    )
    assert sorted(a.json()["result"]["structuredContent"]["result"] for a in answers) == list(
        range(1, count + 1)
    )
    requests = await audit_events(
        gateway.app, tenant.agent_id, direction="request", method="tools/call"
    )
    assert len(requests) == count
    assert {event.decision_id for event in requests} == {
        a.headers["x-request-decision-id"] for a in answers
    }
    responses = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert len(responses) == count
    assert all(
        event.upstream_status == 200 and event.upstream_latency_ms is not None
        for event in responses
    )
    assert await usage_count(gateway.app, tenant.agent_id) == count


async def test_a_full_batch_is_written_without_waiting_for_the_interval(
    proxy_settings, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    settings = proxy_settings(AUDIT_FLUSH_INTERVAL_SECONDS=3600, AUDIT_BATCH_SIZE=4)
    async with running_gateway(settings) as gateway:
        tenant = await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")
        for index in range(2):
            await http.post(
                gateway.mcp,
                json=modern_call(index, "add", {"a": 1, "b": 1}),
                headers=modern_headers(tenant, name="add"),
            )
        # Four events (request + response, twice) fill a batch; the interval is an hour.
        for _ in range(3000):
            if not gateway.app.state.audit.pending:
                break
            await asyncio.sleep(0.01)
        async with gateway.app.state.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.agent_id == tenant.agent_id)
                )
            ).all()
        assert len(rows) == 4


async def test_queued_events_are_drained_on_shutdown(
    proxy_settings, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    settings = proxy_settings(AUDIT_FLUSH_INTERVAL_SECONDS=3600, AUDIT_BATCH_SIZE=1000)
    async with running_gateway(settings) as gateway:
        tenant = await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")
        for index in range(3):
            await http.post(
                gateway.mcp,
                json=modern_call(index, "add", {"a": 1, "b": 1}),
                headers=modern_headers(tenant, name="add"),
            )
        assert gateway.app.state.audit.pending == 6
        writer = gateway.app.state.audit
    assert writer.pending == 0
    # The gateway's engine is disposed by now: read with one of our own.
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            statement = select(AuditEvent).where(AuditEvent.agent_id == tenant.agent_id)
            rows = (await session.scalars(statement)).all()
    finally:
        await engine.dispose()
    assert len(rows) == 6


async def test_sigterm_during_load_loses_no_completed_call(
    backend: Backend, stateless_upstream: Server, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    from tests.conftest import settings_for

    settings = settings_for(backend)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url or "",
        "DATA_DIR": str(backend.data_dir),
        "RUN_MIGRATIONS_ON_STARTUP": "false",
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        # Long enough that the completed calls' events are still queued at SIGTERM.
        "AUDIT_FLUSH_INTERVAL_SECONDS": "30",
        "AUDIT_BATCH_SIZE": "100000",
    }
    try:
        tenant = await create_tenant_in(sessionmaker, f"{stateless_upstream.url}/mcp")
        with cerberus_servers(1, env, tmp_path) as (server,):
            url = f"{server.url}/mcp"
            completed: list[str] = []
            stop = asyncio.Event()

            async def worker(offset: int) -> None:
                index = offset
                while not stop.is_set():
                    try:
                        answer = await http.post(
                            url,
                            json=modern_call(index, "add", {"a": 1, "b": 2}),
                            headers=modern_headers(tenant, name="add"),
                        )
                    except httpx.TransportError:
                        return
                    if answer.status_code != 200 or "result" not in answer.json():
                        return
                    completed.append(answer.headers["x-request-decision-id"])
                    index += 1000

            workers = [asyncio.create_task(worker(n)) for n in range(8)]
            for _ in range(3000):
                if len(completed) >= 40:
                    break
                await asyncio.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.process.wait, 30)
            stop.set()
            await asyncio.gather(*workers)
            # uvicorn re-raises SIGTERM once it has shut down cleanly (lifespan included).
            assert server.process.returncode in (0, -signal.SIGTERM), server.log()
        async with sessionmaker() as session:
            recorded = set(
                (
                    await session.scalars(
                        select(AuditEvent.decision_id).where(
                            AuditEvent.agent_id == tenant.agent_id,
                            AuditEvent.direction == "request",
                        )
                    )
                ).all()
            )
        assert len(completed) >= 40
        assert set(completed) <= recorded
    finally:
        await engine.dispose()
