"""Three gateway processes on one PostgreSQL + Redis in front of an SDK upstream behave as one.

A rate limit counts every instance's requests in one window; a revoked key and a changed
policy, written through one instance's control plane, take effect on all three within a
second (the test waits exactly one second, then expects every instance to have changed).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from anyio import to_thread
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from sqlalchemy import delete

from cerberus.agents.models import Agent
from cerberus.changes.models import ChangeRecord
from cerberus.db import create_engine, create_sessionmaker
from cerberus.jsonrpc import BLOCKED
from cerberus.policies.models import Policy
from cerberus.tenancy.models import Organisation, User, Workspace
from tests.conftest import TEST_SECRET_KEY, Backend, auth_headers, settings_for
from tests.factories import create_agent, create_tenant, create_workspace
from tests.servers import Server, cerberus_servers, free_port, start, wait_until_healthy

pytestmark = pytest.mark.slow

UPSTREAM = Path(__file__).resolve().parent / "upstream_server.py"
API = "/control-plane/api/v1"
RATE_LIMIT = 5
# What "reaches every instance within one second" means here: after this, every one has it.
PROPAGATION_SECONDS = 1.0


@dataclass
class Setup:
    admin: User
    keys: dict[str, str]
    agents: dict[str, str]
    rbac_policy_id: str


@pytest.fixture(scope="module")
def postgres(backend: Backend) -> Backend:
    if backend.name != "postgres":
        pytest.skip("several instances share state only through PostgreSQL + Redis")
    return backend


@pytest.fixture(scope="module")
def upstream(postgres: Backend) -> Iterator[Server]:
    port = free_port()
    server = start(
        [sys.executable, str(UPSTREAM), "--port", str(port)],
        port=port,
        log_path=postgres.data_dir / f"upstream-{port}.log",
    )
    try:
        wait_until_healthy(server, "/mcp")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def setup(postgres: Backend, upstream: Server) -> AsyncIterator[Setup]:
    """A tenant with three agents (rate limited, rbac, to revoke) on the upstream."""
    engine = create_engine(settings_for(postgres))
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        organisation, admin, _viewer = await create_tenant(session)
        workspace = await create_workspace(
            session, organisation, mcp_server_url=f"{upstream.url}/mcp"
        )
        agents: dict[str, str] = {}
        keys: dict[str, str] = {}
        for role in ("limited", "rbac", "revoked"):
            agent, keys[role] = await create_agent(session, workspace, name=role)
            agents[role] = agent.id
        session.add(
            Policy(
                organisation_id=organisation.id,
                workspace_id=workspace.id,
                agent_id=agents["limited"],
                name="five a minute",
                guardrail_type="rate_limit_per_minute",
                action="throttle",
                config={"limit": RATE_LIMIT},
            )
        )
        rbac = Policy(
            organisation_id=organisation.id,
            workspace_id=workspace.id,
            agent_id=agents["rbac"],
            name="no whoami",
            guardrail_type="rbac",
            action="block",
            config={"denied_tools": ["whoami"]},
        )
        session.add(rbac)
        await session.commit()
    try:
        yield Setup(admin, keys, agents, rbac.id)
    finally:
        async with sessions() as session:
            org = organisation.id
            await session.execute(delete(ChangeRecord).where(ChangeRecord.organisation_id == org))
            await session.execute(delete(Policy).where(Policy.organisation_id == org))
            await session.execute(delete(Agent).where(Agent.organisation_id == org))
            await session.execute(delete(User).where(User.organisation_id == org))
            await session.execute(delete(Workspace).where(Workspace.organisation_id == org))
            await session.execute(delete(Organisation).where(Organisation.id == org))
            await session.commit()
        await engine.dispose()


@pytest.fixture(scope="module")
async def gateways(
    postgres: Backend, setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[Server]]:
    """Three instances shared by the tests of this module (each test uses its own agent)."""
    env = {
        "DATABASE_URL": postgres.database_url,
        "REDIS_URL": postgres.redis_url or "",
        "DATA_DIR": str(postgres.data_dir),
        "RUN_MIGRATIONS_ON_STARTUP": "false",
        "APP_ENV": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    manager = cerberus_servers(3, env, tmp_path_factory.mktemp("gateways"))
    servers = await to_thread.run_sync(manager.__enter__)
    try:
        yield servers
    finally:
        await to_thread.run_sync(manager.__exit__, None, None, None)


def mcp_client(gateway: Server, key: str) -> tuple[httpx2.AsyncClient, Client]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    client = Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http), mode="legacy")
    return http, client


async def call_tool(gateway: Server, key: str, tool: str, args: dict[str, Any]) -> Any:
    """The tool's result, or the MCPError a guardrail answered with."""
    http, client = mcp_client(gateway, key)
    async with http, client:
        try:
            return await client.call_tool(tool, args)
        except MCPError as error:
            return error


async def test_a_rate_limit_admits_exactly_n_requests_across_three_instances(
    gateways: list[Server], setup: Setup
) -> None:
    key = setup.keys["limited"]
    clients = [mcp_client(gateway, key) for gateway in gateways]
    outcomes: list[Any] = []
    for http, client in clients:
        await http.__aenter__()
        await client.__aenter__()
    try:

        async def add(client: Client, n: int) -> Any:
            try:
                return await client.call_tool("add", {"a": n, "b": 1})
            except MCPError as error:
                return error

        calls = [add(client, n) for n in range(4) for _http, client in clients]
        outcomes = await asyncio.gather(*calls)
    finally:
        for http, client in reversed(clients):
            await client.__aexit__(None, None, None)
            await http.__aexit__(None, None, None)
    admitted = [o for o in outcomes if not isinstance(o, MCPError)]
    throttled = [o for o in outcomes if isinstance(o, MCPError)]
    assert len(admitted) == RATE_LIMIT
    assert len(throttled) == 12 - RATE_LIMIT
    for error in throttled:
        assert error.code == BLOCKED
        assert error.data["action"] == "throttle"
        assert 0 < error.data["retry_after_seconds"] <= 60

    # Any instance answers the next request with the wait, in the body and as Retry-After.
    message = {
        "jsonrpc": "2.0",
        "id": 99,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
    }
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "add",
    }
    async with httpx.AsyncClient(timeout=10) as http_client:
        for gateway in gateways:
            response = await http_client.post(f"{gateway.url}/mcp", json=message, headers=headers)
            body = response.json()
            assert body["error"]["code"] == BLOCKED, body
            assert body["id"] == 99
            assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_a_revoked_key_is_refused_by_every_instance_within_a_second(
    gateways: list[Server], setup: Setup
) -> None:
    key = setup.keys["revoked"]
    # Every instance has seen (and cached) the key.
    for gateway in gateways:
        result = await call_tool(gateway, key, "add", {"a": 1, "b": 1})
        assert not isinstance(result, MCPError), result
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.delete(
            f"{gateways[0].url}{API}/agents/{setup.agents['revoked']}",
            headers=auth_headers(settings_for_servers(), setup.admin),
        )
        assert response.status_code == 204, response.text
        await asyncio.sleep(PROPAGATION_SECONDS)
        for gateway in gateways:
            refused = await http.post(
                f"{gateway.url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={
                    "Authorization": f"Bearer {key}",
                    "Accept": "application/json, text/event-stream",
                },
            )
            assert refused.status_code == 401, (gateway.url, refused.text)


async def test_a_changed_policy_applies_on_every_instance_within_a_second(
    gateways: list[Server], setup: Setup
) -> None:
    key = setup.keys["rbac"]
    for gateway in gateways:
        blocked = await call_tool(gateway, key, "whoami", {})
        assert isinstance(blocked, MCPError)
        assert blocked.code == BLOCKED
        allowed = await call_tool(gateway, key, "add", {"a": 2, "b": 2})
        assert not isinstance(allowed, MCPError), allowed
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.patch(
            f"{gateways[1].url}{API}/policies/{setup.rbac_policy_id}",
            json={"config": {"denied_tools": ["add"]}},
            headers=auth_headers(settings_for_servers(), setup.admin),
        )
        assert response.status_code == 200, response.text
    await asyncio.sleep(PROPAGATION_SECONDS)
    for gateway in gateways:
        now_blocked = await call_tool(gateway, key, "add", {"a": 2, "b": 2})
        assert isinstance(now_blocked, MCPError), gateway.url
        assert now_blocked.code == BLOCKED
        now_allowed = await call_tool(gateway, key, "whoami", {})
        assert not isinstance(now_allowed, MCPError), (gateway.url, now_allowed)


def settings_for_servers() -> Any:
    """Only the secret matters for minting a token the gateways accept."""
    from cerberus.settings import Settings

    return Settings(APP_ENV="test", SECRET_KEY=TEST_SECRET_KEY)
