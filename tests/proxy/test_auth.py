"""Agent keys on the proxy: who is let in, and how fast a change shuts a key out (mcp-proxy 9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import event, update

from cerberus.agents.keys import generate_key
from cerberus.agents.lookup import AgentEntry
from cerberus.agents.models import Agent
from cerberus.db import create_sessionmaker, utcnow
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.proxy.relay import RECHECK_SECONDS
from cerberus.tenancy.models import Workspace
from tests.audit.events import unreachable_engine
from tests.conftest import TEST_REDIS_URL
from tests.proxy.conftest import (
    Gateway,
    Tenant,
    audit_events,
    create_tenant,
    running_gateway,
    sse_messages,
)
from tests.proxy.guardrails import installed
from tests.proxy.scripted import scripted_upstream, start_sse
from tests.servers import Server

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@pytest.fixture
async def tenant(gateway: Gateway, stateless_upstream: Server) -> Tenant:
    """An agent whose workspace uses the stateless upstream (no handshake needed)."""
    return await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")


def modern(tenant_key: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {tenant_key}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }


async def call(http: httpx.AsyncClient, gateway: Gateway, key: str | None) -> httpx.Response:
    headers = modern(key or "")
    if key is None:
        headers.pop("authorization")
    elif key.startswith("Basic "):
        headers["authorization"] = key
    return await http.post(gateway.mcp, json=LIST, headers=headers)


async def change_agent(gateway: Gateway, agent_id: str, **values: object) -> None:
    """What the control plane does: update the row, then publish the invalidation."""
    async with gateway.app.state.sessionmaker() as session:
        await session.execute(update(Agent).where(Agent.id == agent_id).values(**values))
        await session.commit()
    await gateway.app.state.cache.publish(CHANNEL, Invalidation("agent", agent_id).encode())


async def until_refused(http: httpx.AsyncClient, gateway: Gateway, key: str) -> httpx.Response:
    for _ in range(200):
        answer = await call(http, gateway, key)
        if answer.status_code == 401:
            return answer
        await asyncio.sleep(0.01)
    raise AssertionError("the key still works")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (None, "missing bearer agent key"),
        ("sk-not-a-real-key", "unknown key"),
        ("Basic dXNlcjpwdw==", "missing bearer agent key"),
    ],
)
async def test_missing_or_unknown_key_is_401_with_challenge_mcp_proxy_9_3(
    gateway: Gateway, http: httpx.AsyncClient, key: str | None, reason: str
) -> None:
    answer = await call(http, gateway, key)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer ")
    assert answer.json()["error"]["message"] == f"Unauthorized: {reason}"
    assert answer.json()["jsonrpc"] == "2.0"


async def test_get_and_delete_need_the_key_too_mcp_proxy_2_5_9_2(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    for method in ("GET", "DELETE"):
        answer = await http.request(method, gateway.mcp, headers={"mcp-session-id": "abc"})
        assert answer.status_code == 401, method


async def test_revoked_key_stops_working_once_invalidated(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    assert (await call(http, gateway, tenant.key)).status_code == 200
    await change_agent(gateway, tenant.agent_id, revoked_at=utcnow())
    answer = await until_refused(http, gateway, tenant.key)
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert answer.json()["error"]["message"] == "Unauthorized: key revoked"


@pytest.mark.skipif(not TEST_REDIS_URL, reason="two instances share invalidations through Redis")
async def test_revocation_reaches_every_instance(
    proxy_settings, stateless_upstream: Server, http: httpx.AsyncClient, backend
) -> None:
    if backend.name != "postgres":
        pytest.skip("the embedded backend is one process")
    settings = proxy_settings()
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        tenant = await create_tenant(first.app, f"{stateless_upstream.url}/mcp")
        for gateway in (first, second):
            assert (await call(http, gateway, tenant.key)).status_code == 200
        await change_agent(first, tenant.agent_id, revoked_at=utcnow())
        await until_refused(http, second, tenant.key)


async def test_an_expired_key_is_refused(
    gateway: Gateway, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    tenant = await create_tenant(
        gateway.app, f"{stateless_upstream.url}/mcp", expires_at=utcnow() - timedelta(seconds=1)
    )
    answer = await call(http, gateway, tenant.key)
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "Unauthorized: key expired"


def test_time_alone_ends_a_cached_key_expiry_and_grace_period() -> None:
    """The cached entry is judged against the clock on every request, not when it was cached."""
    entry = AgentEntry(
        agent_id="a",
        organisation_id="o",
        workspace_id="w",
        upstream_url="http://127.0.0.1:9/mcp",
        fail_mode="closed",
        key_hash="new",
        previous_key_hash="old",
        previous_key_expires_at=100.0,
        expires_at=200.0,
        revoked_at=None,
        active=True,
    )
    assert entry.refusal("new", 99.0) is None
    assert entry.refusal("old", 99.0) is None
    assert entry.refusal("old", 100.0) == "key rotated"
    assert entry.refusal("new", 199.0) is None
    assert entry.refusal("new", 200.0) == "key expired"
    assert entry.refusal("other", 1.0) == "unknown key"


async def test_rotated_key_keeps_working_during_the_grace_period_only(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    new = generate_key("sk-")
    async with gateway.app.state.sessionmaker() as session:
        agent = await session.get(Agent, tenant.agent_id)
        assert agent is not None
        old_hash = agent.key_hash
    await change_agent(
        gateway,
        tenant.agent_id,
        key_hash=new.hash,
        previous_key_hash=old_hash,
        previous_key_expires_at=utcnow() + timedelta(hours=1),
    )
    assert (await call(http, gateway, new.plain)).status_code == 200
    assert (await call(http, gateway, tenant.key)).status_code == 200
    await change_agent(gateway, tenant.agent_id, previous_key_expires_at=utcnow())
    answer = await until_refused(http, gateway, tenant.key)
    assert answer.json()["error"]["message"] == "Unauthorized: key rotated"
    assert (await call(http, gateway, new.plain)).status_code == 200


async def test_inactive_workspace_shuts_its_agents_out(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    assert (await call(http, gateway, tenant.key)).status_code == 200
    async with gateway.app.state.sessionmaker() as session:
        await session.execute(
            update(Workspace).where(Workspace.id == tenant.workspace_id).values(is_active=False)
        )
        await session.commit()
    await gateway.app.state.cache.publish(
        CHANNEL, Invalidation("workspace", tenant.workspace_id).encode()
    )
    await until_refused(http, gateway, tenant.key)


async def test_no_database_query_on_the_hot_path_once_warm(
    proxy_settings, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    settings = proxy_settings(AUDIT_FLUSH_INTERVAL_SECONDS=3600, AUDIT_BATCH_SIZE=100_000)
    async with running_gateway(settings) as gateway:
        tenant = await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")
        assert (await call(http, gateway, tenant.key)).status_code == 200  # warms the caches
        statements: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = gateway.app.state.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                assert (await call(http, gateway, tenant.key)).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert statements == []


async def test_concurrent_requests_for_an_uncached_key_share_one_lookup(
    proxy_settings, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    """When an agent's entry is missing (first use, or expired after its TTL under load),
    every request in flight for it used to query the database on its own."""
    async with running_gateway(proxy_settings()) as gateway:
        tenant = await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")
        statements: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if "key_hash" in statement:
                statements.append(statement)

        engine = gateway.app.state.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            answers = await asyncio.gather(*(call(http, gateway, tenant.key) for _ in range(16)))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert [answer.status_code for answer in answers] == [200] * 16
    assert len(statements) == 1


async def test_keys_resolve_from_the_database_while_the_shared_cache_is_down(
    proxy_settings, stateless_upstream: Server, http: httpx.AsyncClient
) -> None:
    from tests.servers import free_port

    settings = proxy_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    async with running_gateway(settings) as gateway:
        tenant = await create_tenant(gateway.app, f"{stateless_upstream.url}/mcp")
        assert (await call(http, gateway, tenant.key)).status_code == 200
        assert (await call(http, gateway, "sk-unknown")).status_code == 401


class SlowStream:
    """An upstream that answers a tools/call with an event stream: a progress event at once,
    the result once the test lets it go (`release`), well past the gateway's recheck."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        asked = await request.json()
        if asked.get("method") != "tools/call":
            # The calls that wait for a revocation to take effect (`until_refused`): answered
            # at once, or one let through before it did would wait for `release` too.
            listed = {"jsonrpc": "2.0", "id": asked.get("id"), "result": {"tools": []}}
            return web.json_response(listed)
        response = await start_sse(request)
        progress = {"jsonrpc": "2.0", "method": "notifications/progress"}
        progress["params"] = {"progressToken": 1, "progress": 1, "message": "working"}
        await response.write(b"data: " + orjson.dumps(progress) + b"\n\n")
        await self.release.wait()
        text = "the account of ana@corp.example"
        result = {
            "jsonrpc": "2.0",
            "id": 5,
            "result": {"content": [{"type": "text", "text": text}]},
        }
        await response.write(b"data: " + orjson.dumps(result) + b"\n\n")
        return response


TOOL_CALL = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "account"}}


async def _stream_until_first_event(
    http: httpx.AsyncClient, gateway: Gateway, key: str
) -> tuple[httpx.Response, AsyncIterator[str]]:
    request = http.build_request("POST", gateway.mcp, json=TOOL_CALL, headers=modern(key))
    answer = await http.send(request, stream=True)
    lines = answer.aiter_lines()
    while not (await anext(lines)).startswith("data:"):
        pass
    return answer, lines


async def test_a_stream_open_when_its_key_is_revoked_ends_with_an_error(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # The key was checked once, when the stream's request came: a revoked agent kept every
    # stream it had open, for as long as the upstream kept them (no limit by default).
    upstream_answer = SlowStream()
    async with scripted_upstream() as upstream:
        upstream.handler = upstream_answer
        tenant = await create_tenant(gateway.app, upstream.url)
        answer, lines = await _stream_until_first_event(http, gateway, tenant.key)
        await change_agent(gateway, tenant.agent_id, revoked_at=utcnow())
        await until_refused(http, gateway, tenant.key)
        await asyncio.sleep(RECHECK_SECONDS)
        upstream_answer.release.set()
        rest = "\n".join([line async for line in lines])
        await answer.aclose()
    assert "ana@corp.example" not in rest
    (ended,) = sse_messages(rest)
    assert ended["id"] == 5
    assert ended["error"]["message"] == "Agent key revoked or expired; the stream was ended"
    events = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert events[-1].action == "block"
    assert events[-1].guardrails_triggered[0]["findings"][0]["type"] == "agent_refused"


async def test_a_stream_open_when_a_policy_changes_is_decided_by_the_new_policy(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    from cerberus.guardrails.pii_email import PiiEmail

    upstream_answer = SlowStream()
    async with scripted_upstream() as upstream:
        upstream.handler = upstream_answer
        tenant = await create_tenant(gateway.app, upstream.url)
        answer, lines = await _stream_until_first_event(http, gateway, tenant.key)
        async with installed(gateway.app, PiiEmail(action="redact")):
            await asyncio.sleep(RECHECK_SECONDS)
            upstream_answer.release.set()
            rest = "\n".join([line async for line in lines])
        await answer.aclose()
    (result,) = sse_messages(rest)
    assert result["result"]["content"][0]["text"] == "the account of [REDACTED:EMAIL]"


async def test_a_stream_whose_key_cannot_be_looked_at_again_goes_on(
    gateway: Gateway, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The recheck's lookup raised (its entry gone, the database down): the stream broke off
    # with a traceback, no error answering its request and no audit event.
    upstream_answer = SlowStream()
    unreachable = unreachable_engine(tmp_path)
    original = gateway.app.state.sessionmaker
    async with scripted_upstream() as upstream:
        upstream.handler = upstream_answer
        tenant = await create_tenant(gateway.app, upstream.url)
        answer, lines = await _stream_until_first_event(http, gateway, tenant.key)
        try:
            gateway.app.state.sessionmaker = create_sessionmaker(unreachable)
            event = Invalidation("agent", tenant.agent_id).encode()
            await gateway.app.state.cache.publish(CHANNEL, event)  # the entry is dropped
            await asyncio.sleep(RECHECK_SECONDS)
            upstream_answer.release.set()
            rest = "\n".join([line async for line in lines])
        finally:
            gateway.app.state.sessionmaker = original
            await answer.aclose()
            await unreachable.dispose()
    (result,) = sse_messages(rest)
    assert result["result"]["content"][0]["text"] == "the account of ana@corp.example"
