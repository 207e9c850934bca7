"""Compiled pipelines: built from effective policies, cached, shared, invalidated, fail closed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus import sweeping
from cerberus.app import CerberusApp
from cerberus.cache import Cache, create_cache
from cerberus.db import create_engine, create_sessionmaker
from cerberus.guardrails import CheckContext, Direction, Outcome
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.policies import compiled
from cerberus.policies.compiled import PipelineCache
from cerberus.policies.models import Policy
from cerberus.policies.pipelines import CompiledPipeline, UnavailablePipeline
from cerberus.settings import Settings
from cerberus.tenancy.models import Workspace
from tests.factories import create_agent, create_organisation, create_workspace
from tests.servers import free_port


async def add_policy(session: AsyncSession, workspace: Workspace, **fields: Any) -> Policy:
    policy = Policy(
        organisation_id=workspace.organisation_id,
        workspace_id=fields.pop("workspace_id", workspace.id),
        name=fields.pop("name", "policy"),
        guardrail_type=fields.pop("guardrail_type", "rbac"),
        action=fields.pop("action", "block"),
        config=fields.pop("config", {}),
        **fields,
    )
    session.add(policy)
    await session.commit()
    return policy


@pytest.fixture
async def tenant(session: AsyncSession) -> tuple[Workspace, str]:
    organisation = await create_organisation(session)
    workspace = await create_workspace(session, organisation)
    agent, _key = await create_agent(session, workspace)
    await session.commit()
    return workspace, agent.id


@contextmanager
def counted_queries(app: CerberusApp) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def call(tool: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}


async def decide(pipeline: Any, workspace: Workspace, agent_id: str, tool: str) -> Outcome:
    context = CheckContext(workspace.organisation_id, workspace.id, agent_id, Direction.REQUEST)
    decision = await pipeline.decide(call(tool), context)
    return decision.outcome  # type: ignore[no-any-return]


async def eventually(check: Callable[[], Any]) -> None:
    """Poll until check() holds; the deadline only stops a broken build from hanging the suite."""
    async with asyncio.timeout(10):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
async def other_instance(app: CerberusApp, settings: Settings) -> AsyncIterator[PipelineCache]:
    """A second PipelineCache with its own cache client: another gateway process, in effect."""
    cache: Cache = create_cache(settings) if settings.REDIS_URL else app.state.cache
    pipelines = PipelineCache(lambda: app.state.sessionmaker, cache, ttl_seconds=300)
    await pipelines.start()
    yield pipelines
    await pipelines.close()
    if settings.REDIS_URL:
        await cache.close()


async def test_effective_policies_become_one_compiled_pipeline(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str]
) -> None:
    workspace, agent_id = tenant
    await add_policy(session, workspace, config={"denied_tools": ["drop_*"]})
    await add_policy(
        session,
        workspace,
        guardrail_type="rate_limit_per_minute",
        action="throttle",
        config={"limit": 100},
    )
    pipeline = await app.state.pipelines.for_agent(
        workspace.organisation_id, workspace.id, agent_id, "closed"
    )
    assert isinstance(pipeline, CompiledPipeline)
    types = [g.type for g in pipeline.guardrails(Direction.REQUEST)]
    assert types == ["rbac", "rate_limit_per_minute"]
    assert await decide(pipeline, workspace, agent_id, "drop_table") is Outcome.BLOCK
    assert await decide(pipeline, workspace, agent_id, "search") is Outcome.ALLOW


async def test_agent_scope_policy_overrides_the_workspace_one(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str]
) -> None:
    workspace, agent_id = tenant
    other, _ = await create_agent(session, workspace)
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    await add_policy(session, workspace, agent_id=agent_id, config={"denied_tools": ["search"]})
    mine = await app.state.pipelines.for_agent(workspace.organisation_id, workspace.id, agent_id)
    theirs = await app.state.pipelines.for_agent(workspace.organisation_id, workspace.id, other.id)
    assert await decide(mine, workspace, agent_id, "shell") is Outcome.ALLOW
    assert await decide(mine, workspace, agent_id, "search") is Outcome.BLOCK
    assert await decide(theirs, workspace, other.id, "shell") is Outcome.BLOCK


async def test_agents_with_the_same_effective_policies_share_one_compiled_pipeline(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str]
) -> None:
    # Each agent had its own copy (~15 KiB of guardrails and steps), kept for every agent a
    # process had ever served: an organisation's many keys grew every instance for good.
    workspace, agent_id = tenant
    second, _ = await create_agent(session, workspace)
    third, _ = await create_agent(session, workspace)
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    await add_policy(session, workspace, agent_id=third.id, config={"denied_tools": ["search"]})
    pipelines = app.state.pipelines
    org = workspace.organisation_id
    mine = await pipelines.for_agent(org, workspace.id, agent_id, "closed")
    theirs = await pipelines.for_agent(org, workspace.id, second.id, "closed")
    own = await pipelines.for_agent(org, workspace.id, third.id, "closed")
    assert theirs is mine
    assert own is not mine
    assert await decide(own, workspace, third.id, "search") is Outcome.BLOCK
    assert await decide(mine, workspace, second.id, "search") is Outcome.ALLOW
    # Another fail mode is another pipeline, shared the same way.
    open_mode = await pipelines.for_agent(org, workspace.id, agent_id, "open")
    assert open_mode is not mine
    assert await pipelines.for_agent(org, workspace.id, second.id, "open") is open_mode


async def test_entries_of_agents_gone_quiet_are_dropped_as_the_cache_grows(
    app: CerberusApp,
    session: AsyncSession,
    tenant: tuple[Workspace, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace, _ = tenant
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    monkeypatch.setattr(sweeping, "SWEEP_AT_LEAST", 8)
    start = time.monotonic()
    clock = SimpleNamespace(monotonic=lambda: start)
    monkeypatch.setattr(compiled, "time", clock)
    pipelines = PipelineCache(lambda: app.state.sessionmaker, app.state.cache, ttl_seconds=60)
    await pipelines.start()
    try:
        org = workspace.organisation_id
        for number in range(12):
            await pipelines.for_agent(org, workspace.id, f"agent-{number}")
        assert len(pipelines._entries) == 12
        later = start + 61
        clock.monotonic = lambda: later
        for number in range(12, 20):
            await pipelines.for_agent(org, workspace.id, f"agent-{number}")
        # The first twelve expired and went at the sweep (at 16 entries); the new ones stay.
        assert sorted(pipelines._entries) == [(workspace.id, f"agent-{n}") for n in range(12, 20)]
    finally:
        await pipelines.close()


async def test_a_warm_pipeline_needs_no_database_query(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str]
) -> None:
    workspace, agent_id = tenant
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id, "closed")
    first = await app.state.pipelines.for_agent(*args)
    with counted_queries(app) as statements:
        again = await app.state.pipelines.for_agent(*args)
    assert again is first
    assert statements == []


async def test_another_instance_builds_from_the_shared_cache_without_a_query(
    app: CerberusApp,
    session: AsyncSession,
    tenant: tuple[Workspace, str],
    other_instance: PipelineCache,
) -> None:
    workspace, agent_id = tenant
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id, "closed")
    await app.state.pipelines.for_agent(*args)
    with counted_queries(app) as statements:
        pipeline = await other_instance.for_agent(*args)
    assert statements == []
    assert await decide(pipeline, workspace, agent_id, "shell") is Outcome.BLOCK


async def test_a_policy_change_reaches_every_instance(
    app: CerberusApp,
    session: AsyncSession,
    tenant: tuple[Workspace, str],
    other_instance: PipelineCache,
) -> None:
    workspace, agent_id = tenant
    policy = await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id, "closed")
    for instance in (app.state.pipelines, other_instance):
        assert await decide(await instance.for_agent(*args), workspace, agent_id, "shell") is (
            Outcome.BLOCK
        )
    policy.config = {"denied_tools": ["search"]}
    await session.commit()
    await app.state.cache.publish(
        CHANNEL,
        Invalidation(
            "policy", policy.id, organisation_id=workspace.organisation_id, workspace_id=None
        ).encode(),
    )

    def sees_the_change(instance: PipelineCache) -> Callable[[], Any]:
        async def check() -> bool:
            pipeline = await instance.for_agent(*args)
            return await decide(pipeline, workspace, agent_id, "shell") is Outcome.ALLOW

        return check

    await eventually(sees_the_change(app.state.pipelines))
    await eventually(sees_the_change(other_instance))
    assert await decide(await other_instance.for_agent(*args), workspace, agent_id, "search") is (
        Outcome.BLOCK
    )


async def test_a_new_instance_does_not_read_rows_cached_before_a_change(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str], settings: Settings
) -> None:
    workspace, agent_id = tenant
    policy = await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id, "closed")
    await app.state.pipelines.for_agent(*args)
    policy.enabled = False
    await session.commit()
    # No organisation in the event: every instance moves to a new generation of the cache.
    await app.state.cache.publish(CHANNEL, Invalidation("workspace", workspace.id).encode())

    async def fresh_instance_sees_no_policy() -> bool:
        newcomer = PipelineCache(lambda: app.state.sessionmaker, app.state.cache, ttl_seconds=300)
        pipeline = await newcomer.for_agent(*args)
        return not pipeline.guardrails(Direction.REQUEST)

    await eventually(fresh_instance_sees_no_policy)


async def test_invalid_stored_config_fails_closed_with_a_logged_error(
    app: CerberusApp,
    session: AsyncSession,
    tenant: tuple[Workspace, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    workspace, agent_id = tenant
    await add_policy(session, workspace, config={"denied_tools": "not-a-list", "bogus": 1})
    with caplog.at_level(logging.ERROR, logger="cerberus.policies"):
        pipeline = await app.state.pipelines.for_agent(
            workspace.organisation_id, workspace.id, agent_id, "closed"
        )
    assert isinstance(pipeline, UnavailablePipeline)
    context = CheckContext(workspace.organisation_id, workspace.id, agent_id, Direction.REQUEST)
    decision = await pipeline.decide(call("search"), context)
    assert decision.outcome is Outcome.BLOCK
    assert "fail_mode closed" in decision.reason
    assert decision.triggered[0]["findings"][0]["type"] == "evaluation_error"
    assert any("invalid stored policy" in record.getMessage() for record in caplog.records)


async def test_a_stored_integer_the_gateway_cannot_encode_fails_closed_once_not_every_second(
    app: CerberusApp,
    session: AsyncSession,
    tenant: tuple[Workspace, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A row the API accepted before it refused such numbers: orjson (the shared cache's
    # encoder) raised on it, and the build failed and was retried every second, for ever.
    workspace, agent_id = tenant
    too_large = await add_policy(
        session, workspace, guardrail_type="content_large_documents", config={"max_chars": 10**30}
    )
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id)
    with caplog.at_level(logging.WARNING, logger="cerberus.policies"):
        closed = await app.state.pipelines.for_agent(*args, "closed")
        opened = await app.state.pipelines.for_agent(*args, "open")
        await asyncio.sleep(compiled.FAILED_BUILD_RETRY_SECONDS + 0.2)
        with counted_queries(app) as statements:
            again = await app.state.pipelines.for_agent(*args, "closed")

    assert isinstance(closed, UnavailablePipeline)
    assert await decide(closed, workspace, agent_id, "search") is Outcome.BLOCK
    # fail_mode open runs the policies it could build, as for any invalid stored policy.
    assert await decide(opened, workspace, agent_id, "search") is Outcome.ALLOW
    assert await decide(opened, workspace, agent_id, "shell") is Outcome.BLOCK
    assert again is closed
    assert statements == []
    [line] = caplog.records
    assert line.levelno == logging.ERROR
    assert "invalid stored policy" in line.getMessage()
    error = line.__dict__["error"]
    assert too_large.id in error
    assert "max_chars" in error
    assert "\n" not in error


async def test_unknown_guardrail_type_fails_closed_and_open_runs_the_rest(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str]
) -> None:
    workspace, agent_id = tenant
    await add_policy(session, workspace, guardrail_type="no_such_guardrail")
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id)
    closed = await app.state.pipelines.for_agent(*args, "closed")
    assert await decide(closed, workspace, agent_id, "search") is Outcome.BLOCK
    opened = await app.state.pipelines.for_agent(*args, "open")
    assert opened.fail_mode == "open"
    assert await decide(opened, workspace, agent_id, "search") is Outcome.ALLOW
    assert await decide(opened, workspace, agent_id, "shell") is Outcome.BLOCK


async def test_a_database_outage_on_a_cold_miss_fails_closed(
    app: CerberusApp, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = Settings(
        APP_ENV="test",
        DATABASE_URL=f"postgresql+asyncpg://cerberus@127.0.0.1:{free_port()}/none",
    )
    engine = create_engine(down)
    sessions = create_sessionmaker(engine)
    pipelines = PipelineCache(lambda: sessions, app.state.cache, ttl_seconds=300)
    try:
        with caplog.at_level(logging.ERROR, logger="cerberus.policies"):
            pipeline = await pipelines.for_agent("org", "ws", "agent", "closed")
        assert isinstance(pipeline, UnavailablePipeline)
        context = CheckContext("org", "ws", "agent", Direction.RESPONSE)
        decision = await pipeline.decide({"jsonrpc": "2.0", "id": 1, "result": {}}, context)
        assert decision.blocked
        assert any("could not load policies" in r.getMessage() for r in caplog.records)
        assert (await pipelines.for_agent("org", "ws", "agent", "open")).fail_mode == "open"
    finally:
        await engine.dispose()


async def test_concurrent_cold_misses_build_once(
    app: CerberusApp, session: AsyncSession, tenant: tuple[Workspace, str]
) -> None:
    workspace, agent_id = tenant
    await add_policy(session, workspace, config={"denied_tools": ["shell"]})
    args = (workspace.organisation_id, workspace.id, agent_id, "closed")
    pipelines = await asyncio.gather(*(app.state.pipelines.for_agent(*args) for _ in range(10)))
    assert all(p is pipelines[0] for p in pipelines)
