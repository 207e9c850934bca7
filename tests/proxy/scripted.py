"""A real HTTP upstream on a loopback port whose answers each test scripts (aiohttp.web).

Used where the SDK server cannot be made to misbehave: odd SSE framings, 5xx, silence,
streams that never end. It records every request it receives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.servers import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    method: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedUpstream:
    url: str
    handler: Handler | None = None
    received: list[Received] = field(default_factory=list)


@asynccontextmanager
async def scripted_upstream() -> AsyncIterator[ScriptedUpstream]:
    port = free_port()
    upstream = ScriptedUpstream(url=f"http://127.0.0.1:{port}/mcp")

    async def dispatch(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        upstream.received.append(
            Received(request.method, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        assert upstream.handler is not None, "the test did not script an answer"
        return await upstream.handler(request)

    app = web.Application()
    app.router.add_route("*", "/mcp", dispatch)
    runner = web.AppRunner(app, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield upstream
    finally:
        await runner.cleanup()


def json_answer(body: bytes, status: int = 200, **headers: str) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body, status=status, content_type="application/json", headers=headers
        )

    return answer


async def start_sse(request: web.Request, **headers: str) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200, headers={"content-type": "text/event-stream", **headers}
    )
    await response.prepare(request)
    return response
