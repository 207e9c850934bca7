"""Streamable HTTP through the gateway: methods, content types, streaming, parsing.

Covers mcp-proxy 1.1-1.8, 4.5 and 5.1-5.9.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
from aiohttp import web

from cerberus.settings import Settings
from tests.conftest import flush_test_cache
from tests.proxy.conftest import (
    Gateway,
    Tenant,
    create_tenant,
    initialize_body,
    open_session,
    running_gateway,
    sse_messages,
)
from tests.proxy.scripted import json_answer, scripted_upstream, start_sse
from tests.servers import Server

MODERN = "2026-07-28"


def modern_call(request_id: object, name: str, arguments: dict[str, object]) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
            },
        },
    }


def modern_headers(
    tenant: Tenant, method: str = "tools/call", name: str | None = None
) -> dict[str, str]:
    extra = {"mcp-protocol-version": MODERN, "mcp-method": method}
    if name is not None:
        extra["mcp-name"] = name
    return tenant.headers(**extra)


async def test_post_get_delete_and_options_are_accepted_mcp_proxy_1_1(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    session_id = await open_session(http, gateway, tenant)
    session = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
    async with http.stream(
        "GET", gateway.mcp, headers={**tenant.headers(**session), "accept": "text/event-stream"}
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
    options = await http.options(gateway.mcp)
    assert options.status_code == 204
    assert "DELETE" in options.headers["allow"]
    deleted = await http.delete(gateway.mcp, headers=tenant.headers(**session))
    assert deleted.status_code == 200
    assert (await http.put(gateway.mcp, headers=tenant.headers())).status_code == 405
    # HEAD too (Starlette adds it to routes that take GET): forwarded, the upstream's
    # answer declared a body it never sent, and the connection waited for it.
    head = await http.head(gateway.mcp, headers=tenant.headers(**session))
    assert head.status_code == 405
    assert "HEAD" not in head.headers["allow"]


async def test_the_governance_plane_path_is_the_same_endpoint_mcp_proxy_1_1(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    for path in ("/governance-plane/api/v1/proxy", "/governance-plane/api/v1/proxy/mcp"):
        answer = await http.post(
            f"{gateway.url}{path}", json=initialize_body(), headers=tenant.headers()
        )
        assert answer.status_code == 200
        assert (
            sse_messages(answer.text)[0]["result"]["serverInfo"]["name"] == "cerberus-test-upstream"
        )


async def test_modern_get_is_answered_405_by_the_upstream_verbatim_mcp_proxy_1_1_2_6(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    answer = await http.get(
        gateway.mcp, headers={**modern_headers(tenant, "x"), "accept": "text/event-stream"}
    )
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


async def test_narrow_accept_reaches_the_upstream_unchanged_and_406_comes_back_mcp_proxy_1_2(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    headers = {**tenant.headers(), "accept": "application/json"}
    answer = await http.post(gateway.mcp, json=initialize_body(), headers=headers)
    assert answer.status_code == 406


async def test_wrong_content_type_gets_the_upstreams_400_mcp_proxy_1_3(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    headers = {**tenant.headers(), "content-type": "text/plain"}
    answer = await http.post(gateway.mcp, content=orjson.dumps(initialize_body()), headers=headers)
    assert answer.status_code == 400
    assert "Content-Type" in answer.text


async def test_json_and_sse_answers_both_pass_mcp_proxy_1_4(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    legacy = await http.post(gateway.mcp, json=initialize_body(), headers=tenant.headers())
    assert legacy.headers["content-type"].startswith("text/event-stream")
    modern = await http.post(
        gateway.mcp,
        json=modern_call(5, "add", {"a": 2, "b": 3}),
        headers=modern_headers(tenant, name="add"),
    )
    assert modern.headers["content-type"].startswith("application/json")
    assert modern.json()["result"]["structuredContent"] == {"result": 5}
    assert modern.json()["id"] == 5


async def test_notifications_and_client_responses_answer_202_mcp_proxy_1_5(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    session_id = await open_session(http, gateway, tenant)  # notifications/initialized: 202
    response = {"jsonrpc": "2.0", "id": "srv-1", "result": {}}
    answer = await http.post(
        gateway.mcp, json=response, headers=tenant.headers(**{"mcp-session-id": session_id})
    )
    assert answer.status_code == 202
    assert answer.content == b""


async def test_events_are_relayed_one_by_one_without_buffering_mcp_proxy_1_6(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    release = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(
            b'data: {"jsonrpc":"2.0","method":"notifications/progress",'
            b'"params":{"progressToken":1,"progress":1}}\r\n\r\n'
        )
        await release.wait()
        await response.write(b'data: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\r\n\r\n')
        return response

    async with scripted_upstream() as upstream:
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}}
        async with http.stream("POST", gateway.mcp, json=call, headers=tenant.headers()) as answer:
            assert answer.headers["x-accel-buffering"] == "no"
            lines = answer.aiter_lines()
            first = await anext(lines)
            # The first event arrived while the upstream is still holding the second one back.
            assert "notifications/progress" in first
            release.set()
            rest = [line async for line in lines]
        assert any('"result"' in line for line in rest)


async def test_cr_only_and_crlf_events_are_each_decided_mcp_proxy_1_7_5_1(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    from tests.proxy.guardrails import RedactEmail, installed

    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(b"id: 1\rretry: 100\rdata:\r\r")
        await response.write(b'data: {"jsonrpc":"2.0","method":"notifications/message",\r\n')
        await response.write(b'data: "params":{"level":"info","data":"jane@example.com"}}\r\n\r\n')
        await response.write(
            b'id: 2\rdata: {"jsonrpc":"2.0","id":1,"result":{"text":"jane@example.com"}}\r\r'
        )
        return response

    async with scripted_upstream() as upstream, installed(gateway.app, RedactEmail()):
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
        answer = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert "jane@example.com" not in answer.text
    messages = sse_messages(answer.text)
    assert messages[0]["params"]["data"] == "[REDACTED:email]"
    assert messages[1]["result"]["text"] == "[REDACTED:email]"
    assert answer.text.startswith("id: 1\nretry: 100\ndata: \n\n")


async def test_an_unparseable_event_ends_the_stream_mcp_proxy_5_1(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(
            b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n'
        )
        await response.write(b"data: {this is not json\n\n")
        await response.write(b'data: {"jsonrpc":"2.0","id":1,"result":{"secret":"unchecked"}}\n\n')
        return response

    async with scripted_upstream() as upstream:
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
        answer = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert "notifications/message" in answer.text
    assert "not json" not in answer.text
    assert "unchecked" not in answer.text


async def test_client_disconnect_aborts_the_upstream_stream_mcp_proxy_1_8(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    aborted = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        try:
            while True:
                await response.write(b": tick\n\n")
                await asyncio.sleep(0.02)
        except (ConnectionResetError, asyncio.CancelledError):
            aborted.set()
            raise

    async with scripted_upstream() as upstream:
        upstream.handler = endless
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
        async with http.stream("POST", gateway.mcp, json=call, headers=tenant.headers()) as answer:
            await anext(answer.aiter_lines())
        await asyncio.wait_for(aborted.wait(), 10)


async def test_long_streams_end_cleanly_at_mcp_stream_max_seconds_mcp_proxy_4_2(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    from tests.proxy.conftest import running_gateway

    async def endless(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(b"id: 1\ndata:\n\n")
        await asyncio.sleep(3600)
        return response

    async with (
        scripted_upstream() as upstream,
        running_gateway(proxy_settings(MCP_STREAM_MAX_SECONDS=0.5)) as gateway,
    ):
        upstream.handler = endless
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.get(
            gateway.mcp, headers={**tenant.headers(), "accept": "text/event-stream"}
        )
    assert answer.status_code == 200
    assert answer.text == "id: 1\ndata: \n\n"


async def test_without_a_stream_limit_a_long_post_stream_is_never_cut_mcp_proxy_4_5(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    # The default: a 2026-07-28 call's stream ending is its cancellation, so only a platform
    # that cuts requests (App Runner, 120 s) sets a limit.
    from tests.proxy.conftest import running_gateway

    assert Settings.model_fields["MCP_STREAM_MAX_SECONDS"].default == 0

    async def slow(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(b'data: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n')
        await asyncio.sleep(0.8)
        await response.write(b'data: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n\n')
        return response

    call = modern_call(1, "slow", {})
    for limit, answered in ((0, True), (0.3, False)):
        async with (
            scripted_upstream() as upstream,
            running_gateway(proxy_settings(MCP_STREAM_MAX_SECONDS=limit)) as gateway,
        ):
            upstream.handler = slow
            tenant = await create_tenant(gateway.app, upstream.url)
            answer = await http.post(
                gateway.mcp, json=call, headers=modern_headers(tenant, name="slow")
            )
        ids = [message.get("id") for message in sse_messages(answer.text)]
        assert (1 in ids) is answered, limit


async def test_progress_notifications_arrive_in_order_before_the_result_mcp_proxy_5_2(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    session_id = await open_session(http, gateway, tenant)
    call = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "tools/call",
        "params": {
            "name": "slow_count",
            "arguments": {"steps": 3},
            "_meta": {"progressToken": "p"},
        },
    }
    answer = await http.post(
        gateway.mcp, json=call, headers=tenant.headers(**{"mcp-session-id": session_id})
    )
    messages = sse_messages(answer.text)
    assert [
        m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"
    ] == [1, 2, 3]
    assert messages[-1]["id"] == 9
    assert messages[-1]["result"]["content"][0]["text"] == "counted to 3"


async def test_ids_keep_their_json_type_and_unknown_fields_survive_mcp_proxy_5_8_5_9(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    raw = (
        b'{"jsonrpc":"2.0","id":"1","result":{"x-unknown":{"k":[1,2.50,null]},'
        b'"_meta":{"traceparent":"00-ab"},"resultType":"complete"}}'
    )
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(raw)
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": "1", "method": "tools/list"}
        answer = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert answer.content == raw


async def test_request_state_passes_byte_for_byte_mcp_proxy_5_4_5_5(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    state = "eyJ2IjoxfQ.\\u00e9 +/= "
    raw = (
        '{"jsonrpc":"2.0","id":3,"result":{"resultType":"input_required","inputRequests":'
        '{"name":{"method":"elicitation/create","params":{"message":"Name?","requestedSchema":{"type":"object"}}}},'
        f'"requestState":"{state}"}}}}'
    ).encode()
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(raw)
        tenant = await create_tenant(gateway.app, upstream.url)
        first = await http.post(
            gateway.mcp,
            json=modern_call(3, "ask_name", {}),
            headers=modern_headers(tenant, name="ask_name"),
        )
        assert first.content == raw
        retry = modern_call(4, "ask_name", {})
        retry["params"]["inputResponses"] = {
            "name": {"action": "accept", "content": {"name": "Ada"}}
        }
        retry["params"]["requestState"] = first.json()["result"]["requestState"]
        body = orjson.dumps(retry)
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":4,"result":{"content":[]}}')
        await http.post(gateway.mcp, content=body, headers=modern_headers(tenant, name="ask_name"))
    assert upstream.received[-1].body == body


async def test_input_required_round_trip_through_the_sdk_upstream_mcp_proxy_5_4(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    first = await http.post(
        gateway.mcp,
        json=modern_call(1, "ask_name", {}),
        headers=modern_headers(tenant, name="ask_name"),
    )
    result = first.json()["result"]
    assert result["resultType"] == "input_required"
    retry = modern_call(2, "ask_name", {})
    retry["params"]["inputResponses"] = {"name": {"action": "accept", "content": {"name": "Ada"}}}
    retry["params"]["requestState"] = result["requestState"]
    second = await http.post(
        gateway.mcp, json=retry, headers=modern_headers(tenant, name="ask_name")
    )
    assert second.json()["result"]["content"][0]["text"] == "Hello, Ada!"


async def test_subscriptions_listen_stream_is_relayed_as_it_happens_mcp_proxy_4_5(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    listen = {
        "jsonrpc": "2.0",
        "id": "listen-1",
        "method": "subscriptions/listen",
        "params": {
            "notifications": {"toolsListChanged": True},
            "_meta": modern_call(0, "x", {})["params"]["_meta"],
        },
    }
    headers = modern_headers(tenant, "subscriptions/listen")
    async with http.stream("POST", gateway.mcp, json=listen, headers=headers) as answer:
        assert answer.status_code == 200, await answer.aread()
        async for line in answer.aiter_lines():
            if line.startswith("data:") and line[5:].strip():
                first = orjson.loads(line[5:])
                break
    assert first["method"] == "notifications/subscriptions/acknowledged"


async def test_upstream_server_is_shared_by_sessions_of_one_agent(
    gateway: Gateway, tenant: Tenant, upstream: Server, http: httpx.AsyncClient
) -> None:
    first = await open_session(http, gateway, tenant)
    second = await open_session(http, gateway, tenant)
    assert first != second


async def test_a_body_over_the_limit_is_refused_whether_declared_or_streamed(
    proxy_settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    settings = proxy_settings(MCP_MAX_BODY_BYTES=2_000)
    await flush_test_cache(settings)

    def call_of(size: int) -> bytes:
        arguments = {"text": "x" * size}
        return orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": arguments},
            }
        )

    async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    async with running_gateway(settings) as gateway, scripted_upstream() as upstream:
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}')
        tenant = await create_tenant(gateway.app, upstream.url)
        large = call_of(3_000)
        declared = await http.post(gateway.mcp, content=large, headers=tenant.headers())
        # No Content-Length: the body comes in chunks and is counted as it arrives.
        streamed = await http.post(
            gateway.mcp, content=pieces(large, 500), headers=tenant.headers()
        )
        small = call_of(1_000)
        taken = await http.post(gateway.mcp, content=pieces(small, 300), headers=tenant.headers())
    for refused in (declared, streamed):
        assert refused.status_code == 413
        assert refused.json()["error"]["message"] == "Request body too large"
    assert taken.status_code == 200
    # Only the body within the limit reached the upstream, whole.
    assert [received.body for received in upstream.received] == [small]
