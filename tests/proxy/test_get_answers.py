"""A GET's answer that is not an event stream is decided like a POST's, never relayed unread.

A GET opens the server's event stream (or gets a 405). An upstream that answered it with a
JSON body instead had that body relayed as it came, whatever it held: a client that reads
it read a message no policy had seen.
"""

from __future__ import annotations

from typing import Any

import httpx
from aiohttp import web

from cerberus.guardrails.pii_email import PiiEmail
from tests.proxy.conftest import Gateway, audit_events, create_tenant
from tests.proxy.guardrails import installed
from tests.proxy.scripted import scripted_upstream

NOTICE = (
    b'{"jsonrpc":"2.0","method":"notifications/message",'
    b'"params":{"level":"info","data":"write to ana@corp.example"}}'
)


def answering(body: bytes, content_type: str, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


async def get(gateway: Gateway, http: httpx.AsyncClient, body: bytes, content_type: str) -> Any:
    async def answer(request: web.Request) -> web.StreamResponse:
        return answering(body, content_type)

    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action="redact")):
        upstream.handler = answer
        tenant = await create_tenant(gateway.app, upstream.url)
        headers = tenant.headers(accept="text/event-stream")
        return tenant, await http.get(gateway.mcp, headers=headers)


async def test_a_json_message_answering_a_get_is_decided(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    tenant, answer = await get(gateway, http, NOTICE, "application/json")
    assert answer.status_code == 200
    assert "ana@corp.example" not in answer.text
    assert answer.json()["params"]["data"] == "write to [REDACTED:EMAIL]"
    events = await audit_events(gateway.app, tenant.agent_id)
    assert [e.guardrails_triggered[0]["guardrail"] for e in events] == ["pii_email"]


async def test_a_get_answer_the_gateway_cannot_read_is_refused(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # An event stream's framing labelled as JSON, and a type the gateway does not read.
    for body, content_type in (
        (b"data: " + NOTICE + b"\n\n", "application/json"),
        (b"write to ana@corp.example", "text/plain"),
    ):
        _, answer = await get(gateway, http, body, content_type)
        assert answer.status_code == 502, content_type
        assert "ana@corp.example" not in answer.text


async def test_an_empty_get_answer_and_a_delete_answer_pass_as_they_are(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    _, answer = await get(gateway, http, b"", "application/json")
    assert answer.status_code == 200
    assert answer.content == b""

    async def deleted(request: web.Request) -> web.StreamResponse:
        return answering(b'{"deleted": true}', "application/json")

    async with scripted_upstream() as upstream:
        upstream.handler = deleted
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.delete(gateway.mcp, headers=tenant.headers())
    # A DELETE's answer carries no message; clients read only its status.
    assert answer.status_code == 200
    assert answer.json() == {"deleted": True}
