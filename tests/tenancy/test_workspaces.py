"""Workspaces: slugs unique per organisation, safe upstream URLs, soft delete revoking agents."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.settings import Settings
from cerberus.tenancy.models import User
from tests.conftest import Backend, Invalidations, settings_for
from tests.factories import create_agent, create_tenant, create_workspace, unique

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]


def _workspace(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "Tools",
        "slug": unique("ws"),
        "mcp_server_url": "http://127.0.0.1:9100/mcp",
    }
    body.update(fields)
    return body


async def test_admin_creates_a_workspace_with_closed_fail_mode_by_default(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)

    response = await client.post(
        f"{API}/organisations/{organisation.id}/workspaces",
        headers=headers_for(admin),
        json=_workspace(environment_type="production"),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["organisation_id"] == organisation.id
    assert body["environment_type"] == "production"
    assert body["settings"]["fail_mode"] == "closed"
    event = await invalidations.wait_for("workspace", body["id"])
    assert event.organisation_id == organisation.id


async def test_slug_is_unique_per_organisation_only(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    first, first_admin, _ = await create_tenant(session)
    second, second_admin, _ = await create_tenant(session)
    existing = await create_workspace(session, first)

    same_org = await client.post(
        f"{API}/organisations/{first.id}/workspaces",
        headers=headers_for(first_admin),
        json=_workspace(slug=existing.slug),
    )
    other_org = await client.post(
        f"{API}/organisations/{second.id}/workspaces",
        headers=headers_for(second_admin),
        json=_workspace(slug=existing.slug),
    )

    assert same_org.status_code == 409
    assert other_org.status_code == 201


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/mcp", "must use http or https"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
    ],
)
async def test_unsafe_upstream_url_is_422_saying_why(
    url: str, reason: str, client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)

    response = await client.post(
        f"{API}/organisations/{organisation.id}/workspaces",
        headers=headers_for(admin),
        json=_workspace(mcp_server_url=url),
    )

    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "mcp_server_url"
    assert reason in error["message"]


class TestAllowList:
    @pytest.fixture
    def settings(self, backend: Backend) -> Settings:
        return settings_for(backend, UPSTREAM_ALLOWED_HOSTS="mcp.example.com,127.0.0.1:9100")

    async def test_hosts_outside_upstream_allowed_hosts_are_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
    ) -> None:
        organisation, admin, _ = await create_tenant(session)
        workspace = await create_workspace(session, organisation)
        path = f"{API}/organisations/{organisation.id}/workspaces"

        allowed = await client.post(path, headers=headers_for(admin), json=_workspace())
        refused = await client.post(
            path,
            headers=headers_for(admin),
            json=_workspace(mcp_server_url="https://elsewhere.example.net/mcp"),
        )
        patched = await client.patch(
            f"{API}/workspaces/{workspace.id}",
            headers=headers_for(admin),
            json={"mcp_server_url": "http://127.0.0.1:9999/mcp"},
        )

        assert allowed.status_code == 201
        assert refused.status_code == 422
        assert "not in UPSTREAM_ALLOWED_HOSTS" in refused.json()["detail"]
        assert patched.status_code == 422
        assert patched.json()["errors"][0]["field"] == "mcp_server_url"


async def test_patch_is_partial_and_validates_settings(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation, environment_type="staging")
    path = f"{API}/workspaces/{workspace.id}"

    opened = await client.patch(
        path, headers=headers_for(admin), json={"settings": {"fail_mode": "open"}}
    )
    invalid = await client.patch(
        path, headers=headers_for(admin), json={"settings": {"fail_mode": "sometimes"}}
    )
    nulled = await client.patch(path, headers=headers_for(admin), json={"name": None})

    assert opened.status_code == 200
    assert opened.json()["settings"]["fail_mode"] == "open"
    assert opened.json()["environment_type"] == "staging"
    assert opened.json()["name"] == workspace.name
    await invalidations.wait_for("workspace", workspace.id)
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "settings.fail_mode"
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["field"] == "name"


async def test_list_filters_by_environment(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, _, viewer = await create_tenant(session)
    production = await create_workspace(session, organisation, environment_type="production")
    await create_workspace(session, organisation, environment_type="development")

    response = await client.get(
        f"{API}/organisations/{organisation.id}/workspaces",
        headers=headers_for(viewer),
        params={"environment_type": "production"},
    )

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [production.id]
    assert response.json()["total"] == 1


async def test_delete_is_soft_and_revokes_the_workspace_agents(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)

    deleted = await client.delete(f"{API}/workspaces/{workspace.id}", headers=headers_for(admin))
    gone = await client.get(f"{API}/workspaces/{workspace.id}", headers=headers_for(admin))
    agent_now = await client.get(f"{API}/agents/{agent.id}", headers=headers_for(admin))

    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert agent_now.json()["status"] == "revoked"
    await invalidations.wait_for("agent", agent.id)
    await invalidations.wait_for("workspace", workspace.id)
