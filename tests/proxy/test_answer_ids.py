"""Answers matched to their requests as the SDK clients match them, and answers the gateway
cannot match decided as every listing they hold (docs/proxy.md, "Ids are matched...").

The Python SDK (mcp 2.x) matches an answer by `int(id)` of a string id
(`mcp.shared.dispatcher.coerce_request_id`), the TypeScript SDK by `Number(id)`: an answer
the gateway did not take for its request's was decided by its shape, `tools` first, and the
denied prompts beside an empty `tools` reached the agent.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from mcp.shared.dispatcher import coerce_request_id

from cerberus.guardrails.rbac import Rbac
from tests.proxy.conftest import Gateway, audit_events, create_tenant, open_session, sse_messages
from tests.proxy.guardrails import SEEN, BlockServerMethod, Record, installed
from tests.proxy.scripted import json_answer, scripted_upstream, start_sse

PROMPTS = [{"name": "admin_reset_all"}, {"name": "summary"}]
HIDE_ADMIN = Rbac(denied_prompts=("admin_*",))


def prompts_answer(answer_id: Any) -> bytes:
    # `tools` first in the shape, so an answer taken for no request was a tools/list.
    result = {"tools": [], "prompts": PROMPTS}
    return orjson.dumps({"jsonrpc": "2.0", "id": answer_id, "result": result})


def seen_methods() -> list[str | None]:
    return [context.method for _, context in SEEN]


# (the SDK that reads the answer's id as its request's, the request's id, the answer's id)
SPELLINGS = [
    ("python", 3, "+3"),
    ("python", 3, " 3 "),
    ("python", 3, "3\n"),
    ("python", 3, "03"),
    ("python", 3, "0_3"),
    ("python", 3, "\u0663"),  # ARABIC-INDIC DIGIT THREE
    ("python", 3, "\u00a03\u3000"),
    ("python", -3, "-3"),
    ("typescript", 3, "3.0"),
    ("typescript", 3, "0x3"),
    ("typescript", 3, "3e0"),
    ("typescript", 3, ".3e1"),
    ("typescript", 3, "0b11"),
    ("typescript", 3, "\ufeff3"),
    ("typescript", 0, ""),  # Number("") is 0, the TypeScript client's first request id
]


@pytest.mark.parametrize(("sdk", "request_id", "answer_id"), SPELLINGS)
async def test_an_answer_id_an_sdk_reads_as_its_requests_is_decided_as_its_answer(
    gateway: Gateway, http: httpx.AsyncClient, sdk: str, request_id: int, answer_id: str
) -> None:
    if sdk == "python":  # what the official Python client does with the id
        assert coerce_request_id(answer_id) == request_id
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, HIDE_ADMIN, Record()),
    ):
        upstream.handler = json_answer(prompts_answer(answer_id))
        tenant = await create_tenant(gateway.app, upstream.url)
        listing = {"jsonrpc": "2.0", "id": request_id, "method": "prompts/list"}
        answer = await http.post(gateway.mcp, json=listing, headers=tenant.headers())
    assert answer.json()["result"]["prompts"] == [{"name": "summary"}]
    assert seen_methods() == ["prompts/list", "prompts/list"]


async def test_a_string_request_id_an_sdk_reads_as_a_number_is_found_by_that_number(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # A request sent with id "+5" is pending as 5 in the Python SDK: 5 and "5" answer it.
    assert coerce_request_id("+5") == 5
    for answer_id in (5, "5", " 5"):
        async with (
            scripted_upstream() as upstream,
            installed(gateway.app, HIDE_ADMIN, Record()),
        ):
            upstream.handler = json_answer(prompts_answer(answer_id))
            tenant = await create_tenant(gateway.app, upstream.url)
            listing = {"jsonrpc": "2.0", "id": "+5", "method": "prompts/list"}
            answer = await http.post(gateway.mcp, json=listing, headers=tenant.headers())
        assert answer.json()["result"]["prompts"] == [{"name": "summary"}], answer_id
        assert seen_methods() == ["prompts/list", "prompts/list"]


INITIALIZED = (
    b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},'
    b'"serverInfo":{"name":"s","version":"1"}}}'
)


async def test_spellings_are_matched_through_the_session_store_too(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # Requests accepted with a 202 and answered on the GET stream are recalled from the
    # session store: request 7 answered as "+7", request "+8" answered as 8.
    answer_ids = {7: "+7", "+8": 8}
    accepted: list[Any] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            body = orjson.loads(await request.read())
            if body.get("method") == "initialize":
                return await json_answer(INITIALIZED, **{"Mcp-Session-Id": "s-ids"})(request)
            if "id" in body:
                accepted.append(body["id"])
            return web.Response(status=202)
        response = await start_sse(request)
        for request_id in accepted:
            answer = prompts_answer(answer_ids[request_id])
            await response.write(b"data: " + answer + b"\n\n")
        return response

    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, HIDE_ADMIN, Record()),
    ):
        upstream.handler = handler
        tenant = await create_tenant(gateway.app, upstream.url)
        session = await open_session(http, gateway, tenant)
        headers = tenant.headers(**{"mcp-session-id": session})
        for request_id in answer_ids:
            listing = {"jsonrpc": "2.0", "id": request_id, "method": "prompts/list"}
            assert (await http.post(gateway.mcp, json=listing, headers=headers)).status_code == 202
        SEEN.clear()
        stream = await http.get(gateway.mcp, headers={**headers, "accept": "text/event-stream"})
    answers = sse_messages(stream.text)
    assert [message["id"] for message in answers] == ["+7", 8]
    assert [message["result"]["prompts"] for message in answers] == [[{"name": "summary"}]] * 2
    assert seen_methods() == ["prompts/list", "prompts/list"]


UNMATCHED_LISTINGS = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 70,
        "result": {
            "tools": [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "drop"}],
            "resources": [{"uri": "secret://keys", "name": "k"}, {"uri": "file:///a", "name": "a"}],
            "resourceTemplates": [{"uriTemplate": "secret://{id}", "name": "t"}],
            "prompts": PROMPTS,
        },
    }
)


def unmatched_then_own(request: web.Request) -> Any:
    async def stream() -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(b"data: " + UNMATCHED_LISTINGS + b"\n\n")
        await response.write(b'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
        return response

    return stream()


async def test_an_unmatched_answer_holding_several_listings_has_each_one_filtered(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # The client reads the listing its request asked for, which the gateway cannot tell
    # for an answer it matches to no request: each listing is filtered as its own.
    rbac = Rbac(
        allowed_tools=("echo",), denied_prompts=("admin_*",), denied_resources=("secret://*",)
    )
    async with scripted_upstream() as upstream, installed(gateway.app, rbac, Record()):
        upstream.handler = unmatched_then_own
        tenant = await create_tenant(gateway.app, upstream.url)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        answer = await http.post(gateway.mcp, json=ping, headers=tenant.headers())
    listings, own = sse_messages(answer.text)
    assert listings["result"] == {
        "tools": [{"name": "echo", "inputSchema": {"type": "object"}}],
        "resources": [{"uri": "file:///a", "name": "a"}],
        "resourceTemplates": [],
        "prompts": [{"name": "summary"}],
    }
    assert own == {"jsonrpc": "2.0", "id": 1, "result": {}}
    listing_methods = [context.method for seen, context in SEEN if seen == "70"]
    assert listing_methods == [
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
    ]
    # One audit event for the answer, with what each pass hid.
    events = await audit_events(gateway.app, tenant.agent_id, direction="response")
    (event,) = [e for e in events if e.method == "tools/list"]
    assert event.action == "modify"
    hidden = [f["type"] for g in event.guardrails_triggered for f in g["findings"]]
    assert hidden == ["tool_hidden", "resource_hidden", "resource_hidden", "prompt_hidden"]


async def test_an_unmatched_answer_is_blocked_when_any_listing_it_holds_is(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    guardrails = (BlockServerMethod(method="prompts/list"), Record())
    async with scripted_upstream() as upstream, installed(gateway.app, *guardrails):
        upstream.handler = unmatched_then_own
        tenant = await create_tenant(gateway.app, upstream.url)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        answer = await http.post(gateway.mcp, json=ping, headers=tenant.headers())
    blocked, own = sse_messages(answer.text)
    assert blocked["id"] == 70
    assert "result" not in blocked
    assert blocked["error"]["data"]["guardrails_triggered"] == ["test_block_method"]
    assert own == {"jsonrpc": "2.0", "id": 1, "result": {}}
