"""An upstream MCP server built with the official SDK, run as a process behind Cerberus in tests.

`python tests/e2e/upstream_server.py --port P [--stateless]` serves http://127.0.0.1:P/mcp:
stateful sessions with resumable SSE by default, or stateless JSON answers with --stateless.
Both eras (2025-11-25 handshake and 2026-07-28) are served on the one endpoint.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    JSONRPCMessage,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel

server = MCPServer(name="cerberus-test-upstream", version="1.0.0", log_level="WARNING")


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    vip: bool


class MemoryEventStore(EventStore):
    """Keeps every event so a client resuming with Last-Event-ID gets the rest of its stream."""

    def __init__(self) -> None:
        self._events: list[tuple[str, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        self._events.append((stream_id, message))
        return str(len(self._events))

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        if not last_event_id.isdigit() or not 0 < int(last_event_id) <= len(self._events):
            return None
        stream_id = self._events[int(last_event_id) - 1][0]
        for number, (stream, message) in enumerate(self._events, start=1):
            if number > int(last_event_id) and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(number)))
        return stream_id


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers (structured output: {"result": n})."""
    return a + b


@server.tool()
def get_customer(customer_id: str) -> Customer:
    """A customer record as structured content with an output schema."""
    return Customer(customer_id=customer_id, name="Jane Roe", email="jane@example.com", vip=True)


@server.tool()
def whoami(ctx: Context) -> dict[str, str]:
    """The HTTP headers this server received (to see what the gateway forwards)."""
    return {name.lower(): value for name, value in (ctx.headers or {}).items()}


@server.tool()
async def slow_count(steps: int, ctx: Context) -> str:
    """Count to `steps`, reporting progress after each step."""
    for step in range(1, steps + 1):
        await ctx.report_progress(progress=step, total=steps, message=f"step {step}")
        await asyncio.sleep(0.01)
    return f"counted to {steps}"


@server.tool()
def explode() -> str:
    """Always fails: the SDK turns the exception into an isError result."""
    raise ValueError("the tool exploded on purpose")


@server.tool()
async def ask_model(prompt: str, ctx: Context) -> str:
    """Legacy era: a sampling request sent to the client on the tool's own stream."""
    result = await ctx.request_context.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=50,
        related_request_id=ctx.request_id,
    )
    content = result.content
    return f"model said: {content.text if isinstance(content, TextContent) else '?'}"


@server.tool()
def ask_name(ctx: Context) -> str | InputRequiredResult:
    """2026-07-28: asks for a name with an input_required result, then greets."""
    response = (ctx.input_responses or {}).get("name")
    if isinstance(response, ElicitResult) and response.action == "accept" and response.content:
        return f"Hello, {response.content.get('name')}!"
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    request = ElicitRequest(
        params=ElicitRequestFormParams(message="What is your name?", requested_schema=schema)
    )
    return InputRequiredResult(input_requests={"name": request}, request_state="state-v1")


@server.tool()
async def reconnect(ctx: Context) -> str:
    """Closes its SSE stream mid-call; the client resumes with Last-Event-ID (SEP-1699)."""
    # The SDK writes its priming event (the id to resume from) concurrently with the handler;
    # closing at once sometimes beats it, leaving the client nothing to resume from.
    await asyncio.sleep(0.05)
    await ctx.close_sse_stream()
    await asyncio.sleep(0.3)
    return "resumed and done"


@server.resource("test://greeting", mime_type="text/plain")
def greeting() -> str:
    return "hello from the upstream"


@server.resource("test://customers/{customer_id}", mime_type="application/json")
def customer_resource(customer_id: str) -> str:
    return f'{{"id": "{customer_id}"}}'


@server.prompt()
def summarize(topic: str) -> list[UserMessage]:
    return [UserMessage(content=TextContent(type="text", text=f"Summarize {topic}."))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stateless", action="store_true", help="stateless, JSON answers")
    parser.add_argument("--json", action="store_true", help="sessions, JSON answers")
    args = parser.parse_args()
    if args.stateless:
        app = server.streamable_http_app(json_response=True, stateless_http=True)
    elif args.json:
        app = server.streamable_http_app(json_response=True)
    else:
        app = server.streamable_http_app(event_store=MemoryEventStore(), retry_interval=100)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
