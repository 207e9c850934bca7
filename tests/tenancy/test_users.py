"""People in an organisation: created by its admins, each able to change their own password."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.changes.models import ChangeRecord
from cerberus.tenancy.models import User
from tests.factories import DEFAULT_PASSWORD, create_tenant, create_user

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]


async def test_admin_creates_a_viewer_who_can_log_in(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)

    created = await client.post(
        f"{API}/organisations/{organisation.id}/users",
        headers=headers_for(admin),
        json={"email": "New.Person@Example.com", "password": "long-enough-1", "role": "org_viewer"},
    )
    login = await client.post(
        f"{API}/auth/login", json={"email": "new.person@example.com", "password": "long-enough-1"}
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "org_viewer"
    assert "password" not in body
    assert "password_hash" not in body
    assert login.status_code == 200


async def test_duplicate_email_is_409_and_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, viewer = await create_tenant(session)
    path = f"{API}/organisations/{organisation.id}/users"

    duplicate = await client.post(
        path,
        headers=headers_for(admin),
        json={"email": viewer.email.upper(), "password": "long-enough-1"},
    )
    short = await client.post(
        path, headers=headers_for(admin), json={"email": "a@example.com", "password": "short"}
    )
    super_admin = await client.post(
        path,
        headers=headers_for(admin),
        json={"email": "b@example.com", "password": "long-enough-1", "role": "super_admin"},
    )

    assert duplicate.status_code == 409
    assert short.status_code == 422
    assert short.json()["errors"][0]["field"] == "password"
    assert "at least 8 characters" in short.json()["detail"]
    assert super_admin.status_code == 422
    assert super_admin.json()["errors"][0]["field"] == "role"


async def test_a_viewer_changes_their_own_password_but_not_their_role(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    _, _, viewer = await create_tenant(session)
    path = f"{API}/users/{viewer.id}"

    password = await client.patch(
        path, headers=headers_for(viewer), json={"password": "brand-new-password"}
    )
    promote = await client.patch(path, headers=headers_for(viewer), json={"role": "org_admin"})
    old_login = await client.post(
        f"{API}/auth/login", json={"email": viewer.email, "password": DEFAULT_PASSWORD}
    )
    new_login = await client.post(
        f"{API}/auth/login", json={"email": viewer.email, "password": "brand-new-password"}
    )

    assert password.status_code == 200
    assert promote.status_code == 403
    assert old_login.status_code == 401
    assert new_login.status_code == 200
    record = await session.scalar(
        select(ChangeRecord).where(
            ChangeRecord.object_id == viewer.id, ChangeRecord.action == "update"
        )
    )
    assert record is not None
    assert record.after == {"password_changed": True}
    assert "password_hash" not in (record.before or {})


async def test_admin_deletes_a_user_softly_but_not_themselves(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    _, admin, viewer = await create_tenant(session)

    itself = await client.delete(f"{API}/users/{admin.id}", headers=headers_for(admin))
    other = await client.delete(f"{API}/users/{viewer.id}", headers=headers_for(admin))
    after = await client.get(f"{API}/users/{viewer.id}", headers=headers_for(admin))
    login = await client.post(
        f"{API}/auth/login", json={"email": viewer.email, "password": DEFAULT_PASSWORD}
    )

    assert itself.status_code == 409
    assert other.status_code == 204
    assert after.status_code == 404
    assert login.status_code == 401


async def test_org_admins_cannot_see_super_admins(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    _, admin, _ = await create_tenant(session)
    root = await create_user(session, None, role="super_admin")

    response = await client.get(f"{API}/users/{root.id}", headers=headers_for(admin))

    assert response.status_code == 404


async def test_list_filters_by_role(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, viewer = await create_tenant(session)

    response = await client.get(
        f"{API}/organisations/{organisation.id}/users",
        headers=headers_for(admin),
        params={"role": "org_viewer"},
    )

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [viewer.id]
