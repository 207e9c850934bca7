"""An upstream answering in microseconds (raw asyncio, canned JSON-RPC): the gateway is the limit.

It answers the same shapes as bench/upstream.py (the SDK server), so the load generator's
content checks apply unchanged; it keeps HTTP/1.1 connections alive like a real server.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
import uvloop

from bench.payloads import TOOLS, lookup_record

PROTOCOL_VERSION = "2025-11-25"


def answer(message: dict[str, Any]) -> bytes | None:
    """The JSON-RPC answer to one message; None for notifications (HTTP 202)."""
    if "id" not in message:
        return None
    method = message.get("method")
    params = message.get("params") or {}
    result: dict[str, Any]
    if method == "initialize":
        result = {
            "capabilities": {"tools": {"listChanged": False}},
            "protocolVersion": params.get("protocolVersion", PROTOCOL_VERSION),
            "serverInfo": {"name": "cerberus-bench-stub", "version": "1.0.0"},
        }
    elif method == "tools/call" and params.get("name") == "echo":
        text = str((params.get("arguments") or {}).get("text", ""))
        result = {
            "content": [{"type": "text", "text": text}],
            "isError": False,
            "structuredContent": {"result": text},
        }
    elif method == "tools/call" and params.get("name") == "lookup":
        record = lookup_record(str((params.get("arguments") or {}).get("customer_id", "")))
        result = {
            "content": [{"type": "text", "text": orjson.dumps(record).decode()}],
            "isError": False,
            "structuredContent": record,
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "ping":
        result = {}
    else:
        error = {"code": -32601, "message": f"method not found: {method}"}
        return orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error})
    return orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})


class StubProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but it writes like one.
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.respond(head.split(" ", 1)[0], body)

    def respond(self, method: str, body: bytes) -> None:
        if method != "POST":
            self.transport.write(
                b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\n\r\n"
            )
            return
        try:
            payload = answer(orjson.loads(body))
        except (orjson.JSONDecodeError, AttributeError):
            payload = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}'
        if payload is None:
            self.transport.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StubProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
