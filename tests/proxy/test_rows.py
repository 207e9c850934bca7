"""The remaining rows of mcp-proxy.md, each checked where the gateway has a part in it."""

from __future__ import annotations

import httpx
import orjson
from aiohttp import web

from cerberus.guardrails.rbac import Rbac
from tests.proxy.conftest import Gateway, Tenant, create_tenant, open_session, sse_messages
from tests.proxy.guardrails import SEEN, Record, installed
from tests.proxy.scripted import json_answer, scripted_upstream, start_sse


async def test_each_upstream_event_is_relayed_exactly_once_mcp_proxy_4_4(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        for number in range(1, 6):
            await response.write(
                b'id: %d\ndata: {"jsonrpc":"2.0","method":"notifications/message",'
                b'"params":{"level":"info","data":%d}}\n\n' % (number, number)
            )
        await response.write(b'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
        return response

    async with scripted_upstream() as upstream:
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
        answer = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    messages = sse_messages(answer.text)
    assert [m["params"]["data"] for m in messages[:-1]] == [1, 2, 3, 4, 5]
    assert messages[-1]["id"] == 1


async def test_legacy_cancellation_reaches_the_same_session_mcp_proxy_5_6(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    session_id = await open_session(http, gateway, tenant)
    cancel = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": 99, "reason": "user"},
    }
    answer = await http.post(
        gateway.mcp, json=cancel, headers=tenant.headers(**{"mcp-session-id": session_id})
    )
    assert answer.status_code == 202


async def test_task_results_are_decided_as_answers_to_their_own_method_mcp_proxy_5_7(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream, installed(gateway.app, Record()):
        upstream.handler = json_answer(
            b'{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"done"}]}}'
        )
        tenant = await create_tenant(gateway.app, upstream.url)
        poll = {"jsonrpc": "2.0", "id": 2, "method": "tasks/result", "params": {"taskId": "t1"}}
        await http.post(gateway.mcp, json=poll, headers=tenant.headers())
    (response,) = [context for _, context in SEEN if context.direction == "response"]
    assert response.method == "tasks/result"
    assert response.request == {"method": "tasks/result", "params": {"taskId": "t1"}}


async def test_results_are_never_cached_across_agents_mcp_proxy_5_10(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(
            b'{"jsonrpc":"2.0","id":1,"result":{"tools":[],"cacheScope":"private"}}'
        )
        first = await create_tenant(gateway.app, upstream.url)
        second = await create_tenant(gateway.app, upstream.url)
        for tenant in (first, second, first):
            listed = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            answer = await http.post(gateway.mcp, json=listed, headers=tenant.headers())
            assert orjson.loads(answer.content)["result"]["cacheScope"] == "private"
        assert len(upstream.received) == 3


async def test_well_known_oauth_paths_are_not_proxied_nor_key_checked_mcp_proxy_9_4(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    for path in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ):
        answer = await http.get(f"{gateway.url}{path}")
        assert answer.status_code == 404
        assert "www-authenticate" not in answer.headers


async def test_a_listing_whose_request_is_not_known_is_still_filtered_by_rbac(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # An answer resumed after its request was forgotten (15 minutes on, or lost by the
    # shared cache) comes without it: a listing was relayed unfiltered, the agent saw tools
    # its policy hides. It is recognised by its shape, a `content` beside it or not: an
    # upstream could add one to a listing whose request the gateway cannot match.
    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(
            b'data: {"jsonrpc":"2.0","id":70,"result":{"tools":['
            b'{"name":"echo","inputSchema":{"type":"object"}},'
            b'{"name":"drop_tables","inputSchema":{"type":"object"}}]}}\n\n'
        )
        await response.write(
            b'data: {"jsonrpc":"2.0","id":71,"result":{"content":[],'
            b'"tools":[{"name":"drop_tables"}]}}\n\n'
        )
        await response.write(b'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
        return response

    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, Rbac(allowed_tools=("echo", "ping*"))),
    ):
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping"}}
        answer = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    listing, tool_result, own = sse_messages(answer.text)
    assert [tool["name"] for tool in listing["result"]["tools"]] == ["echo"]
    assert tool_result["result"]["tools"] == []
    assert own == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_an_answer_whose_id_a_client_reads_as_its_requests_is_decided_as_its_answer(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # The TypeScript SDK matches answers by `Number(response.id)`: "3" answers request 3.
    # Unmatched, with a `content` beside its tools, a listing passed unfiltered and unpinned.
    listing = (
        b'{"jsonrpc":"2.0","id":"3","result":{"content":[],"tools":['
        b'{"name":"echo","inputSchema":{"type":"object"}},'
        b'{"name":"drop_tables","inputSchema":{"type":"object"}}]}}'
    )
    SEEN.clear()
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, Rbac(allowed_tools=("echo",)), Record()),
    ):
        upstream.handler = json_answer(listing)
        tenant = await create_tenant(gateway.app, upstream.url)
        request = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
        answer = await http.post(gateway.mcp, json=request, headers=tenant.headers())
    assert [tool["name"] for tool in answer.json()["result"]["tools"]] == ["echo"]
    assert [context.method for _, context in SEEN] == ["tools/list", "tools/list"]
    # Whatever its shape, the answer is decided with its request (its tool, its schema).
    SEEN.clear()
    async with scripted_upstream() as upstream, installed(gateway.app, Record()):
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":"4","result":{}}')
        tenant = await create_tenant(gateway.app, upstream.url)
        ping = {"jsonrpc": "2.0", "id": 4, "method": "ping"}
        await http.post(gateway.mcp, json=ping, headers=tenant.headers())
    assert [context.method for _, context in SEEN] == ["ping", "ping"]


INITIALIZED = (
    b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},'
    b'"serverInfo":{"name":"s","version":"1"}}}'
)


async def test_requests_answered_202_are_known_to_their_answers_on_the_get_stream(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # An upstream may accept a request (202) and answer it on the session's GET stream; the
    # request was kept only when its POST was answered with a stream, so the answer was
    # decided without knowing it (no pins for a tools/list, no outputSchema for a call).
    accepted: list[object] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            body = orjson.loads(await request.read())
            if body.get("method") == "initialize":
                return await json_answer(INITIALIZED, **{"Mcp-Session-Id": "s-202"})(request)
            if "id" in body:
                accepted.append(body["id"])
            return web.Response(status=202)
        response = await start_sse(request)
        for request_id in accepted:
            answer = {"jsonrpc": "2.0", "id": request_id, "result": {}}
            await response.write(b"data: " + orjson.dumps(answer) + b"\n\n")
        return response

    SEEN.clear()
    async with scripted_upstream() as upstream, installed(gateway.app, Record()):
        upstream.handler = handler
        tenant = await create_tenant(gateway.app, upstream.url)
        session = await open_session(http, gateway, tenant)
        headers = tenant.headers(**{"mcp-session-id": session})
        ping = {"jsonrpc": "2.0", "id": 9, "method": "ping"}
        assert (await http.post(gateway.mcp, json=ping, headers=headers)).status_code == 202
        stream = await http.get(gateway.mcp, headers={**headers, "accept": "text/event-stream"})
    assert sse_messages(stream.text) == [{"jsonrpc": "2.0", "id": 9, "result": {}}]
    answered = [context for seen, context in SEEN if seen == "9"]
    assert [context.method for context in answered] == ["ping"]
