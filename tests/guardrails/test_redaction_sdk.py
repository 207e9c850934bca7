"""Redacted results of a real MCP SDK server stay acceptable to the real SDK client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import mcp.types as types
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, EmailStr

from cerberus.guardrails import Outcome
from cerberus.guardrails.pii_email import PiiEmail
from tests.guardrails.messages import RESPONSE, context


class Customer(BaseModel):
    name: str
    contact: str
    orders: int


class StrictCustomer(BaseModel):
    name: str
    contact: EmailStr


server = MCPServer(name="redaction-upstream")


@server.tool()
def get_customer() -> Customer:
    return Customer(name="Ana", contact="ana@example.org", orders=3)


@server.tool()
def get_strict_customer() -> StrictCustomer:
    return StrictCustomer(name="Ana", contact="ana@example.org")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(server) as connected:
        yield connected


async def call(client: Client, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tool's wire result as a JSON-RPC message, and its declared outputSchema."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    result = await client.call_tool(name, {})
    wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    schema = tools[name].output_schema
    assert schema is not None
    return {"jsonrpc": "2.0", "id": 7, "result": wire}, schema


async def test_redacted_structured_result_passes_the_sdk_clients_validation(client: Client) -> None:
    message, schema = await call(client, "get_customer")
    verdict = PiiEmail(action="redact").check(message, context(RESPONSE, output_schema=schema))
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    redacted = types.CallToolResult.model_validate(verdict.message["result"])
    await client.session.validate_tool_result("get_customer", redacted)
    assert redacted.structured_content == {
        "name": "Ana",
        "contact": "[REDACTED:EMAIL]",
        "orders": 3,
    }
    text = redacted.content[0]
    assert isinstance(text, types.TextContent)
    assert "ana@example.org" not in text.text
    assert verdict.message["result"]["_meta"] == message["result"]["_meta"]


async def test_a_redaction_the_schema_forbids_is_blocked_not_sent(client: Client) -> None:
    message, schema = await call(client, "get_strict_customer")
    verdict = PiiEmail(action="redact").check(message, context(RESPONSE, output_schema=schema))
    assert verdict.outcome is Outcome.BLOCK
    assert "outputSchema" in verdict.reason
