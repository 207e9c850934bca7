"""RBAC, tool pinning and redaction as an MCP client sees them: the SDK client, the gateway, an
SDK server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference
from sqlalchemy import select

from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.jsonrpc import BLOCKED
from cerberus.policies.models import Policy, ToolPin
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation
from tests.conftest import Backend, auth_headers, flush_test_cache, settings_for
from tests.factories import create_user
from tests.proxy.conftest import Gateway, Tenant, create_tenant, running_gateway, start_upstream
from tests.proxy.scripted import json_answer, scripted_upstream
from tests.servers import Server


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


@pytest.fixture
async def gateway(backend: Backend) -> AsyncIterator[Gateway]:
    settings: Settings = settings_for(backend)
    await flush_test_cache(settings)
    async with running_gateway(settings) as running:
        yield running


async def add_policy(gateway: Gateway, tenant: Tenant, guardrail_type: str, **fields: Any) -> None:
    async with gateway.app.state.sessionmaker() as session:
        session.add(
            Policy(
                organisation_id=tenant.organisation_id,
                workspace_id=tenant.workspace_id,
                name=guardrail_type,
                guardrail_type=guardrail_type,
                action=fields.pop("action", "block"),
                config=fields.pop("config", {}),
            )
        )
        await session.commit()


@asynccontextmanager
async def mcp(gateway: Gateway, tenant: Tenant) -> AsyncIterator[Client]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {tenant.key}"})
    async with http, Client(streamable_http_client(gateway.mcp, http_client=http)) as client:
        yield client


async def test_the_agent_sees_and_calls_only_what_rbac_allows(
    gateway: Gateway, upstream: Server
) -> None:
    tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
    await add_policy(
        gateway,
        tenant,
        "rbac",
        config={
            "denied_tools": ["who*", "explode"],
            "allowed_resources": ["test://customers/*"],
            "denied_prompts": ["summarize"],
        },
    )
    async with mcp(gateway, tenant) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "add" in names
        assert "whoami" not in names
        assert "explode" not in names
        with pytest.raises(MCPError) as refused:
            await client.call_tool("whoami", {})
        assert refused.value.code == BLOCKED
        assert "whoami" in refused.value.message
        assert (await client.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
        assert (await client.list_resources()).resources == []
        with pytest.raises(MCPError):
            await client.read_resource("test://greeting")
        customer = await client.read_resource("test://customers/42")
        assert customer.contents
        assert (await client.list_prompts()).prompts == []


async def test_completions_and_uri_spellings_do_not_get_past_rbac(
    gateway: Gateway, upstream: Server
) -> None:
    tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
    await add_policy(
        gateway,
        tenant,
        "rbac",
        config={
            "denied_resources": ["test://greeting", "test://secrets/*"],
            "denied_prompts": ["summarize"],
        },
    )
    argument = {"name": "topic", "value": "x"}
    async with mcp(gateway, tenant) as client:
        with pytest.raises(MCPError) as refused:
            await client.complete(PromptReference(type="ref/prompt", name="summarize"), argument)
        assert refused.value.code == BLOCKED
        assert "'summarize'" in refused.value.message
        for template in ("test://secrets/{name}", "TEST://Secrets/{name}"):
            with pytest.raises(MCPError) as refused:
                await client.complete(
                    ResourceTemplateReference(type="ref/resource", uri=template), argument
                )
            assert refused.value.code == BLOCKED, template
        for uri in ("test://greeting", "TEST://greeting", "test://GREETING", "test://%67reeting"):
            with pytest.raises(MCPError) as refused:
                await client.read_resource(uri)
            assert refused.value.code == BLOCKED, uri
        assert (await client.read_resource("test://customers/42")).contents
        # An allowed template reaches the server (which has no completion handler).
        allowed = ResourceTemplateReference(
            type="ref/resource", uri="test://customers/{customer_id}"
        )
        with pytest.raises(MCPError) as answered:
            await client.complete(allowed, {"name": "customer_id", "value": "4"})
        assert answered.value.code != BLOCKED


async def test_a_refused_completion_or_read_is_an_error_echoing_its_id_never_sent(
    gateway: Gateway,
) -> None:
    async with scripted_upstream() as upstream, httpx.AsyncClient(timeout=30) as http:
        upstream.handler = json_answer(b'{"jsonrpc":"2.0","id":1,"result":{}}')
        tenant = await create_tenant(gateway.app, upstream.url)
        await add_policy(
            gateway,
            tenant,
            "rbac",
            config={"allowed_resources": ["file:///public/*"], "denied_prompts": ["internal_*"]},
        )
        requests = [
            ("completion/complete", {"ref": {"type": "ref/prompt", "name": "internal_review"}}),
            ("completion/complete", {"ref": {"type": "ref/resource", "uri": "file:///{path}"}}),
            ("resources/read", {"uri": "file:///public/../secret/key.pem"}),
            ("resources/read", {"uri": "file:///public/%2e%2e/secret/key.pem"}),
        ]
        answers = []
        for number, (method, params) in enumerate(requests, start=20):
            body = {"jsonrpc": "2.0", "id": number, "method": method, "params": params}
            answers.append(await http.post(gateway.mcp, json=body, headers=tenant.headers()))
        assert upstream.received == []
    for number, answer in enumerate(answers, start=20):
        assert answer.status_code == 200
        assert answer.json()["id"] == number
        assert answer.json()["error"]["code"] == BLOCKED
        assert answer.json()["error"]["data"]["guardrails_triggered"] == ["rbac"]


async def test_a_changed_tool_is_refused_until_an_admin_approves_it(
    gateway: Gateway, upstream: Server
) -> None:
    tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
    await add_policy(gateway, tenant, "tool_pinning")
    async with mcp(gateway, tenant) as client:
        tools = (await client.list_tools()).tools
    pins = gateway.app.state.pipelines.pins
    await pins.flush()
    async with gateway.app.state.sessionmaker() as session:
        pinned = {
            pin.tool_name: pin
            for pin in await session.scalars(
                select(ToolPin).where(ToolPin.workspace_id == tenant.workspace_id)
            )
        }
        assert set(pinned) == {tool.name for tool in tools}
        # As if "add" had been pinned with another description: what it serves now is a change.
        pinned["add"].definition_hash = "0" * 64
        await session.commit()
    event = Invalidation("tool_pin", pinned["add"].id, workspace_id=tenant.workspace_id)
    await gateway.app.state.cache.publish(CHANNEL, event.encode())
    await pins.reload(tenant.workspace_id)

    async with mcp(gateway, tenant) as client:
        with pytest.raises(MCPError) as refused:
            await client.list_tools()
        assert refused.value.code == BLOCKED
        assert "'add'" in refused.value.message
        with pytest.raises(MCPError):
            await client.call_tool("add", {"a": 1, "b": 1})
    await pins.flush()
    # Nothing else writes while the admin approves (SQLite allows one writer at a time).
    await gateway.app.state.audit.flush()

    async with gateway.app.state.sessionmaker() as session:
        organisation = await session.get(Organisation, tenant.organisation_id)
        admin = await create_user(session, organisation, role="org_admin")
        await session.commit()
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{gateway.url}/control-plane/api/v1/tool-pins/{pinned['add'].id}/approve",
            headers=auth_headers(gateway.app.state.settings, admin),
        )
    assert response.status_code == 200, response.text
    await pins.reload(tenant.workspace_id)
    async with mcp(gateway, tenant) as client:
        assert "add" in [tool.name for tool in (await client.list_tools()).tools]
        assert (await client.call_tool("add", {"a": 1, "b": 1})).structured_content == {"result": 2}


async def test_a_value_hidden_by_gluing_or_look_alikes_never_reaches_either_side(
    gateway: Gateway, upstream: Server
) -> None:
    # The card is glued to the phone number by a colon until the phone number is redacted;
    # the second card is grouped with no-break spaces. The upstream echoes the argument.
    tenant = await create_tenant(gateway.app, f"{upstream.url}/mcp")
    await add_policy(gateway, tenant, "pii_credit_card", action="redact")
    await add_policy(gateway, tenant, "pii_phone", action="redact")
    hidden = "+44 20 7946 0958:4111 1111 1111 1111 or 5500\u00a00000\u00a00000\u00a00004"
    async with mcp(gateway, tenant) as client:
        result = await client.call_tool("get_customer", {"customer_id": hidden})
    assert result.structured_content is not None
    assert result.structured_content["customer_id"] == (
        "[REDACTED:PHONE]:[REDACTED:CREDIT_CARD] or [REDACTED:CREDIT_CARD]"
    )
