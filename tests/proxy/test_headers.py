"""Headers across the gateway: Mcp-* pass, Host/Origin/Authorization do not, mirrors are checked
(mcp-proxy 1.9, 1.10, 3.x, 8, 9)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import orjson

from cerberus.settings import Settings
from tests.proxy.conftest import (
    Gateway,
    Tenant,
    audit_events,
    create_tenant,
    initialize_body,
    running_gateway,
)
from tests.proxy.guardrails import RewriteArguments, installed
from tests.proxy.scripted import json_answer, scripted_upstream
from tests.proxy.test_transport import MODERN, modern_call, modern_headers
from tests.servers import Server

RESULT = b'{"jsonrpc":"2.0","id":1,"result":{}}'


async def whoami(
    http: httpx.AsyncClient, gateway: Gateway, tenant: Tenant, **extra: str
) -> dict[str, str]:
    answer = await http.post(
        gateway.mcp,
        json=modern_call(1, "whoami", {}),
        headers={**modern_headers(tenant, name="whoami"), **extra},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["result"]["structuredContent"])


async def test_mcp_headers_and_last_event_id_pass_both_ways_mcp_proxy_1_9_3_5(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(
            RESULT,
            **{"Mcp-Session-Id": "s-1", "MCP-Protocol-Version": "2025-11-25", "Mcp-Custom": "x"},
        )
        tenant = await create_tenant(gateway.app, upstream.url)
        sent = {
            "MCP-Protocol-Version": "2025-06-18",
            "Mcp-Param-Region": "eu-west-1",
            "Last-Event-ID": "42",
            "X-Custom": "kept",
        }
        answer = await http.post(
            gateway.mcp, json=initialize_body(), headers={**tenant.headers(), **sent}
        )
    received = upstream.received[0].headers
    for name, value in sent.items():
        assert received[name.lower()] == value
    assert received["accept"] == "application/json, text/event-stream"
    assert answer.headers["mcp-session-id"] == "s-1"
    assert answer.headers["mcp-protocol-version"] == "2025-11-25"
    assert answer.headers["mcp-custom"] == "x"


async def test_protocol_version_is_never_added_mcp_proxy_3_1(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(RESULT)
        tenant = await create_tenant(gateway.app, upstream.url)
        await http.post(gateway.mcp, json=initialize_body(), headers=tenant.headers())
    assert "mcp-protocol-version" not in upstream.received[0].headers


async def test_host_origin_and_authorization_stay_at_the_gateway_mcp_proxy_1_10_9_6(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    seen = await whoami(
        http,
        gateway,
        tenant,
        host="gateway.example.com",
        origin="http://localhost:6274",
        cookie="session=abc",
    )
    assert seen["host"].startswith("127.0.0.1:")
    assert "origin" not in seen
    assert "authorization" not in seen
    assert "cookie" not in seen


async def test_gateway_request_id_and_forwarded_for_go_upstream(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    seen = await whoami(http, gateway, tenant, **{"x-request-id": "trace-123"})
    assert seen["x-gateway-request-id"] == "trace-123"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    # Without trusted proxies in front (TRUSTED_PROXY_HOPS=0), a chain is the client's own
    # writing: the upstream is told the address the gateway saw, not a forged one.
    chained = await whoami(http, gateway, tenant, **{"x-forwarded-for": "10.0.0.9, 10.0.0.1"})
    assert chained["x-forwarded-for"] == "127.0.0.1"
    # Nor does any other header a client could name an address or a host with.
    claims = {
        "forwarded": "for=6.6.6.6;proto=https",
        "x-real-ip": "6.6.6.6",
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "https",
    }
    told = await whoami(http, gateway, tenant, **claims)
    assert not set(claims) & set(told)


async def test_behind_one_proxy_the_client_is_the_entry_it_appended(
    proxy_settings: Callable[..., Settings], upstream: Server, http: httpx.AsyncClient
) -> None:
    async with running_gateway(proxy_settings(TRUSTED_PROXY_HOPS=1)) as gateway:
        tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
        # The client wrote 6.6.6.6; the load balancer appended the address it saw.
        forged = {"x-forwarded-for": "6.6.6.6, 203.0.113.7"}
        assert (await whoami(http, gateway, tenant, **forged))["x-forwarded-for"] == "203.0.113.7"
        two_headers = [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.2")]
        answer = await http.post(
            gateway.mcp,
            json=modern_call(1, "whoami", {}),
            headers=[*modern_headers(tenant, name="whoami").items(), *two_headers],
        )
        assert answer.json()["result"]["structuredContent"]["x-forwarded-for"] == "198.51.100.2"
        # Not through the load balancer (a health check inside the network): its own peer.
        assert (await whoami(http, gateway, tenant))["x-forwarded-for"] == "127.0.0.1"


async def test_client_authorization_is_forwarded_only_when_configured_mcp_proxy_9_6(
    proxy_settings, upstream, http: httpx.AsyncClient
) -> None:
    async with running_gateway(proxy_settings(FORWARD_CLIENT_AUTHORIZATION=True)) as gateway:
        tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
        seen = await whoami(http, gateway, tenant)
    assert seen["authorization"] == f"Bearer {tenant.key}"


async def test_foreign_origin_is_refused_and_loopback_admitted_mcp_proxy_8(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    evil = await http.post(
        gateway.mcp,
        json=initialize_body(),
        headers={**tenant.headers(), "origin": "http://evil.example.com"},
    )
    assert evil.status_code == 403
    assert evil.json()["error"]["message"] == "Forbidden: Origin not allowed"
    assert (await whoami(http, gateway, tenant, origin="http://127.0.0.1:3000"))["host"]


async def test_allowed_origins_setting_admits_listed_origins_only_mcp_proxy_8(
    proxy_settings, upstream, http: httpx.AsyncClient
) -> None:
    settings = proxy_settings(ALLOWED_ORIGINS=["https://app.example.com"])
    async with running_gateway(settings) as gateway:
        tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
        assert await whoami(http, gateway, tenant, origin="https://app.example.com")
        local = await http.post(
            gateway.mcp,
            json=initialize_body(),
            headers={**tenant.headers(), "origin": "http://localhost"},
        )
        assert local.status_code == 403


async def test_mcp_method_mismatch_is_refused_before_policy_and_upstream_mcp_proxy_3_3(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(RESULT)
        tenant = await create_tenant(gateway.app, upstream.url)
        cases = [
            modern_headers(tenant, "tools/list", name="add"),  # method differs
            modern_headers(tenant, name="whoami"),  # name differs from params.name
            {k: v for k, v in modern_headers(tenant, name="add").items() if k != "mcp-name"},
            {k: v for k, v in modern_headers(tenant, name="add").items() if k != "mcp-method"},
        ]
        for headers in cases:
            answer = await http.post(
                gateway.mcp, json=modern_call(7, "add", {"a": 1, "b": 2}), headers=headers
            )
            assert answer.status_code == 400
            assert answer.json()["error"]["code"] == -32020
            assert answer.json()["id"] == 7
        assert upstream.received == []
    # No policy ran: each refusal is audited as the gateway's own (test_protocol_refusals.py).
    events = await audit_events(gateway.app, tenant.agent_id)
    assert len(events) == len(cases)
    assert {entry["guardrail"] for event in events for entry in event.guardrails_triggered} == {
        "protocol"
    }


async def test_base64_encoded_mcp_name_matches_mcp_proxy_3_3(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(RESULT)
        tenant = await create_tenant(gateway.app, upstream.url)
        encoded = "=?base64?" + base64.b64encode("café".encode()).decode() + "?="
        answer = await http.post(
            gateway.mcp,
            json=modern_call(1, "café", {}),
            headers=modern_headers(tenant, name=encoded),
        )
    assert answer.status_code == 200


async def test_protocol_version_header_must_match_meta_mcp_proxy_3_2(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(RESULT)
        tenant = await create_tenant(gateway.app, upstream.url)
        headers = {**modern_headers(tenant, name="add"), "mcp-protocol-version": "2027-01-01"}
        answer = await http.post(gateway.mcp, json=modern_call(1, "add", {}), headers=headers)
    assert answer.json()["error"]["code"] == -32020


async def test_unsupported_version_body_is_relayed_verbatim_mcp_proxy_3_2(
    gateway: Gateway, tenant: Tenant, upstream, http: httpx.AsyncClient
) -> None:
    call = modern_call(1, "add", {"a": 1, "b": 1})
    call["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2027-01-01"
    headers = {**modern_headers(tenant, name="add"), "mcp-protocol-version": "2027-01-01"}
    through = await http.post(gateway.mcp, json=call, headers=headers)
    direct_headers = {k: v for k, v in headers.items() if k != "authorization"}
    direct = await http.post(f"{upstream.url}/mcp", json=call, headers=direct_headers)
    assert through.status_code == direct.status_code == 400
    assert through.content == direct.content
    assert through.json()["error"]["code"] == -32022


async def test_unknown_modern_method_keeps_its_404_mcp_proxy_3_6(
    gateway: Gateway, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    call = modern_call(1, "x", {})
    call["method"] = "foo/bar"
    call["params"].pop("name")
    answer = await http.post(gateway.mcp, json=call, headers=modern_headers(tenant, "foo/bar"))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == -32601


async def test_a_rewrite_of_a_mirrored_field_is_refused_not_sent_mcp_proxy_3_4(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    async with (
        scripted_upstream() as upstream,
        installed(gateway.app, RewriteArguments(argument="region", value="us")),
    ):
        upstream.handler = json_answer(RESULT)
        tenant = await create_tenant(gateway.app, upstream.url)
        headers = {**modern_headers(tenant, name="deploy"), "mcp-param-region": "eu"}
        answer = await http.post(
            gateway.mcp, json=modern_call(1, "deploy", {"region": "eu"}), headers=headers
        )
        assert answer.json()["error"]["code"] == -32001
        assert upstream.received == []
        # Not mirrored: the rewrite goes upstream.
        plain = modern_headers(tenant, name="deploy")
        answer = await http.post(
            gateway.mcp, json=modern_call(2, "deploy", {"region": "eu"}), headers=plain
        )
        assert answer.status_code == 200
    sent = orjson.loads(upstream.received[0].body)
    assert sent["params"]["arguments"]["region"] == "us"
    assert sent["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == MODERN


async def test_cookies_an_upstream_sets_are_never_sent_back_by_the_gateway(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # The upstream pool is shared by every agent: a cookie jar in it would hand one agent's
    # upstream session cookie to the next agent's requests.
    async with scripted_upstream() as upstream:
        upstream.handler = json_answer(RESULT, **{"Set-Cookie": "sid=agent-one; Path=/"})
        # By name: cookie jars (aiohttp's, for one) keep none set by an IP address.
        by_name = upstream.url.replace("127.0.0.1", "localhost")
        first = await create_tenant(gateway.app, by_name)
        second = await create_tenant(gateway.app, by_name)
        for tenant in (first, second, first):
            answer = await http.post(gateway.mcp, json=initialize_body(), headers=tenant.headers())
            assert answer.status_code == 200
            assert "set-cookie" not in answer.headers
    assert [request.headers.get("cookie") for request in upstream.received] == [None] * 3
