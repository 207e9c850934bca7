"""The upstream MCP server the benchmark calls, built with the official SDK (stateless, JSON).

`--stateful` serves it with the SDK's defaults instead (sessions, answers on SSE streams),
for `python -m bench.probes sessions`.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from bench.payloads import lookup_record

server = MCPServer(name="cerberus-bench-upstream", version="1.0.0", log_level="WARNING")


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    phone: str
    card: str
    note: str


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def lookup(customer_id: str) -> Customer:
    """A customer record: the answer carries an email, a phone number and a card number."""
    return Customer(**lookup_record(customer_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stateful", action="store_true", help="sessions and SSE answers")
    args = parser.parse_args()
    app = server.streamable_http_app(
        json_response=not args.stateful, stateless_http=not args.stateful
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
