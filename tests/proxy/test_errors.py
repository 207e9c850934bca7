"""What the gateway answers when input or the upstream is wrong (mcp-proxy 1.11, 7, 10)."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from aiohttp import web

from cerberus.proxy.http1 import MAX_ANSWER_BYTES
from tests.proxy.conftest import Gateway, Tenant, audit_events, create_tenant, running_gateway
from tests.proxy.scripted import json_answer, scripted_upstream, start_sse
from tests.servers import free_port

CALL = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "add"}}


async def test_malformed_json_is_32700_mcp_proxy_10(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    answer = await http.post(
        gateway.mcp, content=b'{"jsonrpc": "2.0", "id": 1,', headers=tenant.headers()
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32700
    assert answer.json()["id"] is None


async def test_json_that_is_not_json_rpc_is_32600_with_its_id_mcp_proxy_10(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    for body, expected_id in [
        (b'{"id": 5, "method": "tools/list"}', 5),
        (b'{"jsonrpc": "2.0", "id": 6}', 6),
        (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "a"}', None),
        (b"[]", None),
        (b'"text"', None),
    ]:
        answer = await http.post(gateway.mcp, content=body, headers=tenant.headers())
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == -32600, body
        assert answer.json()["id"] == expected_id


async def test_body_over_the_limit_is_413_mcp_proxy_1_11(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    limit = gateway.app.state.settings.MCP_MAX_BODY_BYTES
    big = {**CALL, "params": {"name": "add", "arguments": {"text": "x" * limit}}}
    answer = await http.post(gateway.mcp, json=big, headers=tenant.headers())
    assert answer.status_code == 413

    async def chunks():
        for _ in range(5):
            yield b" " * (limit // 4)

    streamed = await http.post(gateway.mcp, content=chunks(), headers=tenant.headers())
    assert streamed.status_code == 413


async def test_an_upstream_that_never_answers_is_504_32002_mcp_proxy_10(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async with (
        scripted_upstream() as upstream,
        running_gateway(proxy_settings(MCP_REQUEST_TIMEOUT_SECONDS=0.3)) as gateway,
    ):
        upstream.handler = silent
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
        assert len(upstream.received) == 1  # a request that reached the upstream is not retried
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == -32002
    assert answer.json()["id"] == 4


async def test_a_stream_may_outlast_the_request_timeout_mcp_proxy_4_5(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    async def slow_stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(
            b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n'
        )
        await asyncio.sleep(0.6)
        await response.write(b'data: {"jsonrpc":"2.0","id":4,"result":{"done":true}}\n\n')
        return response

    async with (
        scripted_upstream() as upstream,
        running_gateway(proxy_settings(MCP_REQUEST_TIMEOUT_SECONDS=0.2)) as gateway,
    ):
        upstream.handler = slow_stream
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    assert '"done":true' in answer.text


async def test_upstream_5xx_is_502_32003_and_not_retried_mcp_proxy_10(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(b'{"detail":"boom"}', status=500)
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
        assert len(upstream.received) == 1
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == -32003
    assert answer.json()["id"] == 4
    assert "boom" not in answer.text


async def test_unreachable_upstream_is_502_32003_mcp_proxy_10(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    tenant = await create_tenant(gateway.app, f"http://127.0.0.1:{free_port()}/mcp")
    answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == -32003


async def test_connect_failures_are_retried_until_the_upstream_is_up(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    port = free_port()
    async with running_gateway(proxy_settings(MCP_MAX_RETRIES=10)) as gateway:
        tenant = await create_tenant(gateway.app, f"http://127.0.0.1:{port}/mcp")
        call = asyncio.create_task(http.post(gateway.mcp, json=CALL, headers=tenant.headers()))
        # The upstream appears while the gateway is still retrying its connection.
        runner_app = web.Application()

        async def ok(request: web.Request) -> web.Response:
            return web.Response(
                body=b'{"jsonrpc":"2.0","id":4,"result":{"up":true}}',
                content_type="application/json",
            )

        runner_app.router.add_post("/mcp", ok)
        runner = web.AppRunner(runner_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            answer = await call
        finally:
            await runner.cleanup()
    assert answer.json()["result"] == {"up": True}


async def test_invalid_json_from_the_upstream_is_refused_not_relayed_mcp_proxy_5_1(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":4,"result":{"secret":')
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    assert answer.status_code == 502
    assert "secret" not in answer.text


async def test_upstream_4xx_bodies_reach_the_client_verbatim_mcp_proxy_3_2_2_3(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        tenant = await create_tenant(gateway.app, upstream.url)
        for status in (400, 404, 405, 406, 413):
            body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x %d"}}' % status
            upstream.handler = json_answer(body, status=status, Allow="POST")
            answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
            assert answer.status_code == status
            assert answer.content == body
            assert answer.headers["allow"] == "POST"


async def test_a_2xx_body_of_unknown_type_is_refused_not_relayed_mcp_proxy_5_1(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async def untyped(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"jsonrpc":"2.0","id":4,"result":{"secret":"x"}}')

    async with scripted_upstream() as upstream:
        upstream.handler = untyped
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    assert answer.status_code == 502
    assert "secret" not in answer.text


async def test_upstream_connections_are_reused_and_idle_ones_bounded(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    """MCP_MAX_KEEPALIVE_CONNECTIONS: a burst keeps its connections for the next burst;
    connections idle past the grace period are closed down to the bound."""
    from cerberus.proxy.upstream import IDLE_GRACE_SECONDS

    ports: list[int] = []
    arrived: list[asyncio.Event] = []
    width = 10

    async def held(request: web.Request) -> web.StreamResponse:
        ports.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        if len(ports) % width == 0:
            for event in arrived:
                event.set()
            arrived.clear()
        else:
            event = asyncio.Event()
            arrived.append(event)
            await event.wait()
        return web.Response(
            body=b'{"jsonrpc":"2.0","id":4,"result":{}}', content_type="application/json"
        )

    async def burst(gateway, tenant, size: int) -> None:  # type: ignore[no-untyped-def]
        answers = await asyncio.gather(
            *(http.post(gateway.mcp, json=CALL, headers=tenant.headers()) for _ in range(size))
        )
        assert all(answer.status_code == 200 for answer in answers)

    async with (
        scripted_upstream() as upstream,
        running_gateway(proxy_settings(MCP_MAX_KEEPALIVE_CONNECTIONS=2)) as gateway,
    ):
        upstream.handler = held
        tenant = await create_tenant(gateway.app, upstream.url)
        await burst(gateway, tenant, width)
        await burst(gateway, tenant, width)
        assert len(set(ports)) == width  # the second burst reused every connection
        await asyncio.sleep(IDLE_GRACE_SECONDS + 0.2)
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":4,"result":{}}')
        await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
        first = set(ports)
        ports.clear()
        upstream.handler = held
        await burst(gateway, tenant, width)
    # The trim left two idle connections; the burst reused them and opened eight.
    assert len(set(ports)) == width
    assert len(set(ports) & first) == 2


async def test_a_client_gone_before_its_body_ended_is_no_error(
    gateway: Gateway, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    host, port = gateway.url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /mcp HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {tenant.key}\r\n"
        "content-type: application/json\r\naccept: application/json, text/event-stream\r\n"
        "content-length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"jsonrpc": "2.0", ')  # 20 bytes of the 1,000 announced
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    for _ in range(100):  # until the gateway has seen the disconnect and logged the request
        if any(record.name == "cerberus.access" for record in caplog.records):
            break
        await asyncio.sleep(0.02)
    # Nothing went wrong in the gateway: no "unhandled error" with a stack trace to alarm
    # whoever reads the logs, one line saying what happened.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    messages = [r.getMessage() for r in caplog.records if r.name == "cerberus.proxy"]
    assert messages == ["client disconnected before its request ended"]


async def test_an_answer_larger_than_the_gateway_holds_is_refused_and_the_next_one_served(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # An answer is held whole, then parsed and scanned; unbounded, one answer took the
    # process's memory, and with it the audit events queued there.
    filler = b"x" * (1024 * 1024)

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"jsonrpc":"2.0","id":4,"result":{"text":"')
        for _ in range(MAX_ANSWER_BYTES // len(filler) + 1):
            await response.write(filler)
        await response.write(b'"}}')
        return response

    async with scripted_upstream() as upstream:
        tenant = await create_tenant(gateway.app, upstream.url)
        upstream.handler = huge
        refused = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":4,"result":{"ok":true}}')
        served = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    assert refused.status_code == 502
    assert refused.json()["error"]["message"] == "Upstream answer larger than 32 MiB"
    assert len(refused.content) < 1000
    assert served.json()["result"] == {"ok": True}


async def test_a_request_cancelled_while_the_upstream_works_keeps_its_audit_event(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # A shutdown cancels what is still running once its grace period ends: a request already
    # decided and sent upstream must still be in the trail (the writer drains after that).
    arrived = asyncio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await asyncio.sleep(30)
        return web.Response(status=204)

    async with scripted_upstream() as upstream:
        upstream.handler = silent
        tenant = await create_tenant(gateway.app, upstream.url)
        body = json.dumps(CALL).encode()
        headers = [(k.encode(), v.encode()) for k, v in tenant.headers().items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/mcp",
            "raw_path": b"/mcp",
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, object]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: dict[str, object]) -> None:
            return None

        task = asyncio.create_task(gateway.app(scope, receive, send))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (event,) = await audit_events(gateway.app, tenant.agent_id)
    assert (event.direction, event.method, event.tool_name) == ("request", "tools/call", "add")
    assert event.upstream_status is None
