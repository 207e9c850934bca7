"""A minimal pass-through MCP proxy, measured beside Cerberus as the floor of what proxying costs.

Starlette on uvicorn (uvloop, httptools), one pooled aiohttp session, orjson, eight compiled
regexes over each answer: the "minimal proxy" of the issue's scale note, rebuilt here so
its numbers come from the same machine and the same run as Cerberus's. No auth, no policy.
"""

from __future__ import annotations

import argparse
import re

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FORWARDED = ("content-type", "accept", "mcp-session-id", "mcp-protocol-version")
PATTERNS = [
    re.compile(pattern)
    for pattern in (
        r"[\w.+-]+@[\w-]+\.[\w.-]+",
        r"\b\d{3}-\d{2}-\d{4}\b",
        r"\b(?:\d[ -]?){13,19}\b",
        r"\+?\d{1,3}[ -]?\d{3}[ -]?\d{3}[ -]?\d{4}",
        r"\b\d{1,3}(?:\.\d{1,3}){3}\b",
        r"AKIA[0-9A-Z]{16}",
        r"eyJ[\w-]+\.[\w-]+\.[\w-]+",
        r"(?i)ignore (?:all )?previous instructions",
    )
]


def build(upstream: str) -> Starlette:
    state: dict[str, aiohttp.ClientSession] = {}

    async def mcp(request: Request) -> Response:
        session = state.get("session")
        if session is None:
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30)
            session = state["session"] = aiohttp.ClientSession(connector=connector)
        if request.method != "POST":
            return Response(status_code=405, headers={"allow": "POST"})
        body = await request.body()
        orjson.loads(body)  # parsed once, as a gateway must
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED}
        async with session.post(upstream, data=body, headers=headers) as answer:
            payload = await answer.read()
            status, content_type = answer.status, answer.headers.get("content-type", "")
            session_id = answer.headers.get("mcp-session-id")
        if payload and content_type.startswith("application/json"):
            text = orjson.loads(payload)
            flat = orjson.dumps(text).decode()
            for pattern in PATTERNS:
                pattern.search(flat)
        extra = {"mcp-session-id": session_id} if session_id else {}
        return Response(payload, status, extra, media_type=content_type or None)

    return Starlette(routes=[Route("/mcp", mcp, methods=["POST", "GET", "DELETE"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        build(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
