"""Fixtures for proxy tests: real upstream processes, a real gateway on a loopback port, tenants.

The gateway runs in this process under uvicorn so tests can reach its state (cache, audit
queue); the upstream MCP servers are separate processes built with the official SDK. Rows
are committed (the gateway's own connections must see them), each test under fresh names.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.agents.models import Agent
from cerberus.app import CerberusApp, create_app
from cerberus.audit.models import AuditEvent
from cerberus.settings import Settings
from tests.conftest import Backend, flush_test_cache, settings_for
from tests.factories import create_agent, create_organisation, create_workspace
from tests.servers import Server, free_port, start

UPSTREAM_SCRIPT = Path(__file__).resolve().parent.parent / "e2e" / "upstream_server.py"
MCP_ACCEPT = "application/json, text/event-stream"


def start_upstream(tmp: Path, *extra: str) -> Server:
    port = free_port()
    server = start(
        [sys.executable, str(UPSTREAM_SCRIPT), "--port", str(port), *extra],
        port=port,
        log_path=tmp / f"upstream-{port}.log",
    )
    try:
        wait_until_listening(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_listening(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"upstream exited early:\n{server.log()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"upstream not listening after {timeout}s:\n{server.log()}")


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The SDK upstream with sessions and resumable SSE."""
    server = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def json_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The SDK upstream with sessions, answering every request in a JSON body."""
    server = start_upstream(tmp_path_factory.mktemp("json"), "--json")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stateless_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The SDK upstream in stateless, JSON-response mode."""
    server = start_upstream(tmp_path_factory.mktemp("stateless"), "--stateless")
    yield server
    server.stop()


@asynccontextmanager
async def serving(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app on a loopback port in this event loop (lifespan included)."""
    port = port or free_port()
    # As `cerberus serve` runs it: the client's address is the app's (TRUSTED_PROXY_HOPS).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Gateway:
    app: CerberusApp
    url: str

    @property
    def mcp(self) -> str:
        return f"{self.url}/mcp"


@dataclass
class Tenant:
    organisation_id: str
    workspace_id: str
    agent_id: str
    key: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.key}",
            "accept": MCP_ACCEPT,
            "content-type": "application/json",
            **extra,
        }


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with serving(app) as url:
        yield Gateway(app, url)


@pytest.fixture
def proxy_settings(backend: Backend) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"AUDIT_FLUSH_INTERVAL_SECONDS": 0.05}
        values.update(overrides)
        return settings_for(backend, **values)

    return build


@pytest.fixture
async def gateway(proxy_settings: Callable[..., Settings]) -> AsyncIterator[Gateway]:
    settings = proxy_settings()
    await flush_test_cache(settings)
    async with running_gateway(settings) as running:
        yield running


async def create_tenant(app: CerberusApp, upstream_url: str, **agent_fields: Any) -> Tenant:
    return await create_tenant_in(app.state.sessionmaker, upstream_url, **agent_fields)


async def create_tenant_in(
    sessionmaker: async_sessionmaker[AsyncSession], upstream_url: str, **agent_fields: Any
) -> Tenant:
    """An organisation, a workspace on upstream_url and an agent, committed."""
    async with sessionmaker() as session:
        organisation = await create_organisation(session)
        workspace = await create_workspace(session, organisation, mcp_server_url=upstream_url)
        agent, key = await create_agent(session, workspace, **agent_fields)
        await session.commit()
    return Tenant(organisation.id, workspace.id, agent.id, key)


@pytest.fixture
async def tenant(gateway: Gateway, upstream: Server) -> Tenant:
    return await create_tenant(gateway.app, f"{upstream.url}/mcp")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def audit_events(app: CerberusApp, agent_id: str, **filters: Any) -> list[AuditEvent]:
    """The agent's audit events once the writer has written everything queued."""
    await app.state.audit.flush()
    statement = select(AuditEvent).where(AuditEvent.agent_id == agent_id)
    for name, value in filters.items():
        statement = statement.where(getattr(AuditEvent, name) == value)
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(statement.order_by(AuditEvent.created_at))).all())


async def usage_count(app: CerberusApp, agent_id: str) -> int:
    await app.state.audit.flush()
    async with app.state.sessionmaker() as session:
        value = await session.scalar(
            select(func.sum(Agent.usage_count)).where(Agent.id == agent_id)
        )
    return int(value or 0)


def initialize_body(request_id: Any = 1, version: str = "2025-11-25") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "proxy-test", "version": "1"},
        },
    }


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages in an SSE body (test-side parsing; LF framing from the gateway)."""
    import orjson

    messages = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data and "".join(data):
            messages.append(orjson.loads("\n".join(data)))
    return messages


async def open_session(http: httpx.AsyncClient, gateway: Gateway, tenant: Tenant) -> str:
    """A legacy session opened through the gateway (initialize + initialized)."""
    answer = await http.post(gateway.mcp, json=initialize_body(), headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    session_id = answer.headers["mcp-session-id"]
    note = await http.post(
        gateway.mcp,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=tenant.headers(**{"mcp-session-id": session_id}),
    )
    assert note.status_code == 202
    return session_id
