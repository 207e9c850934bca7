"""The conformance fixture upstream: an official-SDK `MCPServer` with every tool, resource and
prompt the `@modelcontextprotocol/conformance` server scenarios call, in both protocol eras.

Run: `python conformance/upstream.py --port 9300` (serves http://127.0.0.1:9300/mcp).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPError
from mcp.types import (
    AudioContent,
    CallToolResult,
    Completion,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    JSONRPCMessage,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from mrtr import register_mrtr_fixtures
from pydantic import Field

# A 1x1 PNG and a tiny WAV: the exact bytes the scenarios expect.
TEST_IMAGE_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg"
    "=="
)
TEST_AUDIO_BASE64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"

logger = logging.getLogger("conformance.upstream")


class InMemoryEventStore(EventStore):
    """Every SSE event kept in memory, so a client resuming with Last-Event-ID gets the rest."""

    def __init__(self) -> None:
        self._events: list[tuple[str, int, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = len(self._events) + 1
        self._events.append((stream_id, event_id, message))
        return str(event_id)

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        if not last_event_id.isdigit() or not 0 < int(last_event_id) <= len(self._events):
            return None
        after = int(last_event_id)
        stream_id = self._events[after - 1][0]
        for event_stream, event_id, message in self._events[after:]:
            # Priming events (no message) are not replayed.
            if event_stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream_id


mcp = MCPServer(name="cerberus-conformance-upstream", version="1.0.0")


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


@mcp.tool(description="Tests simple text content response")
def test_simple_text() -> str:
    return "This is a simple text response for testing."


@mcp.tool(description="Tests image content response")
def test_image_content() -> list[ImageContent]:
    return [ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png")]


@mcp.tool(description="Tests audio content response")
def test_audio_content() -> list[AudioContent]:
    return [AudioContent(type="audio", data=TEST_AUDIO_BASE64, mime_type="audio/wav")]


def embedded(uri: str, mime_type: str, body: str) -> EmbeddedResource:
    return EmbeddedResource(
        type="resource", resource=TextResourceContents(uri=uri, mime_type=mime_type, text=body)
    )


@mcp.tool(description="Tests embedded resource content response")
def test_embedded_resource() -> list[EmbeddedResource]:
    return [
        embedded("test://embedded-resource", "text/plain", "This is an embedded resource content.")
    ]


@mcp.tool(description="Tests response with multiple content types (text, image, resource)")
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    return [
        text("Multiple content types test:"),
        ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png"),
        embedded(
            "test://mixed-content-resource",
            "application/json",
            json.dumps({"test": "data", "value": 123}),
        ),
    ]


async def log(ctx: Context, message: str) -> None:
    await ctx.request_context.session.send_log_message(
        level="info", data=message, logger="conformance", related_request_id=ctx.request_id
    )


@mcp.tool(description="Tests tool that emits log messages during execution")
async def test_tool_with_logging(ctx: Context) -> str:
    for step, message in enumerate(
        ["Tool execution started", "Tool processing data", "Tool execution completed"]
    ):
        if step:
            await asyncio.sleep(0.05)
        await log(ctx, message)
    return "Tool with logging executed successfully"


@mcp.tool(description="Logs one message: only sent when the request opted in with a log level")
async def test_logging_tool(ctx: Context) -> str:
    await log(ctx, "Diagnostic log message")
    return "Logged"


@mcp.tool(description="Tests tool that reports progress notifications")
async def test_tool_with_progress(ctx: Context) -> str:
    for progress in (0, 50, 100):
        await ctx.report_progress(
            progress=progress, total=100, message=f"Completed step {progress}"
        )
        if progress < 100:
            await asyncio.sleep(0.05)
    return "Progress completed"


@mcp.tool(description="Tests server-initiated sampling (LLM completion request)")
async def test_sampling(prompt: str, ctx: Context) -> str:
    result = await ctx.request_context.session.create_message(
        messages=[SamplingMessage(role="user", content=text(prompt))],
        max_tokens=100,
        related_request_id=ctx.request_id,
    )
    content = result.content
    reply = content.text if isinstance(content, TextContent) else "No response"
    return f"LLM response: {reply}"


async def elicit(
    ctx: Context, message: str, properties: dict[str, Any], required: list[str]
) -> str:
    result = await ctx.request_context.session.elicit_form(
        message,
        {"type": "object", "properties": properties, "required": required},
        related_request_id=ctx.request_id,
    )
    return f"action={result.action}, content={json.dumps(result.content or {})}"


@mcp.tool(description="Tests server-initiated elicitation (user input request)")
async def test_elicitation(message: str, ctx: Context) -> str:
    properties = {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    }
    return "User response: " + await elicit(ctx, message, properties, ["username", "email"])


@mcp.tool(description="Tests elicitation with default values for all primitive types (SEP-1034)")
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    properties = {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {
            "type": "string",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "default": True},
    }
    message = "Please provide user information"
    return "Elicitation completed: " + await elicit(ctx, message, properties, [])


def choices(prefix: str, titles: list[str]) -> list[dict[str, str]]:
    return [{"const": f"{prefix}{i}", "title": title} for i, title in enumerate(titles, 1)]


@mcp.tool(description="Tests elicitation with enum schema variations (SEP-1330)")
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    options = ["option1", "option2", "option3"]
    properties = {
        "untitledSingle": {"type": "string", "enum": options},
        "titledSingle": {
            "type": "string",
            "oneOf": choices("value", ["First Option", "Second Option", "Third Option"]),
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": options}},
        "titledMulti": {
            "type": "array",
            "items": {"anyOf": choices("value", ["First Choice", "Second Choice", "Third Choice"])},
        },
    }
    message = "Please select options from the enum fields"
    return "Elicitation completed: " + await elicit(ctx, message, properties, [])


@mcp.tool(description="Tests error response handling")
def test_error_handling() -> CallToolResult:
    return CallToolResult(
        content=[text("This tool intentionally returns an error for testing")], is_error=True
    )


@mcp.tool(description="Tests SSE polling by closing the stream mid-call (SEP-1699)")
async def test_reconnection(ctx: Context) -> str:
    await ctx.close_sse_stream()
    # Long enough for the client to reconnect with Last-Event-ID before the result is stored.
    await asyncio.sleep(0.2)
    return "Reconnection test completed"


@mcp.tool(description="Requires the sampling capability, which the caller may not have declared")
def test_missing_capability(ctx: Context) -> str:
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        raise MCPError(
            code=-32021,
            message="Missing required client capability: sampling",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return "Client declared sampling"


@mcp.tool(description="Changes the tool list, so listeners get notifications/tools/list_changed")
async def test_trigger_tool_change(ctx: Context) -> str:
    await ctx.notify_tools_changed()
    return "Tool list changed"


@mcp.tool(
    description="Changes the prompt list, so listeners get notifications/prompts/list_changed"
)
async def test_trigger_prompt_change(ctx: Context) -> str:
    await ctx.notify_prompts_changed()
    return "Prompt list changed"


@mcp.tool(description="Mirrors its region argument in the Mcp-Param-Region header (SEP-2243)")
def test_x_mcp_header(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
) -> str:
    return f"Region: {region}"


@mcp.tool(name="json_schema_2020_12_tool", description="Tool with JSON Schema 2020-12 features")
def json_schema_2020_12_tool(
    name: str | None = None,
    address: dict[str, Any] | None = None,
    contactMethod: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> str:
    given = {"name": name, "address": address, "contactMethod": contactMethod}
    return json.dumps({key: value for key, value in given.items() if value is not None})


# The scenario checks the advertised schema keyword by keyword, so it is stated verbatim.
mcp._tool_manager.get_tool("json_schema_2020_12_tool").parameters = {  # type: ignore[union-attr]
    "$schema": JSON_SCHEMA_2020_12,
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@mcp.resource("test://static-text", mime_type="text/plain", description="A static text resource")
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", mime_type="image/png", description="A static binary resource")
def static_binary() -> bytes:
    return base64.b64decode(TEST_IMAGE_BASE64)


@mcp.resource("test://template/{id}/data", mime_type="application/json", description="A template")
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource("test://watched-resource", mime_type="text/plain", description="Subscribable")
def watched_resource() -> str:
    return "Watched resource content"


@mcp.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage(content=text("This is a simple prompt for testing."))]


@mcp.prompt(description="A prompt with required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    return [UserMessage(content=text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]


@mcp.prompt(description="A prompt that includes an embedded resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
    return [
        UserMessage(content=embedded(resourceUri, "text/plain", "Embedded resource content.")),
        UserMessage(content=text("Please process the embedded resource above.")),
    ]


@mcp.prompt(description="A prompt that includes image content")
def test_prompt_with_image() -> list[UserMessage]:
    return [
        UserMessage(
            content=ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png")
        ),
        UserMessage(content=text("Please analyze the image above.")),
    ]


@mcp.completion()  # type: ignore[no-untyped-call, untyped-decorator]
async def complete(ref: Any, argument: Any, context: Any) -> Completion:
    values = [v for v in ("paris", "park", "party") if v.startswith(argument.value or "")]
    return Completion(values=values, total=len(values), has_more=False)


async def set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
    return EmptyResult()


async def subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
    return EmptyResult()


async def unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
    return EmptyResult()


# Legacy-era methods MCPServer does not wire by default.
mcp._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
mcp._lowlevel_server.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
mcp._lowlevel_server.add_request_handler(
    "resources/unsubscribe", UnsubscribeRequestParams, unsubscribe
)
register_mrtr_fixtures(mcp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9300)
    args = parser.parse_args()
    mcp.run(
        transport="streamable-http",
        host=args.host,
        port=args.port,
        event_store=InMemoryEventStore(),
        retry_interval=100,
    )


if __name__ == "__main__":
    main()
