"""Agents and their keys: shown once, stored as SHA-256, revoked, rotated with a grace period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.keys import hash_key
from cerberus.agents.models import Agent
from cerberus.changes.models import ChangeRecord
from cerberus.settings import Settings
from cerberus.tenancy.models import User
from tests.conftest import Invalidations
from tests.factories import create_agent, create_tenant, create_workspace

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]
SECRET_FIELDS = {"key", "key_hash", "previous_key_hash"}


async def test_create_answers_the_plain_key_once_and_stores_only_its_hash(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)

    created = await client.post(
        f"{API}/workspaces/{workspace.id}/agents",
        headers=headers_for(admin),
        json={"name": "claude-desktop", "description": "Ana's laptop"},
    )
    listed = await client.get(f"{API}/workspaces/{workspace.id}/agents", headers=headers_for(admin))

    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith(settings.API_KEY_PREFIX)
    assert len(key) >= len(settings.API_KEY_PREFIX) + 43  # 32 random bytes, URL-safe base64
    assert body["key_prefix"] == key[: len(settings.API_KEY_PREFIX) + 4] + "…"
    assert body["status"] == "active"
    stored = await session.get(Agent, body["id"])
    assert stored is not None
    assert stored.key_hash == hash_key(key)
    assert listed.json()["total"] == 1
    assert not SECRET_FIELDS & set(listed.json()["items"][0])
    assert key not in listed.text
    await invalidations.wait_for("agent", body["id"])
    record = await session.scalar(select(ChangeRecord).where(ChangeRecord.object_id == body["id"]))
    assert record is not None
    assert key not in str(record.after)
    assert stored.key_hash not in str(record.after)


async def test_expiry_in_the_past_is_422_and_expired_agents_show_as_expired(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    past = datetime.now(UTC) - timedelta(days=1)
    old, _ = await create_agent(session, workspace, expires_at=past)

    refused = await client.post(
        f"{API}/workspaces/{workspace.id}/agents",
        headers=headers_for(admin),
        json={"name": "late", "expires_at": past.isoformat()},
    )
    expired = await client.get(
        f"{API}/workspaces/{workspace.id}/agents",
        headers=headers_for(admin),
        params={"status": "expired"},
    )

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "expires_at"
    assert [item["id"] for item in expired.json()["items"]] == [old.id]


async def test_an_expiry_utc_cannot_hold_is_422_on_create_update_and_rotate(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)
    # A valid ISO 8601 time whose UTC equivalent is past year 9999: was a 500 (OverflowError).
    beyond = {"expires_at": "9999-12-31T23:59:59-01:00"}

    answers = [
        await client.post(
            f"{API}/workspaces/{workspace.id}/agents",
            headers=headers_for(admin),
            json={"name": "forever", **beyond},
        ),
        await client.patch(f"{API}/agents/{agent.id}", headers=headers_for(admin), json=beyond),
        await client.post(
            f"{API}/agents/{agent.id}/rotate", headers=headers_for(admin), json=beyond
        ),
    ]

    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"].startswith("expires_at: ")
        assert "\n" not in answer.json()["detail"]
        assert answer.json()["errors"][0]["field"] == "expires_at"


async def test_the_last_expiry_utc_can_hold_is_stored_in_utc(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)

    created = await client.post(
        f"{API}/workspaces/{workspace.id}/agents",
        headers=headers_for(admin),
        json={"name": "long-lived", "expires_at": "9999-12-31T23:59:59+01:00"},
    )
    shown = await client.get(f"{API}/agents/{created.json()['id']}", headers=headers_for(admin))

    assert created.status_code == 201, created.text
    assert shown.json()["expires_at"] == "9999-12-31T22:59:59Z"
    assert shown.json()["status"] == "active"


async def test_delete_revokes_and_keeps_the_agent_for_history(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)
    agent, _ = await create_agent(session, await create_workspace(session, organisation))

    deleted = await client.delete(f"{API}/agents/{agent.id}", headers=headers_for(admin))
    again = await client.delete(f"{API}/agents/{agent.id}", headers=headers_for(admin))
    shown = await client.get(f"{API}/agents/{agent.id}", headers=headers_for(admin))
    rotate = await client.post(f"{API}/agents/{agent.id}/rotate", headers=headers_for(admin))

    assert deleted.status_code == again.status_code == 204
    assert shown.json()["status"] == "revoked"
    assert shown.json()["revoked_at"] is not None
    assert rotate.status_code == 409
    await invalidations.wait_for("agent", agent.id)
    actions = (
        await session.scalars(select(ChangeRecord.action).where(ChangeRecord.object_id == agent.id))
    ).all()
    assert list(actions) == ["revoke"]


async def test_rotation_keeps_the_agent_and_a_grace_period_keeps_the_old_key(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)
    agent, old_key = await create_agent(session, await create_workspace(session, organisation))

    rotated = await client.post(
        f"{API}/agents/{agent.id}/rotate",
        headers=headers_for(admin),
        json={"grace_period_seconds": 3600},
    )

    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["id"] == agent.id
    assert body["key"] != old_key
    await session.refresh(agent)
    assert agent.key_hash == hash_key(body["key"])
    assert agent.previous_key_hash == hash_key(old_key)
    assert agent.previous_key_expires_at is not None
    assert agent.previous_key_expires_at > datetime.now(UTC) + timedelta(minutes=59)
    await invalidations.wait_for("agent", agent.id)
    record = await session.scalar(
        select(ChangeRecord).where(
            ChangeRecord.object_id == agent.id, ChangeRecord.action == "rotate"
        )
    )
    assert record is not None
    assert record.after is not None
    assert record.after["grace_period_seconds"] == 3600
    assert not {"key_hash", "previous_key_hash"} & set(record.after)


async def test_rotation_without_grace_ends_the_old_key_at_once(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    agent, old_key = await create_agent(session, await create_workspace(session, organisation))

    rotated = await client.post(f"{API}/agents/{agent.id}/rotate", headers=headers_for(admin))

    assert rotated.status_code == 200
    await session.refresh(agent)
    assert agent.previous_key_hash is None
    assert agent.key_hash != hash_key(old_key)


async def test_patch_renames_and_clears_the_expiry(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    future = datetime.now(UTC) + timedelta(days=30)
    agent, _ = await create_agent(session, workspace, expires_at=future, description="keep")

    renamed = await client.patch(
        f"{API}/agents/{agent.id}", headers=headers_for(admin), json={"name": "renamed"}
    )
    cleared = await client.patch(
        f"{API}/agents/{agent.id}", headers=headers_for(admin), json={"expires_at": None}
    )

    assert renamed.json()["name"] == "renamed"
    assert renamed.json()["expires_at"] is not None
    assert renamed.json()["description"] == "keep"
    assert cleared.json()["expires_at"] is None
