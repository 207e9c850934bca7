"""An app whose sessions commit for real, for tests where background tasks write concurrently.

The suite's `app` fixture shares one rolled-back connection between every session, which a
background writer (the pin store) cannot use at the same time as the test. Here each session
has its own pooled connection; what a test creates is deleted afterwards, by organisation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.agents.models import Agent
from cerberus.app import CerberusApp, create_app
from cerberus.changes.models import ChangeRecord
from cerberus.policies.models import Policy, ToolPin
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, User, Workspace
from tests.conftest import flush_test_cache
from tests.factories import create_agent, create_tenant, create_workspace


@dataclass
class Tenant:
    organisation: Organisation
    admin: User
    viewer: User
    workspace: Workspace
    agent: Agent


@dataclass
class Live:
    app: CerberusApp
    http: httpx.AsyncClient
    organisations: list[str] = field(default_factory=list)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        sessions: async_sessionmaker[AsyncSession] = self.app.state.sessionmaker
        return sessions

    async def tenant(self, **workspace_fields: Any) -> Tenant:
        async with self.sessions() as session:
            organisation, admin, viewer = await create_tenant(session)
            workspace = await create_workspace(session, organisation, **workspace_fields)
            agent, _key = await create_agent(session, workspace)
            await session.commit()
        self.organisations.append(organisation.id)
        return Tenant(organisation, admin, viewer, workspace, agent)

    async def add_policy(self, tenant: Tenant, guardrail_type: str, **fields: Any) -> Policy:
        async with self.sessions() as session:
            policy = Policy(
                organisation_id=tenant.organisation.id,
                workspace_id=tenant.workspace.id,
                name=guardrail_type,
                guardrail_type=guardrail_type,
                action=fields.pop("action", "block"),
                config=fields.pop("config", {}),
                **fields,
            )
            session.add(policy)
            await session.commit()
        return policy

    async def pins(self, workspace_id: str) -> dict[str, ToolPin]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(ToolPin).where(ToolPin.workspace_id == workspace_id)
            )
            return {row.tool_name: row for row in rows}

    async def cleanup(self) -> None:
        async with self.sessions() as session:
            workspaces = select(Workspace.id).where(
                Workspace.organisation_id.in_(self.organisations)
            )
            await session.execute(delete(ToolPin).where(ToolPin.workspace_id.in_(workspaces)))
            for model in (ChangeRecord, Policy, Agent, User):
                await session.execute(
                    delete(model).where(model.organisation_id.in_(self.organisations))  # type: ignore[attr-defined]
                )
            await session.execute(
                delete(Workspace).where(Workspace.organisation_id.in_(self.organisations))
            )
            await session.execute(
                delete(Organisation).where(Organisation.id.in_(self.organisations))
            )
            await session.commit()


@pytest.fixture(name="live")
async def live_fixture(settings: Settings) -> AsyncIterator[Live]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await flush_test_cache(settings)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            state = Live(application, http)
            try:
                yield state
            finally:
                await application.state.pipelines.pins.flush()
                await state.cleanup()
