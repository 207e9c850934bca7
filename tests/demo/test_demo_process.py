"""`cerberus demo` as a new user runs it: a process, its printed configuration, an SDK client."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from cerberus.guardrails import guardrail_types
from tests.servers import Server, free_port, start, wait_until_healthy

CERBERUS = str(Path(sys.executable).with_name("cerberus"))


def start_demo(tmp_path: Path, port: int, upstream_port: int, name: str) -> Server:
    # The embedded default, as a fresh clone has it: no database or cache settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING"})
    argv = [CERBERUS, "demo", "--port", str(port), "--upstream-port", str(upstream_port)]
    demo = start(argv, port=port, log_path=tmp_path / f"{name}.log", env=env, cwd=tmp_path)
    wait_until_healthy(demo)
    return demo


def printed_client_config(output: str) -> dict[str, Any]:
    """The JSON block the demo prints for clients, parsed as a user would paste it."""
    start = output.index("\n  {\n") + 1
    end = output.index("\n  }\n", start) + 4
    config: dict[str, Any] = json.loads(output[start:end])
    return dict(config["mcpServers"]["cerberus-demo"])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def call_through_the_gateway(server: dict[str, Any], mode: str) -> dict[str, Any]:
    http = create_mcp_http_client(headers=server["headers"])
    transport = streamable_http_client(server["url"], http_client=http)
    async with http, Client(transport, mode=mode) as c:
        tools = [tool.name for tool in (await c.list_tools()).tools]
        customer = await c.call_tool("lookup_customer", {"customer_id": "c-100"})
        total = await c.call_tool("add", {"a": 2, "b": 3})
        with pytest.raises(MCPError) as denied:
            await c.call_tool("delete_customer", {"customer_id": "c-100"})
    return {
        "tools": tools,
        "customer": customer.structured_content,
        "sum": total.structured_content,
        "denied": denied.value.error,
    }


@pytest.mark.slow
async def test_a_new_user_runs_the_demo_and_connects_with_the_printed_configuration(
    tmp_path: Path,
) -> None:
    port, upstream_port = free_port(), free_port()
    demo = start_demo(tmp_path, port, upstream_port, "first")
    try:
        output = demo.log()
        server = printed_client_config(output)
        key = server["headers"]["Authorization"].removeprefix("Bearer ")
        seen = [await call_through_the_gateway(server, mode) for mode in ("legacy", "auto")]
    finally:
        status = demo.stop(signal.SIGTERM)

    assert status == 0, demo.log()
    assert port_is_free(upstream_port), "the demo upstream outlived the demo"
    assert f'--header "Authorization: Bearer {key}"' in output
    assert server["url"] == f"http://127.0.0.1:{port}/mcp"
    registered = {cls.type for cls in guardrail_types()}
    for calls in seen:
        assert "delete_customer" not in calls["tools"]
        assert {"lookup_customer", "add", "search_notes"} <= set(calls["tools"])
        assert calls["sum"] == {"result": 5}
        assert calls["denied"].code == -32001
        assert calls["denied"].data["guardrails_triggered"] == ["rbac"]
        customer = calls["customer"]
        assert customer["name"] == "Jane Doe"
        if "pii_email" in registered:
            assert customer["email"] == "[REDACTED:EMAIL]"
        if "pii_phone" in registered:
            assert customer["phone"] == "[REDACTED:PHONE]"

    # Running it again finds the same tenant: the pasted configuration and the login still work.
    password = re.search(r"password  (\S+)   \(shown once", output)
    assert password is not None
    again = start_demo(tmp_path, port, upstream_port, "again")
    try:
        output_again = again.log()
        async with httpx.AsyncClient(base_url=f"{again.url}/control-plane/api/v1") as admin:
            login = await admin.post(
                "auth/login",
                json={"email": "admin@demo.example.com", "password": password.group(1)},
            )
            # The first run drained its audit queue on SIGTERM: each refusal is on record.
            bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
            refusals = [
                await admin.get(
                    f"audit-events/{calls['denied'].data['decision_id']}", headers=bearer
                )
                for calls in seen
            ]
            org_id = refusals[0].json()["organisation_id"]
            analytics = await admin.get(f"organisations/{org_id}/analytics", headers=bearer)
        seen_again = await call_through_the_gateway(server, "auto")
    finally:
        again.stop(signal.SIGTERM)

    assert printed_client_config(output_again) == server
    assert password.group(1) not in output_again
    assert "--reset-password" in output_again
    assert login.status_code == 200
    assert seen_again["sum"] == {"result": 5}
    for refusal in refusals:
        event = refusal.json()
        assert (event["action"], event["direction"], event["tool_name"]) == (
            "block",
            "request",
            "delete_customer",
        )
        assert event["guardrails_triggered"][0]["guardrail"] == "rbac"
    summary = analytics.json()
    assert summary["blocked"] == 2
    blocked_by = {g["guardrail"]: g["count"] for g in summary["top_blocked_guardrails"]}
    assert blocked_by == {"rbac": 2}


def test_demo_has_help() -> None:
    result = subprocess.run(
        [CERBERUS, "demo", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert "--upstream-port" in result.stdout
    assert "--reset-password" in result.stdout


def run_demo_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    full_env.update(env)
    return subprocess.run(
        [CERBERUS, "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=full_env,
    )


def test_the_demo_refuses_a_production_environment(tmp_path: Path) -> None:
    result = run_demo_command(
        env={
            "APP_ENV": "production",
            "SECRET_KEY": "x" * 40,
            "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/cerberus",
            "DATA_DIR": str(tmp_path),
        }
    )

    assert result.returncode == 1
    assert result.stderr == (
        "error: cerberus demo is for trying Cerberus locally, not APP_ENV=production\n"
    )


def test_a_busy_gateway_port_is_one_line_and_nothing_is_left_running(tmp_path: Path) -> None:
    upstream_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_demo_command(
            "--port",
            str(port),
            "--upstream-port",
            str(upstream_port),
            env={"DATA_DIR": str(tmp_path)},
        )

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot use port {port} for the gateway")
    assert "Traceback" not in result.stderr
    assert port_is_free(upstream_port)
