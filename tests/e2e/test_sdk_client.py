"""The official SDK client gets the same results through Cerberus as directly from the upstream.

Real processes: an SDK `MCPServer` upstream (stateful with resumable SSE, and stateless with
JSON answers) and `cerberus serve`; the SDK `Client` in legacy (2025-11-25 handshake) and
auto (2026-07-28) mode. Covers mcp-proxy 0 (both eras on one endpoint), 1.4, 1.6, 2.1, 4.2,
5.2, 5.3, 5.4 and 6 (structured output survives) end to end.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from cerberus.db import create_engine, create_sessionmaker
from tests.conftest import TEST_SECRET_KEY, Backend, settings_for
from tests.proxy.conftest import create_tenant_in, wait_until_listening
from tests.servers import Server, cerberus_servers, free_port, start

UPSTREAM = Path(__file__).resolve().parent / "upstream_server.py"


@dataclass
class Route:
    url: str
    headers: dict[str, str]


@pytest.fixture(scope="module", params=["stateful", "stateless"])
def upstream(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    port = free_port()
    extra = ["--stateless"] if request.param == "stateless" else []
    server = start(
        [sys.executable, str(UPSTREAM), "--port", str(port), *extra],
        port=port,
        log_path=tmp_path_factory.mktemp("sdk-upstream") / "upstream.log",
    )
    try:
        wait_until_listening(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url or "",
        "DATA_DIR": str(backend.data_dir),
        "RUN_MIGRATIONS_ON_STARTUP": "false",
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    with cerberus_servers(1, env, tmp_path_factory.mktemp("sdk-gateway")) as (server,):
        yield server


@pytest.fixture(scope="module")
async def routes(backend: Backend, upstream: Server, gateway: Server) -> dict[str, Route]:
    engine = create_engine(settings_for(backend))
    try:
        tenant = await create_tenant_in(create_sessionmaker(engine), f"{upstream.url}/mcp")
    finally:
        await engine.dispose()
    return {
        "direct": Route(f"{upstream.url}/mcp", {}),
        "cerberus": Route(f"{gateway.url}/mcp", {"Authorization": f"Bearer {tenant.key}"}),
    }


async def on_sampling(
    context: Any, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="forty-two"), model="test"
    )


async def on_elicit(context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


def dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


async def session_results(route: Route, mode: str, stateful: bool) -> dict[str, Any]:
    """Everything the client sees in one session; comparable between routes."""
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    http_client = create_mcp_http_client(headers=route.headers)
    async with (
        http_client,
        Client(
            streamable_http_client(route.url, http_client=http_client),
            mode=mode,  # type: ignore[arg-type]
            sampling_callback=on_sampling,
            elicitation_callback=on_elicit,
        ) as client,
    ):
        results: dict[str, Any] = {"protocol_version": client.protocol_version}
        results["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
        results["add"] = dump(await client.call_tool("add", {"a": 2, "b": 40}))
        results["customer"] = dump(await client.call_tool("get_customer", {"customer_id": "c7"}))
        results["explode"] = dump(await client.call_tool("explode", {}))
        results["slow_count"] = dump(
            await client.call_tool("slow_count", {"steps": 3}, progress_callback=on_progress)
        )
        results["progress"] = progress
        results["resources"] = sorted(str(r.uri) for r in (await client.list_resources()).resources)
        results["greeting"] = dump(await client.read_resource("test://greeting"))
        results["customer_resource"] = dump(await client.read_resource("test://customers/9"))
        results["prompts"] = sorted(p.name for p in (await client.list_prompts()).prompts)
        results["prompt"] = dump(await client.get_prompt("summarize", {"topic": "proxies"}))
        if stateful and mode == "legacy":
            results["sampling"] = dump(await client.call_tool("ask_model", {"prompt": "6x7?"}))
            results["reconnect"] = dump(await client.call_tool("reconnect", {}))
        if mode == "auto":
            results["mrtr"] = dump(await client.call_tool("ask_name", {}))
    return results


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_gets_the_same_results_through_cerberus(
    routes: dict[str, Route], upstream: Server, mode: str, request: pytest.FixtureRequest
) -> None:
    stateful = "stateless" not in request.node.callspec.id
    direct = await session_results(routes["direct"], mode, stateful)
    through = await session_results(routes["cerberus"], mode, stateful)
    assert through == direct
    assert through["add"]["structuredContent"] == {"result": 42}
    assert through["explode"]["isError"] is True
    if stateful:
        # JSON-response mode has no stream to carry progress, directly or through Cerberus.
        assert [step for step, _, _ in through["progress"]] == [1, 2, 3]
    expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
    assert through["protocol_version"] == expected
    if "mrtr" in through:
        assert through["mrtr"]["content"][0]["text"] == "Hello, Ada!"
    if "sampling" in through:
        assert through["sampling"]["content"][0]["text"] == "model said: forty-two"
        assert through["reconnect"]["content"][0]["text"] == "resumed and done"
