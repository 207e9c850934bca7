"""Pins an instance holds catch up with an approval or unpinning it did not hear about.

Each test runs separate pipeline caches (instances) on the live app's database and shared
cache; the admin acts through the control plane, or the service when the event is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from cerberus.cache import Cache, Subscriber
from cerberus.changes.service import Actor
from cerberus.guardrails import Outcome
from cerberus.invalidation import CHANNEL, Invalidation
from cerberus.policies import pin_service
from cerberus.policies.compiled import PipelineCache
from cerberus.policies.models import ToolPin
from cerberus.policies.pin_service import ToolPinApprove
from tests.policies.live_app import Live, Tenant, live_fixture  # noqa: F401
from tests.policies.test_pins import (
    POISONED,
    SEARCH,
    auth_headers,
    call_tool,
    findings,
    list_tools,
)


class DeafCache:
    """The shared cache as seen by an instance whose subscription is down."""

    def __init__(self, inner: Cache) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def subscribe(self, channel: str, handler: Subscriber) -> None:
        return None


def instance(
    live: Live, *, ttl: float = 300, cache: Any = None, sessions: Any = None
) -> PipelineCache:
    return PipelineCache(
        sessions or (lambda: live.sessions), cache or live.app.state.cache, ttl_seconds=ttl
    )


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def rug_pull(live: Live, tenant: Tenant) -> None:
    """An instance pins SEARCH, then sees it changed: the change awaits approval."""
    await live.add_policy(tenant, "tool_pinning")
    first = instance(live)
    await first.start()
    try:
        await list_tools(first, tenant, SEARCH)
        await first.pins.flush()
        assert (await list_tools(first, tenant, POISONED)).outcome is Outcome.BLOCK
        await first.pins.flush()
        # Every instance has handled the writes' events (and the first one reloaded).
        await asyncio.sleep(0.2)
    finally:
        await first.close()  # replaced (a deploy, a scale-in)
    # What any instance loads now (and leaves in the shared cache) is the pending change.
    warm = instance(live)
    await warm.pins.ensure_loaded(tenant.workspace.id)
    assert warm.pins.awaiting_approval(tenant.workspace.id, "search")


async def pin_id(live: Live, tenant: Tenant) -> str:
    return (await live.pins(tenant.workspace.id))["search"].id


async def heard(live: Live) -> Callable[[], Awaitable[bool]]:
    """Whether a tool_pin event has reached the subscribers that subscribed before this."""
    events: list[Invalidation] = []
    await live.app.state.cache.subscribe(
        CHANNEL, lambda raw: events.append(Invalidation.decode(raw))
    )

    async def check() -> bool:
        return any(event.kind == "tool_pin" for event in events)

    return check


@pytest.mark.parametrize("action", ["approve", "unpin"])
async def test_an_instance_that_loads_the_workspace_after_the_change_sees_it(
    live: Live, action: str
) -> None:
    """No instance had the workspace loaded when the admin acted: none reloaded it, and the
    shared cache kept the pins as they were before."""
    tenant = await live.tenant()
    await rug_pull(live, tenant)
    later = instance(live)
    await later.start()
    event = await heard(live)
    try:
        headers = auth_headers(live, tenant)
        url = f"/control-plane/api/v1/tool-pins/{await pin_id(live, tenant)}"
        if action == "approve":
            response = await live.http.post(f"{url}/approve", headers=headers)
            assert response.status_code == 200, response.text
        else:
            response = await live.http.delete(url, headers=headers)
            assert response.status_code == 204, response.text
        await within(5, event)

        decision = await list_tools(later, tenant, POISONED)
        if action == "approve":
            assert decision.outcome is Outcome.ALLOW
        else:
            assert decision.outcome is Outcome.LOG_ONLY
            assert findings(decision) == {"new_tool": 1}
        assert (await call_tool(later, tenant, "search")).outcome is Outcome.ALLOW
        fresh = instance(live)
        await fresh.pins.ensure_loaded(tenant.workspace.id)
        assert not fresh.pins.awaiting_approval(tenant.workspace.id, "search")
    finally:
        await later.pins.flush()
        await later.close()


async def approve_unannounced(live: Live, tenant: Tenant) -> None:
    """The admin approves, and the invalidation is lost (never published)."""
    async with live.sessions() as session:
        pin = await session.scalar(
            select(ToolPin).where(ToolPin.workspace_id == tenant.workspace.id)
        )
        assert pin is not None
        await pin_service.approve(session, Actor(tenant.admin, None), pin.id, ToolPinApprove())
        await session.commit()


async def test_an_instance_that_missed_the_approval_catches_up_within_the_ttl(
    live: Live,
) -> None:
    tenant = await live.tenant()
    await rug_pull(live, tenant)
    ttl = 1.0
    deaf = instance(live, ttl=ttl, cache=DeafCache(live.app.state.cache))
    await deaf.start()
    try:
        assert (await list_tools(deaf, tenant, POISONED)).outcome is Outcome.BLOCK
        await approve_unannounced(live, tenant)

        async def approved() -> bool:
            # The hot path answers from memory only: the refresh happens beside it.
            return not deaf.pins.awaiting_approval(tenant.workspace.id, "search")

        # The TTL, a refresh check (a quarter of it) and slack for a slow database.
        await within(ttl * 3, approved)
        assert (await list_tools(deaf, tenant, POISONED)).outcome is Outcome.ALLOW
        assert (await call_tool(deaf, tenant, "search")).outcome is Outcome.ALLOW
    finally:
        await deaf.pins.flush()
        await deaf.close()


async def test_pins_that_cannot_be_refreshed_stay_in_force(live: Live) -> None:
    """A database (and shared cache entry) unavailable at expiry neither unpins a tool nor
    breaks the guardrail; the pins are read again once the database is back."""
    tenant = await live.tenant()
    await rug_pull(live, tenant)
    engine = create_async_engine("sqlite+aiosqlite:////nonexistent/cerberus/down.db")
    down: async_sessionmaker[AsyncSession] = async_sessionmaker(engine, expire_on_commit=False)
    source = {"sessions": live.sessions}
    ttl = 0.5
    deaf = instance(
        live,
        ttl=ttl,
        cache=DeafCache(live.app.state.cache),
        sessions=lambda: source["sessions"],
    )
    await deaf.start()
    try:
        assert (await list_tools(deaf, tenant, POISONED)).outcome is Outcome.BLOCK
        source["sessions"] = down
        await approve_unannounced(live, tenant)
        await asyncio.sleep(ttl * 3)
        assert deaf.pins.awaiting_approval(tenant.workspace.id, "search")
        # Blocked by the pin awaiting approval, not by a pipeline that could not be built: a
        # rebuild read the expired pins on the request path, and the database being down
        # blocked every call of the workspace.
        blocked = await call_tool(deaf, tenant, "search")
        assert blocked.outcome is Outcome.BLOCK
        assert [entry["guardrail"] for entry in blocked.triggered] == ["tool_pinning"]

        source["sessions"] = live.sessions

        async def approved() -> bool:
            return not deaf.pins.awaiting_approval(tenant.workspace.id, "search")

        await within(3, approved)
    finally:
        await deaf.close()
        await engine.dispose()
