"""The demo's upstream MCP server (official SDK): a small CRM whose answers show each guardrail.

`lookup_customer` answers an email and a phone number (redacted by the PII policies),
`delete_customer` is denied by the RBAC policy, `read_deploy_config` answers a cloud key
(blocked by the secrets policy), `search_notes` and `add` pass untouched.
Run on its own with `python -m cerberus.demo.upstream --port 8001`.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer(
    name="cerberus-demo-upstream",
    version="1.0.0",
    instructions="A tiny CRM for trying Cerberus: look up customers, search notes, add numbers.",
    log_level="WARNING",
)


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    phone: str
    plan: str


CUSTOMERS = {
    "c-100": Customer(
        customer_id="c-100",
        name="Jane Doe",
        email="jane.doe@example.com",
        phone="+1 415 555 0134",
        plan="enterprise",
    ),
    "c-200": Customer(
        customer_id="c-200",
        name="Ravi Patel",
        email="ravi.patel@example.org",
        phone="+44 20 7946 0958",
        plan="team",
    ),
}

NOTES = [
    "c-100 renewed for two years; wants SSO next quarter.",
    "c-200 asked about the EU data residency option.",
    "Support rota: Alice on Mondays, Bob on Tuesdays.",
]

READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(annotations=READ_ONLY)
def lookup_customer(customer_id: str) -> Customer:
    """A customer's record, with their email address and phone number (try c-100 or c-200)."""
    customer = CUSTOMERS.get(customer_id)
    if customer is None:
        raise ValueError(f"no customer {customer_id!r}; try c-100 or c-200")
    return customer


@server.tool(annotations=READ_ONLY)
def search_notes(query: str) -> list[str]:
    """Account notes containing the query (case-insensitive)."""
    return [note for note in NOTES if query.lower() in note.lower()]


@server.tool(annotations=READ_ONLY)
def add(a: int, b: int) -> int:
    """The sum of two integers."""
    return a + b


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_customer(customer_id: str) -> str:
    """Delete a customer record (the demo policy denies this tool)."""
    return f"deleted {customer_id}"


@server.tool(annotations=READ_ONLY)
def read_deploy_config() -> str:
    """The deployment configuration file, which (carelessly) holds a cloud access key."""
    return (
        "region = eu-west-1\n"
        "instance_type = t3.small\n"
        "aws_access_key_id = AKIAZ7DEMOK3YEXAMPLE\n"
        "aws_secret_access_key = 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\n"
    )


def _watch_parent(parent: int) -> None:
    """`cerberus demo` stops this server on exit; this covers a parent killed outright."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The Cerberus demo upstream MCP server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the process that started it ends"
    )
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        _watch_parent(os.getppid())
    app = server.streamable_http_app(host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
