"""A fast subset of the official MCP conformance suite, through Cerberus in front of the SDK
fixture upstream, compared check by check with the same scenarios run directly. On PostgreSQL +
Redis, two Cerberus instances take the requests in turn, as behind a load balancer.

Needs Node 22 and the suite from npm (`make conformance-install`); without them the test is
skipped, so `make test` never depends on npm. `make conformance` runs every scenario.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from anyio import to_thread
from conformance.provision import Tenant, provision
from conformance.suite import SUITES, Suite, installed, regressions, run_suite
from sqlalchemy import delete

from cerberus.agents.models import Agent
from cerberus.audit.models import AuditEvent
from cerberus.changes.models import ChangeRecord
from cerberus.db import create_engine, create_sessionmaker
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, User, Workspace
from tests.conftest import TEST_SECRET_KEY, Backend, settings_for
from tests.servers import Server, cerberus_servers, free_port, start, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = ROOT / "conformance" / ".npm"
MISSING = installed(NPM_DIR)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        MISSING is not None, reason=f"MCP conformance suite (Node 22 + npm packages) {MISSING}"
    ),
]

# Scenarios that exercise what a gateway most often breaks: SSE streaming of progress and of
# server-to-client requests, sessions and their end, resumption with Last-Event-ID, Origin
# checks, the stateless era's headers and errors, and requestState passed byte for byte.
SUBSET = {
    "legacy": (
        "server-initialize",
        "tools-call-with-progress",
        "tools-call-sampling",
        "tools-call-elicitation",
        "resources-read-binary",
        "dns-rebinding-protection",
    ),
    "2025-11-25": ("server-session-lifecycle", "server-sse-polling", "tools-call-with-logging"),
    "2026-07-28": (
        "server-stateless",
        "tools-call-with-progress",
        "input-required-result-request-state",
        "input-required-result-tampered-state",
        "http-custom-header-server-validation",
        "caching",
    ),
}


@dataclass(frozen=True)
class Rig:
    """The fixture upstream, and the forwarder in front of Cerberus in front of it."""

    upstream_url: str
    gateway_url: str


@pytest.fixture(scope="module")
async def rig(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """Started once per backend; the tenant's rows and audit events are removed afterwards."""
    logs = tmp_path_factory.mktemp(f"conformance-{backend.name}")
    settings = settings_for(backend)
    with ExitStack() as stack:
        upstream = await to_thread.run_sync(start_upstream, stack, logs)
        tenant = await provision(settings, f"{upstream.url}/mcp")
        try:
            gateway_url = await to_thread.run_sync(start_gateway, stack, backend, tenant, logs)
            yield Rig(f"{upstream.url}/mcp", gateway_url)
        finally:
            await to_thread.run_sync(stack.close)
            await remove_tenant(settings, tenant)


def start_upstream(stack: ExitStack, logs: Path) -> Server:
    port = free_port()
    upstream = start(
        [sys.executable, str(ROOT / "conformance" / "upstream.py"), "--port", str(port)],
        port=port,
        log_path=logs / "upstream.log",
    )
    stack.callback(upstream.stop)
    wait_until_healthy(upstream, "/mcp")
    return upstream


def start_gateway(stack: ExitStack, backend: Backend, tenant: Tenant, logs: Path) -> str:
    """Cerberus on the test backend (two instances taking requests in turn when there is a
    shared cache for them), and the forwarder that adds the agent key."""
    forwarder_port = free_port()
    env = {
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url or "",
        "DATA_DIR": str(backend.data_dir),
        "RUN_MIGRATIONS_ON_STARTUP": "false",
        "APP_ENV": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        "ALLOWED_ORIGINS": "",  # the default: loopback origins, as the suite sends
    }
    instances = stack.enter_context(cerberus_servers(2 if backend.redis_url else 1, env, logs))
    argv = [sys.executable, str(ROOT / "conformance" / "auth_forwarder.py")]
    argv += ["--port", str(forwarder_port)]
    for instance in instances:
        argv += ["--target", instance.url]
    forwarder = start(
        argv,
        port=forwarder_port,
        log_path=logs / "forwarder.log",
        env={"CONFORMANCE_AGENT_KEY": tenant.key},
    )
    stack.callback(forwarder.stop)
    wait_until_healthy(forwarder, "/health")
    return f"{forwarder.url}/mcp"


async def remove_tenant(settings: Settings, tenant: Tenant) -> None:
    """Everything the run created, so later tests on this backend see an untouched database."""
    organisation_id = tenant.organisation_id
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            for statement in (
                delete(AuditEvent).where(AuditEvent.organisation_id == organisation_id),
                delete(ChangeRecord).where(ChangeRecord.actor_id == tenant.admin_id),
                delete(Agent).where(Agent.id == tenant.agent_id),
                delete(Workspace).where(Workspace.id == tenant.workspace_id),
                delete(Organisation).where(Organisation.id == organisation_id),
                delete(User).where(User.id == tenant.admin_id),
            ):
                await session.execute(statement)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "suite", [suite for suite in SUITES if suite.name in SUBSET], ids=lambda suite: suite.name
)
async def test_conformance_subset_passes_through_cerberus_as_it_does_directly(
    suite: Suite, rig: Rig, tmp_path: Path
) -> None:
    scenarios = SUBSET[suite.name]
    direct = await to_thread.run_sync(
        partial(run_suite, NPM_DIR, suite, rig.upstream_url, tmp_path / "d", scenarios=scenarios)
    )
    assert sorted(direct) == sorted(scenarios)
    assert [name for name, result in direct.items() if result.failed] == []

    through = await to_thread.run_sync(
        partial(run_suite, NPM_DIR, suite, rig.gateway_url, tmp_path / "g", scenarios=scenarios)
    )

    broken = regressions(suite.name, direct, through)
    assert not broken, "\n".join(
        f"{r.scenario} / {r.check}: {r.direct} -> {r.gateway}: {r.message}" for r in broken
    )
