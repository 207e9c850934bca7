"""The tenant a conformance run needs in Cerberus, made through the control-plane services as an
admin would: an organisation, a workspace pointing at the fixture upstream, and an agent whose
key the forwarder presents. No policies: the run measures the transport, not the guardrails."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from cerberus.agents import schemas as agent_schemas
from cerberus.agents import service as agents
from cerberus.auth import bootstrap
from cerberus.cache import create_cache
from cerberus.changes.service import Actor
from cerberus.db import create_engine, create_sessionmaker
from cerberus.invalidation import publish_pending
from cerberus.settings import Settings
from cerberus.tenancy import schemas as tenancy_schemas
from cerberus.tenancy import service as tenancy


@dataclass(frozen=True)
class Tenant:
    admin_id: str
    organisation_id: str
    workspace_id: str
    agent_id: str
    key: str


async def provision(settings: Settings, upstream_url: str) -> Tenant:
    """Create the tenant in the (already migrated) database `settings` names, and commit."""
    suffix = uuid.uuid4().hex[:8]
    engine = create_engine(settings)
    cache = create_cache(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            # A super_admin of its own; its password is random and never shown.
            admin = await bootstrap.create_superuser(
                session, f"conformance-{suffix}@example.com", secrets.token_urlsafe(24)
            )
            actor = Actor(user=admin, client_address=None)
            organisation = await tenancy.create_organisation(
                session,
                actor,
                tenancy_schemas.OrganisationCreate(
                    name="Conformance", slug=f"conformance-{suffix}"
                ),
            )
            workspace = await tenancy.create_workspace(
                session,
                actor,
                organisation.id,
                tenancy_schemas.WorkspaceCreate(
                    name="Conformance fixture",
                    slug=f"fixture-{suffix}",
                    mcp_server_url=upstream_url,
                ),
                settings.UPSTREAM_ALLOWED_HOSTS,
            )
            agent, key = await agents.create_agent(
                session,
                actor,
                workspace.id,
                agent_schemas.AgentCreate(name="conformance-suite"),
                settings.API_KEY_PREFIX,
            )
            await session.commit()
            await publish_pending(session, cache)
            return Tenant(admin.id, organisation.id, workspace.id, agent.id, key.plain)
    finally:
        await cache.close()
        await engine.dispose()
