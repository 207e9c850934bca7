"""Cerberus for a conformance run: migrated, with one tenant, one or more `cerberus serve`
instances, and the auth forwarder in front of them (spreading requests over the instances in
turn, as a load balancer would)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from processes import Process, free_port, start, wait_until_serving
from provision import Tenant, provision
from sqlalchemy import func, select

from cerberus.audit.models import AuditEvent
from cerberus.db import create_engine
from cerberus.settings import Settings

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Backing:
    """Where the instances keep their state: the embedded default, or a shared database and
    cache (needed for more than one instance, which must share sessions and keys)."""

    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None


@dataclass(frozen=True)
class Gateway:
    base_url: str  # the forwarder's: the suite talks to an endpoint under it
    tenant: Tenant
    settings: Settings


class running:
    """Stops the process (by its PID) when the block ends, however it ends."""

    def __init__(self, process: Process) -> None:
        self.process = process

    def __enter__(self) -> Process:
        return self.process

    def __exit__(self, *exc: object) -> None:
        self.process.stop()


def start_gateway(
    stack: ExitStack,
    upstream_url: str,
    backing: Backing,
    logs: Path,
    *,
    instances: int = 1,
    starter_policies: bool = False,
) -> Gateway:
    forwarder_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATA_DIR=str(backing.data_dir),
        DATABASE_URL=backing.database_url or "",
        REDIS_URL=backing.redis_url or "",
        APP_ENV="development",
        LOG_LEVEL="WARNING",
    )
    # ALLOWED_ORIGINS stays at its default, as a user gets it: the suite sends
    # `Origin: http://127.0.0.1:<port>` and expects a local server to accept it.
    env.pop("ALLOWED_ORIGINS", None)
    subprocess.run([str(BIN / "cerberus"), "migrate"], env=env, check=True, capture_output=True)
    settings = Settings(
        DATA_DIR=backing.data_dir, DATABASE_URL=backing.database_url, REDIS_URL=backing.redis_url
    )
    tenant = asyncio.run(provision(settings, upstream_url, starter_policies=starter_policies))
    targets = []
    for index in range(instances):
        port = free_port()
        argv = [str(BIN / "cerberus"), "serve", "--port", str(port)]
        process = start(
            f"cerberus-{index}", argv, port=port, log_dir=logs, env=env, cwd=backing.data_dir
        )
        targets.append(stack.enter_context(running(process)))
    for target in targets:
        wait_until_serving(target, "/health")
        refuses_anonymous(f"{target.base_url}/mcp")
    argv = [sys.executable, str(HERE / "auth_forwarder.py"), "--port", str(forwarder_port)]
    for target in targets:
        argv += ["--target", target.base_url]
    forwarder_env = {**os.environ, "CONFORMANCE_AGENT_KEY": tenant.key}
    forwarder = start("forwarder", argv, port=forwarder_port, log_dir=logs, env=forwarder_env)
    stack.enter_context(running(forwarder))
    wait_until_serving(forwarder)
    return Gateway(forwarder.base_url, tenant, settings)


def refuses_anonymous(url: str) -> None:
    """The suite must be talking to Cerberus' authenticated endpoint, not around it."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 401:
        raise RuntimeError(f"{url} answered {status} without an agent key; expected 401")


def count_audit_events(gateway: Gateway) -> int:
    """Call once the instances have stopped: they drain their audit queues on the way out."""

    async def count() -> int:
        engine = create_engine(gateway.settings)
        try:
            async with engine.connect() as connection:
                query = select(func.count()).select_from(AuditEvent)
                query = query.where(AuditEvent.organisation_id == gateway.tenant.organisation_id)
                return int((await connection.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())
