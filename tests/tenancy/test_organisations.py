"""Organisations: created by super_admins (optionally with their first admin), scoped reads."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.changes.models import ChangeRecord
from cerberus.tenancy.models import User
from tests.factories import create_organisation, create_tenant, create_user, unique

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]


async def test_super_admin_creates_an_organisation_with_its_first_admin(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    root = await create_user(session, None, role="super_admin")
    slug = unique("acme")
    email = f"{slug}@example.com"

    response = await client.post(
        f"{API}/organisations",
        headers=headers_for(root),
        json={"name": "Acme", "slug": slug, "admin_email": email, "admin_password": "s3cret-pw!"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["slug"], body["is_active"]) == ("Acme", slug, True)
    login = await client.post(f"{API}/auth/login", json={"email": email, "password": "s3cret-pw!"})
    assert login.status_code == 200
    me = await client.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["role"] == "org_admin"
    assert me.json()["organisation_id"] == body["id"]
    records = (
        await session.scalars(
            select(ChangeRecord).where(ChangeRecord.organisation_id == body["id"])
        )
    ).all()
    assert sorted(r.object_type for r in records) == ["organisation", "user"]
    assert all(r.actor_id == root.id and r.action == "create" for r in records)
    user_record = next(r for r in records if r.object_type == "user")
    assert user_record.after is not None
    assert "password_hash" not in user_record.after


async def test_only_a_super_admin_creates_organisations(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    _, admin, _ = await create_tenant(session)

    response = await client.post(
        f"{API}/organisations", headers=headers_for(admin), json={"name": "X", "slug": "x-org"}
    )

    assert response.status_code == 403


async def test_duplicate_slug_is_409_and_bad_slug_is_422_naming_the_field(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    root = await create_user(session, None, role="super_admin")
    existing = await create_organisation(session)

    duplicate = await client.post(
        f"{API}/organisations",
        headers=headers_for(root),
        json={"name": "Again", "slug": existing.slug},
    )
    bad = await client.post(
        f"{API}/organisations", headers=headers_for(root), json={"name": "X", "slug": "Not A Slug"}
    )
    half_admin = await client.post(
        f"{API}/organisations",
        headers=headers_for(root),
        json={"name": "X", "slug": unique("x"), "admin_email": "a@example.com"},
    )

    assert duplicate.status_code == 409
    assert existing.slug in duplicate.json()["detail"]
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "slug"
    assert half_admin.status_code == 422
    assert "admin_password" in half_admin.json()["detail"]


async def test_list_is_paginated_and_org_users_see_only_their_own(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    root = await create_user(session, None, role="super_admin")
    organisation, admin, _ = await create_tenant(session)
    for _ in range(3):
        await create_organisation(session)

    everything = await client.get(
        f"{API}/organisations", headers=headers_for(root), params={"per_page": 2, "page": 2}
    )
    own = await client.get(f"{API}/organisations", headers=headers_for(admin))

    assert everything.status_code == 200
    page = everything.json()
    assert page["total"] >= 4
    assert (page["page"], page["per_page"], len(page["items"])) == (2, 2, 2)
    assert own.json()["total"] == 1
    assert own.json()["items"][0]["id"] == organisation.id


async def test_patch_is_partial_and_slug_changes_need_a_super_admin(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    old_slug = organisation.slug

    renamed = await client.patch(
        f"{API}/organisations/{organisation.id}",
        headers=headers_for(admin),
        json={"name": "Renamed"},
    )
    reslugged = await client.patch(
        f"{API}/organisations/{organisation.id}",
        headers=headers_for(admin),
        json={"slug": "new-slug"},
    )

    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["slug"]) == ("Renamed", old_slug)
    assert reslugged.status_code == 403
    record = await session.scalar(
        select(ChangeRecord).where(
            ChangeRecord.object_id == organisation.id, ChangeRecord.action == "update"
        )
    )
    assert record is not None
    assert record.after == {"name": "Renamed"}
    assert record.before is not None
    assert list(record.before) == ["name"]


async def test_delete_is_soft_frees_the_slug_and_locks_out_its_people(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    root = await create_user(session, None, role="super_admin")
    organisation, admin, _ = await create_tenant(session)
    slug = organisation.slug

    deleted = await client.delete(
        f"{API}/organisations/{organisation.id}", headers=headers_for(root)
    )
    again = await client.get(f"{API}/organisations/{organisation.id}", headers=headers_for(root))
    admin_me = await client.get(f"{API}/auth/me", headers=headers_for(admin))
    reused = await client.post(
        f"{API}/organisations", headers=headers_for(root), json={"name": "New", "slug": slug}
    )

    assert deleted.status_code == 204
    assert again.status_code == 404
    assert admin_me.status_code == 401
    assert reused.status_code == 201
    await session.refresh(organisation)
    assert organisation.deleted_at is not None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b'{"note": NaN}', "settings: numbers must be finite (no NaN or Infinity)"),
        (b'{"limits": [1, -Infinity]}', "settings: numbers must be finite (no NaN or Infinity)"),
        (b'{"note": "\\ud800"}', "settings: text must not hold a lone surrogate (\\ud800-\\udfff)"),
        (b'{"\\udfff": 1}', None),  # a key: pydantic's own reason
    ],
)
async def test_settings_json_cannot_hold_is_422(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    value: bytes,
    message: str | None,
) -> None:
    # Python's parser takes these; JSON has no text for them. PostgreSQL refused the row with
    # a 500, SQLite stored NaN and answered null, and a lone surrogate was a 500 on every
    # later read of the organisation.
    root = await create_user(session, None, role="super_admin")
    slug = unique("odd")
    body = b'{"name": "Odd", "slug": "%s", "settings": %s}' % (slug.encode(), value)
    headers = {**headers_for(root), "content-type": "application/json"}

    created = await client.post(f"{API}/organisations", headers=headers, content=body)
    organisation = await create_organisation(session)
    workspace = b'{"name": "W", "slug": "w", "mcp_server_url": "http://127.0.0.1:9/mcp", '
    in_workspace = await client.post(
        f"{API}/organisations/{organisation.id}/workspaces",
        headers=headers,
        content=workspace + b'"settings": %s}' % value,
    )

    for answer in (created, in_workspace):
        assert answer.status_code == 422
        assert answer.json()["detail"] == message or (
            message is None and answer.json()["detail"].startswith("settings")
        )
