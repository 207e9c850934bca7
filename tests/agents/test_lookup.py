"""The proxy's key lookup: what it keeps in memory, and for how long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import anyio
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.agents import lookup
from cerberus.agents import service as agents_service
from cerberus.agents.models import Agent
from cerberus.app import CerberusApp
from cerberus.changes.service import Actor
from cerberus.invalidation import Invalidation, invalidate_after_commit, publish_pending
from cerberus.tenancy.models import Organisation, User, Workspace
from tests.conftest import Invalidations
from tests.factories import create_agent, create_tenant, create_workspace


async def test_unknown_keys_are_not_kept_after_they_expire(
    app: CerberusApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every unknown key (anyone can send one) was kept for the life of the process: memory
    # grew with each distinct key presented. Expired entries are now swept as the dict grows.
    agents: lookup.AgentLookup = app.state.agents
    # The lookup's own clock, stopped: the loops take longer than an unknown key's TTL.
    start = time.monotonic()
    clock = SimpleNamespace(monotonic=lambda: start, time=time.time)
    monkeypatch.setattr(lookup, "time", clock)
    for number in range(1500):
        assert await agents.resolve(f"sk-cerb-unknown-{number}") == (None, "unknown key")
    assert len(agents._by_hash) == 1500
    later = start + lookup.UNKNOWN_TTL_SECONDS + 1
    clock.monotonic = lambda: later
    for number in range(1500, 3000):
        await agents.resolve(f"sk-cerb-unknown-{number}")
    # The first 1,500 expired and went at the sweep (at 2,048 entries); the new ones stay.
    assert len(agents._by_hash) == 1500
    assert all(until > later for _, until in agents._by_hash.values())


class Hold:
    """Stops the first session closed, once closed: its row is read, the entry not made yet."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    def sessionmaker(self, app: CerberusApp) -> async_sessionmaker[AsyncSession]:
        hold = self

        class HeldSession(AsyncSession):
            async def close(self) -> None:
                await super().close()
                if not hold.reached.is_set():
                    hold.reached.set()
                    await hold.release.wait()

        return async_sessionmaker(class_=HeldSession, **app.state.sessionmaker.kw)


# A change as the control plane makes it (committed, then published): what it invalidates
# and the refusal it leads to.
Change = Callable[[AsyncSession, User, Agent], Awaitable[tuple[str, str]]]


async def _revoke(session: AsyncSession, admin: User, agent: Agent) -> tuple[str, str]:
    await agents_service.revoke_agent(session, Actor(admin, None), agent.id)
    return "agent", agent.id


async def _deactivate_workspace(
    session: AsyncSession, admin: User, agent: Agent
) -> tuple[str, str]:
    workspace = await session.get(Workspace, agent.workspace_id)
    assert workspace is not None
    workspace.is_active = False
    invalidate_after_commit(
        session,
        Invalidation("workspace", workspace.id, workspace.organisation_id, workspace.id),
    )
    return "workspace", workspace.id


async def _deactivate_organisation(
    session: AsyncSession, admin: User, agent: Agent
) -> tuple[str, str]:
    organisation = await session.get(Organisation, agent.organisation_id)
    assert organisation is not None
    organisation.is_active = False
    invalidate_after_commit(session, Invalidation("organisation", organisation.id, organisation.id))
    return "organisation", organisation.id


INACTIVE = "agent's workspace or organisation is inactive"
CHANGES = [
    pytest.param(_revoke, "key revoked", id="agent-revoked"),
    pytest.param(_deactivate_workspace, INACTIVE, id="workspace-deactivated"),
    pytest.param(_deactivate_organisation, INACTIVE, id="organisation-deactivated"),
]


class Instances:
    """Key lookups as separate gateway instances would run them: one database, one cache."""

    def __init__(self, app: CerberusApp) -> None:
        self.app = app
        self.started: list[lookup.AgentLookup] = []

    async def start(
        self, sessionmaker: async_sessionmaker[AsyncSession] | None = None, *, listen: bool = True
    ) -> lookup.AgentLookup:
        chosen = sessionmaker or self.app.state.sessionmaker
        instance = lookup.AgentLookup(lambda: chosen, self.app.state.cache, ttl=30)
        if listen:
            await instance.start()
        self.started.append(instance)
        return instance

    async def settled(self) -> None:
        """Until every instance has done what the invalidations it heard asked of it."""
        pending = [task for instance in self.started for task in instance._tasks]
        with anyio.fail_after(10):
            await asyncio.gather(*pending)


@pytest.fixture
async def instances(app: CerberusApp) -> AsyncIterator[Instances]:
    running = Instances(app)
    try:
        yield running
    finally:
        for instance in running.started:
            await instance.close()


async def _agent(app: CerberusApp) -> tuple[Agent, str, User]:
    async with app.state.sessionmaker() as session:
        organisation, admin, _ = await create_tenant(session)
        agent, key = await create_agent(session, await create_workspace(session, organisation))
        await session.commit()
    return agent, key, admin


async def _change_while_held(
    app: CerberusApp,
    invalidations: Invalidations,
    instances: Instances,
    hold: Hold,
    change: Change,
    agent: Agent,
    admin: User,
) -> None:
    """The change committed and published, and heard, while the held load waits between
    reading the row and caching it."""
    with anyio.fail_after(10):
        await hold.reached.wait()
    async with app.state.sessionmaker() as session:
        kind, object_id = await change(session, admin, agent)
        await session.commit()
        await publish_pending(session, app.state.cache)
    await invalidations.wait_for(kind, object_id)
    await instances.settled()
    hold.release.set()


@pytest.mark.parametrize(("change", "refusal"), CHANGES)
async def test_a_load_that_heard_a_change_does_not_put_the_old_row_in_the_shared_cache(
    app: CerberusApp,
    invalidations: Invalidations,
    instances: Instances,
    change: Change,
    refusal: str,
) -> None:
    # An instance read the agent's row; the change committed and every instance heard it
    # (and deleted the shared entry) before that instance cached the row. It then wrote the
    # old row to the shared cache, stamped later than the change: every instance used it
    # as fresh, and the revoked key worked everywhere for up to 30 s (55 s in the review).
    agent, key, admin = await _agent(app)
    hold = Hold()
    loading = await instances.start(hold.sessionmaker(app))
    other = await instances.start()
    in_flight = asyncio.create_task(loading.resolve(key))
    await _change_while_held(app, invalidations, instances, hold, change, agent, admin)
    # The request in flight when the change committed uses what it read; nothing keeps it.
    await in_flight

    assert await app.state.cache.get(f"cerberus:agent:{agent.id}") is None
    later = await instances.start()
    for instance in (loading, other, later):
        assert await instance.resolve(key) == (None, refusal)


@pytest.mark.parametrize("told", [True, False], ids=["told", "not-told"])
@pytest.mark.parametrize(("change", "refusal"), CHANGES)
async def test_an_old_row_in_the_shared_cache_is_not_used_after_the_change(
    app: CerberusApp,
    invalidations: Invalidations,
    instances: Instances,
    change: Change,
    refusal: str,
    told: bool,
) -> None:
    # The instance that read the row did not hear the change (it lost the message), so it
    # put the old row in the shared cache after the change. The entry is stamped with when
    # its row began to be read, before the change: the instances that heard the change, and
    # those that did not but find the marker it left in the shared cache, read the database.
    agent, key, admin = await _agent(app)
    hold = Hold()
    deaf = await instances.start(hold.sessionmaker(app), listen=False)
    other = await instances.start()
    in_flight = asyncio.create_task(deaf.resolve(key))
    await _change_while_held(app, invalidations, instances, hold, change, agent, admin)
    await in_flight
    assert await app.state.cache.get(f"cerberus:agent:{agent.id}") is not None

    # An instance told of the change knows the entry was read before it; one started after the
    # change, never told of it, learns it from the marker. (Only the first to look finds the
    # old row: one that reads the database writes the row as it is now to the shared cache.)
    instance = other if told else await instances.start()
    assert await instance.resolve(key) == (None, refusal)
