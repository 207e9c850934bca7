"""A fast subset of the official MCP conformance suite, through Cerberus in front of the SDK
fixture upstream, compared check by check with the same scenarios run directly.

Needs Node 22 and the suite from npm (`make conformance-install`); without them the test is
skipped, so `make test` never depends on npm. `make conformance` runs every scenario.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from anyio import to_thread
from conformance.provision import Tenant, provision
from conformance.suite import SUITES, ScenarioResult, Suite, installed, regressions, run_suite
from sqlalchemy import delete

from cerberus.agents.models import Agent
from cerberus.db import create_engine, create_sessionmaker
from cerberus.tenancy.models import Organisation, Workspace
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


@pytest.fixture
async def tenant(backend: Backend) -> AsyncIterator[tuple[Tenant, Server]]:
    """The fixture upstream, and a tenant whose workspace points at it (removed afterwards)."""
    port = free_port()
    upstream = start(
        [sys.executable, str(ROOT / "conformance" / "upstream.py"), "--port", str(port)],
        port=port,
        log_path=backend.data_dir / f"upstream-{port}.log",
    )
    await to_thread.run_sync(wait_until_healthy, upstream, "/mcp")
    settings = settings_for(backend)
    created = await provision(settings, f"{upstream.url}/mcp")
    try:
        yield created, upstream
    finally:
        upstream.stop()
        engine = create_engine(settings)
        async with create_sessionmaker(engine)() as session:
            await session.execute(delete(Agent).where(Agent.id == created.agent_id))
            await session.execute(delete(Workspace).where(Workspace.id == created.workspace_id))
            organisation = Organisation.id == created.organisation_id
            await session.execute(delete(Organisation).where(organisation))
            await session.commit()
        await engine.dispose()


def gateway_env(backend: Backend, forwarder_port: int) -> dict[str, str]:
    return {
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url or "",
        "DATA_DIR": str(backend.data_dir),
        "RUN_MIGRATIONS_ON_STARTUP": "false",
        "APP_ENV": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        "ALLOWED_ORIGINS": f"http://127.0.0.1:{forwarder_port}",
    }


def run_through_gateway(
    suite: Suite, scenarios: tuple[str, ...], backend: Backend, key: str, tmp_path: Path
) -> dict[str, ScenarioResult]:
    """Cerberus on the test backend, the forwarder adding the agent key, the suite through both."""
    forwarder_port = free_port()
    with cerberus_servers(1, gateway_env(backend, forwarder_port), tmp_path) as (gateway,):
        forwarder = start(
            [
                sys.executable,
                str(ROOT / "conformance" / "auth_forwarder.py"),
                "--port",
                str(forwarder_port),
                "--target",
                gateway.url,
            ],
            port=forwarder_port,
            log_path=tmp_path / "forwarder.log",
            env={"CONFORMANCE_AGENT_KEY": key},
        )
        try:
            wait_until_healthy(forwarder, "/health")
            url = f"http://127.0.0.1:{forwarder_port}/mcp"
            return run_suite(NPM_DIR, suite, url, tmp_path / "cerberus", scenarios=scenarios)
        finally:
            forwarder.stop()


@pytest.mark.parametrize("suite", SUITES, ids=lambda suite: suite.name)
async def test_conformance_subset_passes_through_cerberus_as_it_does_directly(
    suite: Suite, tenant: tuple[Tenant, Server], backend: Backend, tmp_path: Path
) -> None:
    created, upstream = tenant
    scenarios = SUBSET[suite.name]
    direct = await to_thread.run_sync(
        partial(
            run_suite,
            NPM_DIR,
            suite,
            f"{upstream.url}/mcp",
            tmp_path / "direct",
            scenarios=scenarios,
        )
    )
    assert sorted(direct) == sorted(scenarios)
    assert [name for name, result in direct.items() if result.failed] == []

    through = await to_thread.run_sync(
        partial(run_through_gateway, suite, scenarios, backend, created.key, tmp_path)
    )

    broken = regressions(suite.name, direct, through)
    assert not broken, "\n".join(
        f"{r.scenario} / {r.check}: {r.direct} -> {r.gateway}: {r.message}" for r in broken
    )
