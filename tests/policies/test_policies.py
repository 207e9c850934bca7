"""Policies: config checked by the guardrail's own model, scopes checked, every change published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.app import CerberusApp
from cerberus.changes.models import ChangeRecord
from cerberus.guardrails import Direction
from cerberus.policies.pipelines import CompiledPipeline
from cerberus.tenancy.models import Organisation, User
from tests.conftest import Invalidations
from tests.factories import create_agent, create_tenant, create_workspace

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]


def _policy(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "per-minute limit",
        "guardrail_type": "rate_limit_per_minute",
        "action": "throttle",
        "config": {"limit": 60},
    }
    body.update(fields)
    return body


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], org: Organisation, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/organisations/{org.id}/policies", headers=headers, json=_policy(**fields)
    )


async def test_organisation_wide_policy_is_created_and_published(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)

    response = await _create(client, headers_for(admin), organisation, priority=5)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["scope"] == "organisation"
    assert (body["workspace_id"], body["agent_id"]) == (None, None)
    assert body["config"] == {"limit": 60}
    assert body["priority"] == 5
    event = await invalidations.wait_for("policy", body["id"])
    assert event.organisation_id == organisation.id


async def test_config_errors_name_the_field(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    headers = headers_for(admin)

    bad_limit = await _create(client, headers, organisation, config={"limit": 0})
    unknown_key = await _create(client, headers, organisation, config={"limit": 5, "burst": 2})
    bad_action = await _create(client, headers, organisation, action="redact")
    unknown_type = await _create(client, headers, organisation, guardrail_type="no_such_type")
    missing = await _create(client, headers, organisation, config={})

    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["field"] == "config.limit"
    assert "greater than or equal to 1" in bad_limit.json()["detail"]
    assert unknown_key.json()["errors"][0]["field"] == "config.burst"
    assert bad_action.status_code == 422
    assert bad_action.json()["errors"][0]["field"] == "action"
    assert "throttle" in bad_action.json()["detail"]
    assert unknown_type.json()["errors"][0]["field"] == "guardrail_type"
    assert missing.json()["errors"][0]["field"] == "config.limit"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {
                "guardrail_type": "content_large_documents",
                "action": "block",
                "config": {"max_chars": 10**30},
            },
            "config.max_chars",
        ),
        ({"config": {"limit": 2**64}}, "config.limit"),
        ({"config": {"limit": 60, "per_tool": {"search": 2**64}}}, "config.per_tool.search"),
    ],
)
async def test_an_integer_the_gateway_cannot_encode_is_refused_with_a_reason(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    fields: dict[str, Any],
    field: str,
) -> None:
    # Was 201, and then every message of the organisation was blocked: the gateway's JSON
    # encoder (orjson) takes integers up to 2**64 - 1, and the pipeline could not be built.
    organisation, admin, _ = await create_tenant(session)

    refused = await _create(client, headers_for(admin), organisation, **fields)
    listed = await client.get(
        f"{API}/organisations/{organisation.id}/policies", headers=headers_for(admin)
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == field
    assert refused.json()["detail"].startswith(f"{field}: ")
    assert "\n" not in refused.json()["detail"]
    assert listed.json()["total"] == 0


async def test_an_update_to_an_integer_the_gateway_cannot_encode_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    created = await _create(client, headers_for(admin), organisation)
    path = f"{API}/policies/{created.json()['id']}"

    refused = await client.patch(
        path,
        headers=headers_for(admin),
        json={"config": {"limit": 60, "per_tool": {"search": 10**20}}},
    )
    kept = await client.get(path, headers=headers_for(admin))

    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "config.per_tool.search"
    assert "\n" not in refused.json()["detail"]
    assert kept.json()["config"] == {"limit": 60}


async def test_the_largest_integer_the_gateway_encodes_is_accepted_and_compiled(
    app: CerberusApp, client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)
    await session.commit()

    created = await _create(
        client,
        headers_for(admin),
        organisation,
        guardrail_type="content_large_documents",
        action="block",
        config={"max_chars": 2**64 - 1},
    )
    pipeline = await app.state.pipelines.for_agent(
        organisation.id, workspace.id, agent.id, "closed"
    )

    assert created.status_code == 201, created.text
    assert isinstance(pipeline, CompiledPipeline)
    assert [g.type for g in pipeline.guardrails(Direction.RESPONSE)] == ["content_large_documents"]


async def test_agent_scope_must_be_an_agent_of_the_policy_workspace_and_organisation(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    other_org, _, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    sibling = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)
    foreign_agent, _ = await create_agent(session, await create_workspace(session, other_org))
    headers = headers_for(admin)

    scoped = await _create(client, headers, organisation, agent_id=agent.id)
    wrong_workspace = await _create(
        client, headers, organisation, workspace_id=sibling.id, agent_id=agent.id
    )
    foreign = await _create(client, headers, organisation, agent_id=foreign_agent.id)
    foreign_workspace = await _create(
        client, headers, organisation, workspace_id=foreign_agent.workspace_id
    )

    assert scoped.status_code == 201
    assert scoped.json()["scope"] == "agent"
    assert scoped.json()["workspace_id"] == workspace.id
    assert wrong_workspace.status_code == 422
    assert wrong_workspace.json()["errors"][0]["field"] == "agent_id"
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "agent_id"
    assert foreign_workspace.status_code == 422
    assert foreign_workspace.json()["errors"][0]["field"] == "workspace_id"


async def test_patch_is_partial_revalidates_and_records_who_widened_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    invalidations: Invalidations,
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    created = await _create(client, headers_for(admin), organisation, workspace_id=workspace.id)
    policy_id = created.json()["id"]
    path = f"{API}/policies/{policy_id}"

    widened = await client.patch(path, headers=headers_for(admin), json={"config": {"limit": 600}})
    invalid = await client.patch(path, headers=headers_for(admin), json={"config": {"limit": -1}})
    org_wide = await client.patch(path, headers=headers_for(admin), json={"workspace_id": None})

    assert widened.status_code == 200
    assert widened.json()["config"] == {"limit": 600}
    assert widened.json()["name"] == "per-minute limit"
    assert invalid.status_code == 422
    assert org_wide.json()["scope"] == "organisation"

    def workspaces() -> set[str | None]:
        return {e.workspace_id for e in invalidations if e.id == policy_id}

    # Waiting for the first event only, the second (the org-wide one) could still be on its
    # way through Redis (it failed so in one full run of four on PostgreSQL + Redis).
    await invalidations.wait_until(lambda: {workspace.id, None} <= workspaces())
    assert workspaces() == {workspace.id, None}
    records = (
        await session.scalars(
            select(ChangeRecord)
            .where(ChangeRecord.object_id == policy_id, ChangeRecord.action == "update")
            .order_by(ChangeRecord.created_at)
        )
    ).all()
    assert records[0].actor_email == admin.email
    assert records[0].before == {"config": {"limit": 60}}
    assert records[0].after == {"config": {"limit": 600}}


async def test_delete_is_soft_and_filters_find_policies_by_scope(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, viewer = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    headers = headers_for(admin)
    await _create(client, headers, organisation)
    ws_policy = (await _create(client, headers, organisation, workspace_id=workspace.id)).json()
    doomed = (await _create(client, headers, organisation, name="doomed")).json()

    deleted = await client.delete(f"{API}/policies/{doomed['id']}", headers=headers)
    gone = await client.get(f"{API}/policies/{doomed['id']}", headers=headers)
    by_scope = await client.get(
        f"{API}/organisations/{organisation.id}/policies",
        headers=headers_for(viewer),
        params={"scope": "workspace"},
    )
    everything = await client.get(
        f"{API}/organisations/{organisation.id}/policies", headers=headers_for(viewer)
    )

    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert [p["id"] for p in by_scope.json()["items"]] == [ws_policy["id"]]
    assert everything.json()["total"] == 2


async def test_effective_policy_prefers_agent_over_workspace_over_organisation(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, admin, _ = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)
    headers = headers_for(admin)
    await _create(client, headers, organisation, config={"limit": 100})
    await _create(client, headers, organisation, workspace_id=workspace.id, config={"limit": 50})
    await _create(client, headers, organisation, agent_id=agent.id, config={"limit": 10})
    await _create(
        client,
        headers,
        organisation,
        guardrail_type="rbac",
        action="block",
        config={"denied_tools": ["drop_*"]},
    )
    path = f"{API}/workspaces/{workspace.id}/effective-policy"

    for_agent = await client.get(path, headers=headers, params={"agent_id": agent.id})
    for_others = await client.get(path, headers=headers)
    stranger = await client.get(path, headers=headers, params={"agent_id": "no-such-agent"})

    def limits(response: httpx.Response) -> dict[str, Any]:
        return {
            entry["guardrail_type"]: (entry["scope"], entry["policy"]["config"])
            for entry in response.json()["policies"]
        }

    assert limits(for_agent) == {
        "rate_limit_per_minute": ("agent", {"limit": 10}),
        "rbac": ("organisation", {"denied_tools": ["drop_*"]}),
    }
    assert limits(for_others)["rate_limit_per_minute"] == ("workspace", {"limit": 50})
    assert stranger.status_code == 404


async def test_a_config_json_cannot_hold_is_422(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    # A lone surrogate passed the guardrail's schema and was stored; orjson, which writes
    # policies into the shared cache, cannot encode it.
    organisation, admin, _ = await create_tenant(session)
    body = (
        b'{"name": "deny", "guardrail_type": "rbac", "action": "block",'
        b' "config": {"denied_tools": ["drop_\\ud800"]}}'
    )
    headers = {**headers_for(admin), "content-type": "application/json"}
    refused = await client.post(
        f"{API}/organisations/{organisation.id}/policies", headers=headers, content=body
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "config: text must not hold a lone surrogate (\\ud800-\\udfff)"
    )
