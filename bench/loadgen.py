"""The async load generator: MCP handshake, then closed-loop tool calls, every answer checked.

Each of `concurrency` workers is one MCP client: it sends `initialize` and
`notifications/initialized`, keeps the `Mcp-Session-Id` and protocol version it was given,
lists the tools (as clients do before calling one: the gateway then knows each tool's
outputSchema), then calls `echo` and `lookup` in turn until the time is up. JSON and SSE
answers are both read; an answer counts as an error unless it is the right result for that
request's `id` (and, through the full policy set, a lookup shows redaction markers and none
of the values).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.payloads import ECHO_TEXT, REDACTION_MARKER, SENSITIVE

PROTOCOL_VERSION = "2025-11-25"
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # the MCP endpoint, e.g. http://127.0.0.1:8000/mcp
    key: str | None = None  # agent key, sent as a bearer token
    # Lookup values that must come back redacted (the full policy set); others pass unchanged.
    redacted: tuple[str, ...] = ()


@dataclass
class RunResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def error(self, reason: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(reason[:300])

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": percentile(ordered, 50),
            "p90_ms": percentile(ordered, 90),
            "p99_ms": percentile(ordered, 99),
            "error_samples": self.error_samples,
        }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[min(rank, len(ordered)) - 1], 4)


class AnswerError(Exception):
    """The answer was not the right result for the request."""


class McpClient:
    """One MCP client over a shared aiohttp session: its own MCP session and request ids."""

    def __init__(self, http: aiohttp.ClientSession, target: Target, number: int) -> None:
        self.http = http
        self.target = target
        self.number = number
        self.sequence = 0
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if target.key:
            self.headers["Authorization"] = f"Bearer {target.key}"

    def next_id(self) -> int:
        self.sequence += 1
        return self.number * 10_000_000 + self.sequence

    async def initialize(self) -> None:
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "cerberus-bench", "version": "1.0.0"},
        }
        message, session_id = await self.request("initialize", params)
        result = message.get("result") or {}
        if session_id:
            self.headers["Mcp-Session-Id"] = session_id
        self.headers["MCP-Protocol-Version"] = str(result.get("protocolVersion", PROTOCOL_VERSION))
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        async with self.http.post(
            self.target.url, data=orjson.dumps(note), headers=self.headers
        ) as answer:
            await answer.read()
            if answer.status not in (200, 202):
                raise AnswerError(f"notifications/initialized: HTTP {answer.status}")
        await self.list_tools()

    async def list_tools(self) -> None:
        """`tools/list`, which must name both tools the load calls."""
        message, _ = await self.request("tools/list", {})
        tools = (message.get("result") or {}).get("tools")
        names = {tool.get("name") for tool in tools or [] if isinstance(tool, dict)}
        if not {"echo", "lookup"} <= names:
            raise AnswerError(
                f"tools/list: echo and lookup not both listed: {sorted(map(str, names))}"
            )

    async def request(
        self, method: str, params: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """One JSON-RPC request of the session's set-up: its answer, and the Mcp-Session-Id
        header that came with it."""
        request_id = self.next_id()
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        async with self.http.post(
            self.target.url, data=orjson.dumps(body), headers=self.headers
        ) as answer:
            raw = await answer.read()
            if answer.status != 200:
                raise AnswerError(f"{method}: HTTP {answer.status}: {raw[:200]!r}")
            session_id = answer.headers.get("Mcp-Session-Id")
            return read_message(raw, answer.headers.get("Content-Type", ""), request_id), session_id

    async def call(self) -> float:
        """One tool call, alternating echo and lookup; returns its latency in ms or raises."""
        request_id = self.next_id()
        if request_id % 2:
            tool, arguments = "echo", {"text": f"{ECHO_TEXT} #{request_id}"}
        else:
            tool, arguments = "lookup", {"customer_id": f"c{request_id}"}
        params = {"name": tool, "arguments": arguments}
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        )
        started = time.perf_counter()
        async with self.http.post(self.target.url, data=body, headers=self.headers) as answer:
            raw = await answer.read()
            status = answer.status
            content_type = answer.headers.get("Content-Type", "")
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise AnswerError(f"{tool}: HTTP {status}: {raw[:200]!r}")
        check(read_message(raw, content_type, request_id), tool, arguments, self.target)
        return elapsed


def read_message(raw: bytes, content_type: str, request_id: int) -> dict[str, Any]:
    """The JSON-RPC message answering `request_id`, from a JSON body or an SSE stream."""
    if content_type.startswith("text/event-stream"):
        for data in sse_data(raw.decode()):
            if not data:
                continue  # the SDK's priming event has empty data
            message = orjson.loads(data)
            if isinstance(message, dict) and message.get("id") == request_id:
                return message
        raise AnswerError(f"no answer to id {request_id} in the event stream")
    message = orjson.loads(raw)
    if not isinstance(message, dict) or message.get("id") != request_id:
        raise AnswerError(f"answer is not for id {request_id}: {raw[:200]!r}")
    return message


def sse_data(text: str) -> list[str]:
    """The data of each event, by the WHATWG rules (CRLF, LF or CR; multi-line data)."""
    events, lines = [], []
    for line in [*_LINE_END.split(text), ""]:
        if line == "":
            if lines:
                events.append("\n".join(lines))
            lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    return events


def check(message: dict[str, Any], tool: str, arguments: dict[str, Any], target: Target) -> None:
    if "error" in message:
        raise AnswerError(f"{tool}: JSON-RPC error {message['error']}")
    result = message.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        raise AnswerError(f"{tool}: not a successful result: {str(message)[:200]}")
    texts = [
        block.get("text", "") for block in result.get("content", []) if isinstance(block, dict)
    ]
    if tool == "echo":
        if texts != [arguments["text"]]:
            raise AnswerError(f"echo: wrong text {texts!r:.200}")
        return
    whole = orjson.dumps(result).decode()
    if arguments["customer_id"] not in whole:
        raise AnswerError("lookup: answer is for another customer")
    leaked = [value for value in target.redacted if value in whole]
    if leaked or (target.redacted and REDACTION_MARKER not in whole):
        raise AnswerError(f"lookup: not redacted ({len(leaked)} values leaked)")
    kept = [value for value in SENSITIVE if value not in target.redacted]
    if any(value not in whole for value in kept):
        raise AnswerError("lookup: a value that no policy covers did not pass unchanged")


async def run_load(
    target: Target,
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 0.3,
    on_measure: Callable[[str], None] | None = None,
) -> RunResult:
    """Handshake `concurrency` clients, warm up, then call for `seconds` and collect latencies.

    `on_measure("start")` and `on_measure("stop")` bracket the measured phase exactly, so
    CPU counters read there exclude the handshake and the warm-up.
    """
    connector = aiohttp.TCPConnector(limit=concurrency + 4, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        clients = [McpClient(http, target, number + 1) for number in range(concurrency)]
        await asyncio.gather(*(client.initialize() for client in clients))
        if warmup > 0:
            await _drive(clients, warmup, RunResult())
        result = RunResult()
        if on_measure:
            on_measure("start")
        started = time.perf_counter()
        await _drive(clients, seconds, result)
        result.seconds = time.perf_counter() - started
        if on_measure:
            on_measure("stop")
        return result


async def first_health(url: str, started: float, give_up_after: float = 30) -> float:
    """Seconds from `started` until `url` answers 200 (the server is up, nothing warmed yet)."""
    deadline = started + give_up_after
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.perf_counter() < deadline:
            try:
                async with http.get(url) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.005)
    raise TimeoutError(f"{url}: not healthy within {give_up_after}s")


async def first_success(target: Target, started: float, give_up_after: float = 30) -> float:
    """Seconds from `started` (a perf_counter reading taken when the process was started)
    until one client completes the handshake and checked calls of both tools (cold start)."""
    deadline = started + give_up_after
    last = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while time.perf_counter() < deadline:
            client = McpClient(http, target, 1)
            try:
                await client.initialize()
                await client.call()
                await client.call()  # both tools: echo and the redacted lookup
                return time.perf_counter() - started
            except (AnswerError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.005)
    raise TimeoutError(f"{target.name}: no successful call within {give_up_after}s ({last})")


async def _drive(clients: list[McpClient], seconds: float, result: RunResult) -> None:
    deadline = time.perf_counter() + seconds

    async def worker(client: McpClient) -> None:
        while time.perf_counter() < deadline:
            try:
                result.latencies_ms.append(await client.call())
            except (AnswerError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                result.error(f"{type(exc).__name__}: {exc}")
            result.requests += 1

    await asyncio.gather(*(worker(client) for client in clients))


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive an MCP endpoint with checked tool calls.")
    parser.add_argument("url")
    parser.add_argument("--key", help="agent key (Authorization: Bearer)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--expect-redacted", action="store_true", help="email, phone and card must be redacted"
    )
    args = parser.parse_args()
    target = Target("cli", args.url, args.key, SENSITIVE if args.expect_redacted else ())
    import uvloop

    result = uvloop.run(run_load(target, concurrency=args.concurrency, seconds=args.seconds))
    print(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2).decode())  # noqa: T201


if __name__ == "__main__":
    main()
