from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.keys import hash_key
from cerberus.agents.models import Agent
from cerberus.demo import provision as demo
from cerberus.guardrails import guardrail_types
from cerberus.policies.models import Policy
from cerberus.settings import Settings
from cerberus.tenancy.models import Workspace

UPSTREAM = "http://127.0.0.1:18001/mcp"


def with_data_dir(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(update={"DATA_DIR": path})


async def test_a_second_run_finds_everything_the_first_made(
    session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    local = with_data_dir(settings, tmp_path)

    first = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=False)
    second = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=False)

    assert (second.organisation_id, second.workspace_id, second.agent_id) == (
        first.organisation_id,
        first.workspace_id,
        first.agent_id,
    )
    assert second.agent_key == first.agent_key
    assert first.admin_password is not None
    assert second.admin_password is None
    policies = await session.scalar(
        select(func.count())
        .select_from(Policy)
        .where(Policy.organisation_id == first.organisation_id)
    )
    assert policies == len(first.policies) == len(second.policies)


async def test_the_starter_policies_use_the_registered_guardrail_types(
    session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    registered = {cls.type: cls for cls in guardrail_types()}

    tenant = await demo.ensure_tenant(
        session, with_data_dir(settings, tmp_path), UPSTREAM, reset_password=False
    )

    wanted = {p.guardrail_type for p in demo.STARTER_POLICIES if p.guardrail_type in registered}
    assert {kind for kind, _action in tenant.policies} == wanted
    for kind, action in tenant.policies:
        assert action in registered[kind].actions
    assert "rbac" in wanted


async def test_the_key_is_kept_private_and_rotated_when_it_is_lost(
    session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    local = with_data_dir(settings, tmp_path)
    first = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=False)
    key_file = tmp_path / demo.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600

    key_file.unlink()
    second = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=False)

    assert second.agent_id == first.agent_id
    assert second.agent_key != first.agent_key
    agent = await session.get(Agent, second.agent_id)
    assert agent is not None
    assert agent.key_hash == hash_key(second.agent_key)
    assert first.agent_key not in key_file.read_text()


async def test_the_workspace_follows_the_upstream_of_this_run(
    session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    local = with_data_dir(settings, tmp_path)
    first = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=False)

    moved = "http://127.0.0.1:18555/mcp"
    second = await demo.ensure_tenant(session, local, moved, reset_password=False)

    workspace = await session.get(Workspace, second.workspace_id)
    assert second.workspace_id == first.workspace_id
    assert workspace is not None
    assert workspace.mcp_server_url == moved


async def test_the_printed_admin_password_logs_in_and_a_reset_replaces_it(
    session: AsyncSession, settings: Settings, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    local = with_data_dir(settings, tmp_path)
    first = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=False)
    reset = await demo.ensure_tenant(session, local, UPSTREAM, reset_password=True)
    login = "/control-plane/api/v1/auth/login"

    email = first.admin_email
    old = await client.post(login, json={"email": email, "password": first.admin_password})
    new = await client.post(login, json={"email": email, "password": reset.admin_password})

    assert reset.admin_password not in (None, first.admin_password)
    assert old.status_code == 401
    assert new.status_code == 200
    me = await client.get(
        "/control-plane/api/v1/auth/me",
        headers={"Authorization": f"Bearer {new.json()['access_token']}"},
    )
    assert me.json()["role"] == "super_admin"
