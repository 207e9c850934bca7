"""CPU per upstream call of the gateway's HTTP client against aiohttp's, in one process.

Both send the same `tools/call` to the stub upstream over one kept-alive connection and read
the whole answer, one call at a time; the process's CPU time over 3,000 calls, best of
five rounds, alternating the two clients so drift hits both alike. This is the measurement
behind replacing aiohttp's client with proxy/http1.py (docs/benchmarks.md).

    .venv/bin/python -m bench.client_cost
"""

from __future__ import annotations

import resource
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop

from bench import procs
from cerberus.proxy.upstream import UpstreamClient
from cerberus.settings import Settings

CALLS = 3000
ROUNDS = 5
BODY = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hello"}},
    }
)
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _us_per_call(call: Callable[[], Awaitable[bytes]]) -> float:
    for _ in range(200):  # connection open, caches warm
        await call()
    started = _cpu()
    for _ in range(CALLS):
        await call()
    return (_cpu() - started) * 1e6 / CALLS


async def measure(url: str) -> dict[str, float]:
    ours = UpstreamClient(Settings())
    theirs = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent",)
    )

    async def with_ours() -> bytes:
        answer = await ours.send("POST", url, HEADERS, BODY)
        try:
            return await answer.read()
        finally:
            answer.release()

    async def with_aiohttp() -> bytes:
        response = await theirs.request(
            "POST", url, headers=dict(HEADERS), data=BODY, allow_redirects=False
        )
        try:
            return await response.read()
        finally:
            response.release()

    best = {"gateway client (proxy/http1.py)": float("inf"), "aiohttp ClientSession": float("inf")}
    try:
        for _ in range(ROUNDS):
            for name, call in zip(best, (with_ours, with_aiohttp), strict=True):
                best[name] = min(best[name], await _us_per_call(call))
    finally:
        await ours.close()
        await theirs.close()
    return {name: round(value, 1) for name, value in best.items()}


def main() -> None:
    port = procs.free_port()
    with tempfile.TemporaryDirectory() as logs:
        stub = procs.start(
            "upstream_stub",
            [procs.PYTHON, "-m", "bench.stub_upstream", "--port", str(port)],
            port=port,
            log_dir=Path(logs),
        )
        try:
            procs.wait_http(stub, "/mcp")
            found = uvloop.run(measure(f"{stub.url}/mcp"))
        finally:
            stub.stop()
    print(orjson.dumps({"cpu_us_per_call": found}, option=orjson.OPT_INDENT_2).decode())  # noqa: T201


if __name__ == "__main__":
    main()
