"""What `cerberus demo` does around the gateway: start the demo upstream, and say how to connect."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cerberus.demo.provision import DemoError, DemoTenant

__all__ = ["DemoError", "banner", "ensure_port_free", "local_url", "upstream_process"]

UPSTREAM_START_SECONDS = 30.0


def local_url(host: str, port: int) -> str:
    """Where a client on this machine reaches the gateway (a wildcard bind is not an address)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def ensure_port_free(host: str, port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        # As uvicorn binds: connections of a previous run lingering in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DemoError(
                f"cannot use port {port} for the {what} ({exc.strerror}); pass {option} PORT"
            ) from None


@contextmanager
def upstream_process(host: str, port: int) -> Iterator[str]:
    """The demo upstream MCP server as a child process; its URL while it runs, stopped after."""
    command = [
        sys.executable, "-m", "cerberus.demo.upstream", "--host", host, "--port", str(port),
        "--exit-with-parent",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    # uvicorn re-raises the SIGTERM it handled once it has stopped; with the default handler
    # that would end this process before the child is stopped, so it becomes a clean exit.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        _wait_until_listening(process, host, port)
        yield f"http://{host}:{port}/mcp"
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _wait_until_listening(process: subprocess.Popen[bytes], host: str, port: int) -> None:
    deadline = time.monotonic() + UPSTREAM_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the demo upstream exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise DemoError(f"the demo upstream did not listen on {host}:{port} within 30 s")


def client_config(gateway_url: str, key: str) -> dict[str, object]:
    """The `mcpServers` JSON most clients read (Cursor, VS Code, Claude Desktop, Windsurf...)."""
    return {
        "mcpServers": {
            "cerberus-demo": {
                "type": "http",
                "url": gateway_url,
                "headers": {"Authorization": f"Bearer {key}"},
            }
        }
    }


def banner(tenant: DemoTenant, gateway: str, upstream_url: str) -> str:
    """What the demo prints before serving: every line a new user needs, nothing else."""
    console = importlib.util.find_spec("cerberus.console.routes") is not None
    mcp_url = f"{gateway}/mcp"
    policies = ", ".join(f"{kind} ({action})" for kind, action in tenant.policies) or "none"
    if tenant.admin_password is not None:
        password = f"{tenant.admin_password}   (shown once; --reset-password sets a new one)"
    else:
        password = "(shown when it was created; run `cerberus demo --reset-password` for a new one)"
    claude = (
        f"claude mcp add --transport http cerberus-demo {mcp_url} "
        f'--header "Authorization: Bearer {tenant.agent_key}"'
    )
    lines = [
        "",
        "Cerberus demo",
        "=============",
        f"  gateway (MCP endpoint)  {mcp_url}",
        f"  demo upstream           {upstream_url}",
        "                          tools: lookup_customer, search_notes, add,",
        "                                 delete_customer, read_deploy_config",
        "  tenant                  organisation 'demo', workspace 'demo', agent 'demo-agent'",
        *textwrap.wrap(
            policies,
            width=96,
            initial_indent="  starter policies        ",
            subsequent_indent=" " * 26,
        ),
        "",
        "Agent key (the agent's password; keep it secret):",
        f"  {tenant.agent_key}",
        "",
        "Admin login (control-plane API" + (" and console" if console else "") + "):",
        f"  email     {tenant.admin_email}",
        f"  password  {password}",
        f"  API       {gateway}/control-plane/api/v1  (POST auth/login, then Bearer token)",
    ]
    if console:
        lines.append(f"  console   {gateway}/console")
    lines += [
        f"  docs      {gateway}/docs",
        "",
        "Claude Code:",
        f"  {claude}",
        "",
        "Other MCP clients (Cursor, VS Code, Claude Desktop...), JSON configuration:",
        *(
            f"  {line}"
            for line in json.dumps(client_config(mcp_url, tenant.agent_key), indent=2).splitlines()
        ),
        "",
        *_hints({kind for kind, _action in tenant.policies}),
        "Press Ctrl+C to stop.",
        "",
    ]
    return "\n".join(lines)


def _hints(kinds: set[str]) -> list[str]:
    hints = []
    if kinds & {"pii_email", "pii_phone"}:
        hints.append(
            '  lookup_customer {"customer_id": "c-100"}: email and phone come back redacted'
        )
    if "rbac" in kinds:
        hints.append("  delete_customer: denied by policy, and hidden from tools/list")
    if "secrets" in kinds:
        hints.append("  read_deploy_config: blocked, the answer holds a cloud access key")
    return ["Try:", *hints, ""] if hints else []
