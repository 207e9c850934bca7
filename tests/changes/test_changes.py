"""The change history answers "who changed what, when, from where" for an organisation's admins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.tenancy.models import User
from tests.factories import create_tenant, create_user, create_workspace

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]


async def test_every_kind_of_write_is_listed_newest_first_without_secrets(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    headers = headers_for(admin)
    created = await client.post(
        f"{API}/workspaces/{workspace.id}/agents", headers=headers, json={"name": "bot"}
    )
    agent_id = created.json()["id"]
    await client.post(f"{API}/agents/{agent_id}/rotate", headers=headers)
    await client.delete(f"{API}/agents/{agent_id}", headers=headers)

    response = await client.get(
        f"{API}/organisations/{organisation.id}/changes",
        headers=headers,
        params={"object_type": "agent"},
    )

    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["action"] for item in items] == ["revoke", "rotate", "create"]
    for item in items:
        assert item["actor_id"] == admin.id
        assert item["actor_email"] == admin.email
        assert item["object_id"] == agent_id
        assert item["client_address"] == "127.0.0.1"
        assert "key_hash" not in str(item)
        assert created.json()["key"] not in str(item)


async def test_filters_by_actor_and_time(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    other_admin = await create_user(session, organisation, role="org_admin")
    path = f"{API}/organisations/{organisation.id}/workspaces"
    for author, slug in ((admin, "first"), (other_admin, "second")):
        await client.post(
            path,
            headers=headers_for(author),
            json={"name": slug, "slug": slug, "mcp_server_url": "http://127.0.0.1:9/mcp"},
        )
    changes = f"{API}/organisations/{organisation.id}/changes"
    headers = headers_for(admin)

    by_id = await client.get(changes, headers=headers, params={"actor": other_admin.id})
    by_email = await client.get(changes, headers=headers, params={"actor": admin.email})
    future = await client.get(
        changes,
        headers=headers,
        params={"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
    )
    past = await client.get(
        changes,
        headers=headers,
        params={"until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
    )
    naive = await client.get(changes, headers=headers, params={"since": "2026-01-01T00:00:00"})

    assert [i["after"]["slug"] for i in by_id.json()["items"]] == ["second"]
    assert [i["after"]["slug"] for i in by_email.json()["items"]] == ["first"]
    assert future.json()["total"] == 0
    assert past.json()["total"] == 2
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "since"


async def test_times_utc_cannot_hold_answer_422_and_the_widest_window_answers(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    await create_workspace(session, organisation)
    await client.patch(
        f"{API}/organisations/{organisation.id}", headers=headers_for(admin), json={"name": "x"}
    )
    changes = f"{API}/organisations/{organisation.id}/changes"
    headers = headers_for(admin)

    too_late = await client.get(
        changes, headers=headers, params={"since": "9999-12-31T23:59:59-01:00"}
    )
    too_early = await client.get(
        changes, headers=headers, params={"until": "0001-01-01T00:00:00+01:00"}
    )
    widest = await client.get(
        changes,
        headers=headers,
        params={"since": "0001-01-01T00:00:00-01:00", "until": "9999-12-31T23:59:59+01:00"},
    )

    for refused, field in ((too_late, "since"), (too_early, "until")):
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith(f"{field}: ")
        assert "\n" not in refused.json()["detail"]
        assert refused.json()["errors"][0]["field"] == field
    assert widest.status_code == 200
    assert widest.json()["total"] == 1


async def test_viewers_may_not_read_the_history(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, _, viewer = await create_tenant(session)

    response = await client.get(
        f"{API}/organisations/{organisation.id}/changes", headers=headers_for(viewer)
    )

    assert response.status_code == 403
