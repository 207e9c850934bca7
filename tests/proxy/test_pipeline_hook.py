"""Every message passes the Pipeline: blocks, throttles, rewrites, decision ids.

Covers mcp-proxy 5.3, 5.6 and 7.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from aiohttp import web

from tests.proxy.conftest import Gateway, Tenant, audit_events, create_tenant, sse_messages
from tests.proxy.guardrails import (
    SEEN,
    BlockMethod,
    BlockServerMethod,
    BlockTool,
    Record,
    RedactEmail,
    RewriteArguments,
    ThrottleTool,
    installed,
)
from tests.proxy.scripted import json_answer, scripted_upstream
from tests.proxy.test_transport import modern_call, modern_headers


async def test_blocked_request_is_answered_32001_with_its_id_and_never_sent_mcp_proxy_5_6(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, BlockTool(tool="delete_all")),
    ):
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":"x","result":{}}')
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {
            "jsonrpc": "2.0",
            "id": "x",
            "method": "tools/call",
            "params": {"name": "delete_all"},
        }
        answer = await http.post(gateway.mcp, json=call, headers=tenant.headers())
        assert upstream.received == []
    error = answer.json()["error"]
    assert answer.status_code == 200
    assert answer.json()["id"] == "x"
    assert error["code"] == -32001
    assert error["data"]["action"] == "block"
    assert error["data"]["guardrails_triggered"] == ["test_block_tool"]
    assert error["data"]["decision_id"] == answer.headers["x-request-decision-id"]
    assert answer.headers["x-request-id"]
    (event,) = await audit_events(gateway.app, tenant.agent_id)
    assert (event.decision_id, event.action, event.tool_name) == (
        error["data"]["decision_id"],
        "block",
        "delete_all",
    )
    assert event.guardrails_triggered[0]["findings"] == [
        {"type": "denied_tool", "count": 1, "where": []}
    ]


async def test_throttled_request_carries_retry_after(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    async with installed(gateway.app, ThrottleTool(tool="add")):
        answer = await http.post(
            gateway.mcp,
            json=modern_call(1, "add", {"a": 1, "b": 2}),
            headers=modern_headers(tenant, name="add"),
        )
    assert answer.headers["retry-after"] == "3"
    data = answer.json()["error"]["data"]
    assert data["action"] == "throttle"
    assert data["retry_after_seconds"] == 2.5


async def test_rewritten_request_is_what_the_upstream_gets(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    async with installed(gateway.app, RewriteArguments(argument="b", value=40)):
        answer = await http.post(
            gateway.mcp,
            json=modern_call(1, "add", {"a": 2, "b": 3}),
            headers=modern_headers(tenant, name="add"),
        )
    assert answer.json()["result"]["structuredContent"] == {"result": 42}


async def test_json_answer_is_decided_with_its_request_and_ids_match_audit(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    async with installed(gateway.app, Record(), RedactEmail()):
        answer = await http.post(
            gateway.mcp,
            json=modern_call(8, "get_customer", {"customer_id": "c1"}),
            headers=modern_headers(tenant, name="get_customer"),
        )
    result = answer.json()["result"]
    assert result["structuredContent"]["email"] == "[REDACTED:email]"
    assert "jane@example.com" not in answer.text
    response_context = next(c for _, c in SEEN if c.direction == "response")
    assert response_context.method == "tools/call"
    assert response_context.tool_name == "get_customer"
    assert response_context.request is not None
    assert response_context.request["params"]["arguments"] == {"customer_id": "c1"}
    assert response_context.cache is gateway.app.state.cache
    # The size of the body each message came in (a large one is walked off the loop).
    request_context = next(c for _, c in SEEN if c.direction == "request")
    assert request_context.message_bytes == len(answer.request.content)
    assert response_context.message_bytes > len(b'"structuredContent"')
    events = await audit_events(gateway.app, tenant.agent_id)
    by_direction = {event.direction: event for event in events}
    assert by_direction["request"].decision_id == answer.headers["x-request-decision-id"]
    assert by_direction["response"].decision_id == answer.headers["x-response-decision-id"]
    assert by_direction["response"].action == "modify"
    assert by_direction["response"].upstream_status == 200


async def test_sse_answer_decision_id_is_the_one_named_in_the_header(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    from tests.proxy.conftest import open_session

    session_id = await open_session(http, gateway, tenant)
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 1}},
    }
    answer = await http.post(
        gateway.mcp, json=call, headers=tenant.headers(**{"mcp-session-id": session_id})
    )
    assert sse_messages(answer.text)[-1]["result"]["structuredContent"] == {"result": 2}
    events = await audit_events(
        gateway.app, tenant.agent_id, direction="response", method="tools/call"
    )
    assert [event.decision_id for event in events] == [answer.headers["x-response-decision-id"]]


async def test_blocked_server_notification_is_dropped_and_blocked_answer_keeps_its_id(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    from tests.proxy.conftest import open_session

    session_id = await open_session(http, gateway, tenant)
    call = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "slow_count", "arguments": {"steps": 2}, "_meta": {"progressToken": 1}},
    }
    async with installed(gateway.app, BlockServerMethod(method="notifications/progress")):
        answer = await http.post(
            gateway.mcp, json=call, headers=tenant.headers(**{"mcp-session-id": session_id})
        )
    messages = sse_messages(answer.text)
    assert [m.get("id") for m in messages] == [4]
    async with installed(gateway.app, BlockServerMethod(method="tools/call")):
        blocked = await http.post(
            gateway.mcp, json=call, headers=tenant.headers(**{"mcp-session-id": session_id})
        )
    final = sse_messages(blocked.text)[-1]
    assert final["id"] == 4
    assert final["error"]["code"] == -32001


async def test_blocked_client_notification_is_refused(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, BlockMethod(method="notifications/cancelled")),
    ):
        tenant = await create_tenant(gateway.app, upstream.url)
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
        answer = await http.post(gateway.mcp, json=note, headers=tenant.headers())
        assert upstream.received == []
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == -32001
    assert answer.json()["id"] is None


async def test_blocked_client_answer_reaches_the_server_as_an_error_mcp_proxy_5_3(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    from tests.proxy.conftest import open_session

    session_id = await open_session(http, gateway, tenant)
    headers = tenant.headers(**{"mcp-session-id": session_id})
    call = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "ask_model", "arguments": {"prompt": "hi"}},
    }
    async with (
        installed(gateway.app, BlockMethod(method="sampling/createMessage")),
        http.stream("POST", gateway.mcp, json=call, headers=headers) as stream,
    ):
        lines = stream.aiter_lines()
        async for line in lines:
            if line.startswith("data:") and line[5:].strip():
                sampling = orjson.loads(line[5:])
                break
        answer = {
            "jsonrpc": "2.0",
            "id": sampling["id"],
            "result": {
                "role": "assistant",
                "content": {"type": "text", "text": "leak"},
                "model": "m",
            },
        }
        accepted = await http.post(gateway.mcp, json=answer, headers=headers)
        assert accepted.status_code == 202
        rest = "\n".join([line async for line in lines])
    final = sse_messages(rest)[-1]
    # The server's sampling request failed with Cerberus' error, so its tool call failed too.
    assert final["id"] == 5
    assert "error" in final
    assert "Blocked by Cerberus" in final["error"]["message"]
    assert "leak" not in rest


async def test_batch_elements_are_each_decided_and_forwarded_together_mcp_proxy_7(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    batch_answer = (
        b'[{"jsonrpc":"2.0","id":1,"result":{"email":"jane@example.com"}},'
        b'{"jsonrpc":"2.0","id":2,"result":{}}]'
    )
    async with scripted_upstream() as upstream, installed(gateway.app, Record(), RedactEmail()):
        upstream.handler = json_answer(batch_answer)
        tenant = await create_tenant(gateway.app, upstream.url)
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a"}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "b"}},
            {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
        ]
        answer = await http.post(
            gateway.mcp,
            json=batch,
            headers=tenant.headers(**{"mcp-protocol-version": "2025-03-26"}),
        )
        assert orjson.loads(upstream.received[0].body) == batch
    assert answer.json()[0]["result"]["email"] == "[REDACTED:email]"
    seen_requests = [c.tool_name for _, c in SEEN if c.direction == "request"]
    assert seen_requests == ["a", "b", None]
    responses = [c.tool_name for _, c in SEEN if c.direction == "response"]
    assert responses == ["a", "b"]


async def test_batch_with_a_blocked_element_is_refused_whole_mcp_proxy_7(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream, installed(gateway.app, BlockTool(tool="b")):
        upstream.handler = json_answer(b"[]")
        tenant = await create_tenant(gateway.app, upstream.url)
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a"}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "b"}},
        ]
        answer = await http.post(gateway.mcp, json=batch, headers=tenant.headers())
        assert upstream.received == []
    errors = {item["id"]: item["error"] for item in answer.json()}
    assert errors[2]["data"]["guardrails_triggered"] == ["test_block_tool"]
    assert errors[1]["code"] == -32001


async def test_sdk_upstream_refuses_batches_and_the_400_is_relayed_mcp_proxy_7(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]
    answer = await http.post(gateway.mcp, json=batch, headers=tenant.headers())
    assert answer.status_code == 400


async def test_blocked_server_request_never_reaches_the_client_and_the_server_is_answered(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """mcp-proxy 5.3 and 5.6: the server is not left waiting for an answer that cannot come."""
    from tests.proxy.conftest import open_session

    session_id = await open_session(http, gateway, tenant)
    call = {
        "jsonrpc": "2.0",
        "id": 6,
        "method": "tools/call",
        "params": {"name": "ask_model", "arguments": {"prompt": "hi"}},
    }
    async with installed(gateway.app, BlockServerMethod(method="sampling/createMessage")):
        answer = await http.post(
            gateway.mcp, json=call, headers=tenant.headers(**{"mcp-session-id": session_id})
        )
    messages = sse_messages(answer.text)
    assert all(m.get("method") != "sampling/createMessage" for m in messages)
    assert messages[-1]["id"] == 6
    assert "Blocked by Cerberus" in orjson.dumps(messages[-1]).decode()


async def test_redacted_modern_argument_is_sent_when_no_header_mirrors_it(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """A 2026-07-28 tools/call argument without an Mcp-Param-* header may be redacted."""
    from cerberus.guardrails.pii_email import PiiEmail

    async with installed(gateway.app, PiiEmail(action="redact")):
        answer = await http.post(
            gateway.mcp,
            json=modern_call(1, "get_customer", {"customer_id": "ask bob@corp.example"}),
            headers=modern_headers(tenant, name="get_customer"),
        )
    body = answer.json()
    assert "error" not in body, body
    assert body["result"]["structuredContent"]["customer_id"] == "ask [REDACTED:EMAIL]"


async def test_an_upstream_refusal_is_decided_before_it_reaches_the_client(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    """A 4xx answer keeps its status and, when no guardrail objects, its bytes; a message in
    it passes the same guardrails as one in a 200 (an error text can carry what a result
    could: the SDK clients show it to the model)."""
    from cerberus.guardrails.pii_email import PiiEmail

    error = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"%s"}}'
    leaky, plain = error % b"no order for ana@corp.example", error % b"no such order"
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, PiiEmail(action="redact")),
    ):
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "orders"}}
        upstream.handler = json_answer(leaky, status=400)
        redacted = await http.post(gateway.mcp, json=call, headers=tenant.headers())
        upstream.handler = json_answer(plain, status=404)
        untouched = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert redacted.status_code == 400
    assert redacted.json()["error"]["message"] == "no order for [REDACTED:EMAIL]"
    assert redacted.headers["x-response-decision-id"]
    assert untouched.status_code == 404
    assert untouched.content == plain
    events = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert [event.action for event in events] == ["modify", "allow"]


REFUSAL_BODIES = {
    # Each is relayed to the client, whose SDK puts it in the error the model reads; none is
    # a JSON-RPC message the gateway could decide on, so each went through unread.
    "text": (b"no order for ana@corp.example", "text/plain"),
    "json with NaN": (
        b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"ana@corp.example","data":NaN}}',
        "application/json",
    ),
    "method not a string": (
        b'{"jsonrpc":"2.0","id":1,"method":5,"error":{"code":-1,"message":"ana@corp.example"}}',
        "application/json",
    ),
    "type in capitals": (
        b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"no order for ana@corp.example"}}',
        "Application/JSON",
    ),
    "oauth error": (
        b'{"error":"invalid_token","error_description":"token of ana@corp.example expired"}',
        "application/json",
    ),
}


@pytest.mark.parametrize("kind", list(REFUSAL_BODIES))
@pytest.mark.parametrize("action", ["redact", "block"])
async def test_an_upstream_refusal_that_is_no_message_is_checked_as_text(
    gateway: Gateway, http: httpx.AsyncClient, kind: str, action: str
) -> None:
    from cerberus.guardrails.pii_email import PiiEmail

    body, content_type = REFUSAL_BODIES[kind]

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=400, headers={"Content-Type": content_type})

    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action=action)):
        tenant = await create_tenant(gateway.app, upstream.url)
        upstream.handler = answer
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "orders"}}
        relayed = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert relayed.status_code == 400
    assert "ana@corp.example" not in relayed.text
    assert relayed.headers["x-response-decision-id"]
    if action == "redact" and kind != "type in capitals":
        assert relayed.content == body.replace(b"ana@corp.example", b"[REDACTED:EMAIL]")
    elif action == "block":
        assert relayed.json()["error"]["code"] == -32001
        assert relayed.json()["id"] == 1
    events = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert [event.action for event in events] == ["modify" if action == "redact" else "block"]


async def test_an_upstream_refusal_that_is_not_utf8_is_withheld(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # Read as the charset it names, it could say what the gateway never checked.
    async def answer(request: web.Request) -> web.StreamResponse:
        page = "<p>Commande introuvable pour ana@corp.example</p>".encode("utf-16")
        return web.Response(body=page, status=404, headers={"Content-Type": "text/html"})

    async with scripted_upstream() as upstream:
        tenant = await create_tenant(gateway.app, upstream.url)
        upstream.handler = answer
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "orders"}}
        relayed = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert relayed.status_code == 404
    assert relayed.json()["error"]["message"] == "Upstream refusal withheld: its body is not UTF-8"
    events = await audit_events(gateway.app, tenant.agent_id, direction="response")
    assert [event.action for event in events] == ["block"]


@pytest.mark.parametrize(
    "ids", [(7, 7), ("7", "7"), (7, "7"), (7, 7.0)], ids=["same", "strings", "spelled", "float"]
)
async def test_a_batch_whose_requests_share_an_id_is_refused(
    gateway: Gateway, http: httpx.AsyncClient, ids: tuple[object, object]
) -> None:
    # Each answer was decided as the last request with its id: the tools/list's answer as
    # a ping's, its tools unfiltered by RBAC.
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(b"[]")
        tenant = await create_tenant(gateway.app, upstream.url)
        batch = [
            {"jsonrpc": "2.0", "id": ids[0], "method": "tools/list"},
            {"jsonrpc": "2.0", "id": ids[1], "method": "ping"},
        ]
        answer = await http.post(
            gateway.mcp,
            json=batch,
            headers=tenant.headers(**{"mcp-protocol-version": "2025-03-26"}),
        )
        assert upstream.received == []
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "Invalid Request: two requests of the batch share an id"
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"method": "ping", "params": []},
        {"method": "ping"},
        {"method": "notifications/message", "params": {"level": "info"}},
    ],
)
async def test_an_answer_that_is_also_a_request_is_refused(
    gateway: Gateway, http: httpx.AsyncClient, extra: dict[str, object]
) -> None:
    # Read here as a server->client request (no listing filter, no pin check) and by the
    # SDK clients as the answer beside it: a tools/list answer passed with every tool.
    tools = [{"name": "add", "inputSchema": {"type": "object"}}]
    disguised = {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}, **extra}
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(orjson.dumps(disguised))
        tenant = await create_tenant(gateway.app, upstream.url)
        asked = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        answer = await http.post(gateway.mcp, json=asked, headers=tenant.headers())
    assert answer.status_code == 502
    assert '"add"' not in answer.text
