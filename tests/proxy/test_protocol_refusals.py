"""A message the gateway refuses before any policy could read it is in the audit trail.

A body that is no JSON-RPC, names a member twice, is in another charset or too large, and a
2026-07-28 header that disagrees with its body, are refused before the pipeline runs; so is
an upstream answer the gateway cannot read. Each was in the access log only, so an agent's
attempt to smuggle a call past the policies left no trace an admin could query. Each is now
an audit event like a block, its guardrail `protocol`, its decision id in the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.proxy.conftest import Gateway, Tenant, audit_events, create_tenant, sse_messages
from tests.proxy.scripted import scripted_upstream, start_sse
from tests.proxy.test_transport import modern_call, modern_headers

CALL = b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{}}}'
SMUGGLED_CALL = (
    b'{"jsonrpc":"2.0","id":7,"method":"tools/call",'
    b'"params":{"name":"drop_tables","name":"echo","arguments":{}}}'
)
ANSWER = b'{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"ok"}]}}'
SMUGGLED_ANSWER = (
    b'{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text",'
    b'"text":"ana@corp.example","text":"nothing to see"}]}}'
)


async def post_refused(
    gateway: Gateway,
    http: httpx.AsyncClient,
    headers: Callable[[Tenant], dict[str, str]] = Tenant.headers,
    **request: Any,
) -> tuple[httpx.Response, Tenant]:
    """One POST by a new agent whose upstream must never see it (asserted here)."""
    async with scripted_upstream() as upstream:
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, headers=headers(tenant), **request)
    assert upstream.received == []
    return answer, tenant


def refused(finding: str) -> list[dict[str, Any]]:
    """An audit event's guardrails_triggered for a message the gateway itself refused."""
    return [
        {
            "guardrail": "protocol",
            "action": "block",
            "findings": [{"type": finding, "count": 1, "where": []}],
        }
    ]


@pytest.mark.parametrize(
    ("body", "headers", "status", "finding"),
    [
        (b'{"jsonrpc": "2.0", "id": 1,', {}, 400, "parse_error"),
        (b'{"jsonrpc": "2.0", "id": 6}', {}, 400, "invalid_request"),
        (SMUGGLED_CALL, {}, 400, "ambiguous_json"),
        (CALL, {"content-type": "application/json; charset=utf-7"}, 415, "unreadable_body"),
        (CALL, {"content-encoding": "gzip"}, 415, "unreadable_body"),
    ],
)
async def test_a_request_refused_before_any_policy_is_audited(
    gateway: Gateway,
    http: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    status: int,
    finding: str,
) -> None:
    answer, tenant = await post_refused(
        gateway, http, lambda tenant: tenant.headers(**headers), content=body
    )
    assert answer.status_code == status
    (event,) = await audit_events(gateway.app, tenant.agent_id)
    assert answer.headers["x-request-decision-id"] == event.decision_id
    assert event.direction == "request"
    assert event.action == "block"
    assert event.guardrails_triggered == refused(finding)
    assert event.upstream_status is None
    if finding == "ambiguous_json":
        assert event.method is None  # never read: which name it calls is what is in doubt


async def test_a_body_over_the_limit_is_audited(gateway: Gateway, http: httpx.AsyncClient) -> None:
    limit = gateway.app.state.settings.MCP_MAX_BODY_BYTES
    answer, tenant = await post_refused(gateway, http, content=CALL[:-2] + b" " * limit + b"}}")
    assert answer.status_code == 413
    (event,) = await audit_events(gateway.app, tenant.agent_id)
    assert event.guardrails_triggered == refused("body_too_large")


async def test_a_header_that_disagrees_with_its_body_is_audited_with_the_call(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    answer, tenant = await post_refused(
        gateway,
        http,
        lambda tenant: modern_headers(tenant, name="whoami"),
        json=modern_call(7, "add", {"a": 1, "b": 2}),
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32020
    (event,) = await audit_events(gateway.app, tenant.agent_id)
    assert answer.headers["x-request-decision-id"] == event.decision_id
    assert (event.method, event.tool_name) == ("tools/call", "add")
    assert event.guardrails_triggered == refused("header_mismatch")


async def test_a_refusal_before_authentication_is_not_audited(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    answer, tenant = await post_refused(
        gateway,
        http,
        lambda tenant: {**tenant.headers(), "authorization": "Bearer nope"},
        content=SMUGGLED_CALL,
    )
    assert answer.status_code == 401
    assert await audit_events(gateway.app, tenant.agent_id) == []


@pytest.mark.parametrize(
    ("content_type", "body", "finding"),
    [
        ("application/json", SMUGGLED_ANSWER, "ambiguous_json"),
        ("application/json", b'{"jsonrpc":"2.0","id":4}', "invalid_jsonrpc"),
        ("application/json; charset=utf-7", CALL, "foreign_charset"),
        ("text/html", b"<p>hello</p>", "unknown_content_type"),
    ],
)
async def test_an_answer_refused_before_any_policy_is_audited_with_its_call(
    gateway: Gateway, http: httpx.AsyncClient, content_type: str, body: bytes, finding: str
) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"content-type": content_type})

    async with scripted_upstream() as upstream:
        upstream.handler = answer
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, content=CALL, headers=tenant.headers())
    assert answer.status_code == 502
    request, response = await audit_events(gateway.app, tenant.agent_id)
    assert request.direction == "request"
    assert request.action == "allow"
    assert response.direction == "response"
    assert answer.headers["x-response-decision-id"] == response.decision_id
    assert (response.method, response.tool_name) == ("tools/call", "echo")
    assert response.action == "block"
    assert response.guardrails_triggered == refused(finding)


async def call_over_stream(
    gateway: Gateway, http: httpx.AsyncClient, *events: bytes
) -> tuple[httpx.Response, Tenant]:
    """CALL through the gateway to an upstream that answers with these events' data."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        for data in events:
            await response.write(b"data: " + data + b"\n\n")
        await asyncio.sleep(0.2)
        return response

    async with scripted_upstream() as upstream:
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.post(gateway.mcp, content=CALL, headers=tenant.headers())
    return answer, tenant


async def test_an_event_that_ends_a_stream_is_audited(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    answer, tenant = await call_over_stream(gateway, http, SMUGGLED_ANSWER)
    assert answer.status_code == 200
    (event,) = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert event.guardrails_triggered == refused("ambiguous_json")
    # The header named the id before the stream began: it is the refusal's event. And the
    # call is answered, as any request the gateway refuses is (mcp-proxy 5.6).
    assert answer.headers["x-response-decision-id"] == event.decision_id
    (error,) = sse_messages(answer.text)
    assert error["id"] == 4
    assert error["error"]["code"] == -32003
    assert error["error"]["data"] == {"decision_id": event.decision_id}


async def test_an_event_that_ends_a_stream_after_its_answer_answers_nothing_more(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    answer, tenant = await call_over_stream(gateway, http, ANSWER, SMUGGLED_ANSWER)
    (relayed,) = sse_messages(answer.text)
    assert relayed["result"]["content"][0]["text"] == "ok"
    answered, refusal = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert answer.headers["x-response-decision-id"] == answered.decision_id
    assert refusal.guardrails_triggered == refused("ambiguous_json")


async def test_an_event_refused_after_deciding_its_answer_still_answers_the_call(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # The batch's answer is decided before its second member turns out not to be JSON-RPC;
    # the event is not sent, so the call would wait for an answer that never came.
    answer, _ = await call_over_stream(gateway, http, b"[" + ANSWER + b', {"bad": 1}]')
    (error,) = sse_messages(answer.text)
    assert error["id"] == 4
    assert error["error"]["code"] == -32003


async def test_a_get_stream_names_no_answer_decision(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # A GET answers no request: an id named for it had no audit event.
    async def stream(request: web.Request) -> web.StreamResponse:
        response = await start_sse(request)
        notice = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"hi"}}'
        await response.write(b"data: " + notice + b"\n\n")
        return response

    async with scripted_upstream() as upstream:
        upstream.handler = stream
        tenant = await create_tenant(gateway.app, upstream.url)
        answer = await http.get(gateway.mcp, headers=tenant.headers(accept="text/event-stream"))
    assert answer.status_code == 200
    assert sse_messages(answer.text)[0]["params"]["data"] == "hi"
    assert "x-response-decision-id" not in answer.headers
