"""A JSON object that names a member twice is refused in both directions, never relayed.

Parsers disagree on such an object: the gateway's keeps the last member, others keep the
first (or refuse). Relayed as written, a repeated `name` carried a tool the policy denies
past RBAC to an upstream that reads the first one, and a repeated `text` carried an email
past the redaction to a client that does.
"""

from __future__ import annotations

import asyncio

import httpx
from aiohttp import web

from cerberus.guardrails.pii_email import PiiEmail
from cerberus.guardrails.rbac import Rbac
from tests.proxy.conftest import Gateway, create_tenant, sse_messages
from tests.proxy.guardrails import installed
from tests.proxy.scripted import json_answer, scripted_upstream, start_sse

SMUGGLED_CALL = (
    b'{"jsonrpc":"2.0","id":7,"method":"tools/call",'
    b'"params":{"name":"drop_tables","name":"echo","arguments":{}}}'
)
CALL = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "echo"}}
EMAIL = "ana@corp.example"
SMUGGLED_ANSWER = (
    b'{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text",'
    b'"text":"' + EMAIL.encode() + b'","text":"nothing to see"}]}}'
)


async def test_a_request_naming_the_tool_twice_is_refused_before_the_upstream(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, Rbac(allowed_tools=("echo",))),
    ):
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":7,"result":{"content":[]}}')
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, content=SMUGGLED_CALL, headers=tenant.headers())
        escaped = SMUGGLED_CALL.replace(b'"name":"echo"', b'"n\\u0061me":"echo"')
        spelled = await http.post(gateway.mcp, content=escaped, headers=tenant.headers())

    assert upstream.received == []
    for refused in (answer, spelled):
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == -32600
        assert error["message"] == "Invalid Request: a JSON object names 'name' twice"


async def test_an_answer_naming_a_text_twice_is_refused_not_relayed(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action="redact")):
        tenant = await create_tenant(gateway.app, upstream.url)
        for status in (200, 400):
            upstream.handler = json_answer(SMUGGLED_ANSWER, status=status)
            answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
            assert answer.status_code == 502, status
            assert answer.json()["error"]["message"] == "Upstream sent an ambiguous JSON body"
            assert EMAIL not in answer.text


async def test_an_event_naming_a_text_twice_ends_the_stream_unrelayed(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        await response.write(
            b'data: {"jsonrpc":"2.0","method":"notifications/message",'
            b'"params":{"level":"info","data":"first"}}\n\n'
        )
        await response.write(b"data: " + SMUGGLED_ANSWER + b"\n\n")
        await asyncio.sleep(0.2)
        return response

    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action="redact")):
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    notice, error = sse_messages(answer.text)
    assert notice["method"] == "notifications/message"
    # The call is answered with an error in place of the refused answer.
    assert error["id"] == CALL["id"]
    assert error["error"]["code"] == -32003
    assert EMAIL not in answer.text
