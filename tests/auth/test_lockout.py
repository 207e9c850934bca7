"""Repeated failed logins for one account are refused for a while, on every instance."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.app import CerberusApp, create_app
from tests.conftest import Backend, settings_for
from tests.factories import DEFAULT_PASSWORD, create_organisation, create_user

LOGIN = "/control-plane/api/v1/auth/login"
MAX_FAILURES = 3


@pytest.fixture
def settings(backend: Backend):  # type: ignore[no-untyped-def]
    return settings_for(backend, LOGIN_MAX_FAILURES=MAX_FAILURES, LOGIN_LOCKOUT_SECONDS=120)


async def test_account_is_locked_after_max_failures_even_for_the_right_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session))
    wrong = {"email": user.email, "password": "wrong-password"}

    statuses = [(await client.post(LOGIN, json=wrong)).status_code for _ in range(MAX_FAILURES)]
    locked = await client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})

    assert statuses == [401] * (MAX_FAILURES - 1) + [429]
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 120
    assert "too many failed logins" in locked.json()["detail"]


async def test_lockout_is_per_account(client: httpx.AsyncClient, session: AsyncSession) -> None:
    organisation = await create_organisation(session)
    victim = await create_user(session, organisation)
    other = await create_user(session, organisation)
    for _ in range(MAX_FAILURES):
        await client.post(LOGIN, json={"email": victim.email, "password": "wrong-password"})

    response = await client.post(LOGIN, json={"email": other.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 200


async def test_success_resets_the_failure_count(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, await create_organisation(session))
    wrong = {"email": user.email, "password": "wrong-password"}
    right = {"email": user.email, "password": DEFAULT_PASSWORD}

    for _ in range(MAX_FAILURES - 1):
        await client.post(LOGIN, json=wrong)
    assert (await client.post(LOGIN, json=right)).status_code == 200
    for _ in range(MAX_FAILURES - 1):
        assert (await client.post(LOGIN, json=wrong)).status_code == 401

    assert (await client.post(LOGIN, json=right)).status_code == 200


async def test_lockout_holds_on_another_instance_sharing_the_cache(
    app: CerberusApp, client: httpx.AsyncClient, backend: Backend
) -> None:
    if backend.redis_url is None:
        pytest.skip("the in-process cache belongs to one process by design")
    email = "nobody-shared@example.com"
    for _ in range(MAX_FAILURES):
        await client.post(LOGIN, json={"email": email, "password": "wrong-password"})

    other = create_app(app.state.settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as second:
            response = await second.post(LOGIN, json={"email": email, "password": "whatever1"})

    assert response.status_code == 429
    assert "Retry-After" in response.headers
