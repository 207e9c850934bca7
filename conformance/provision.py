"""The tenant a conformance run needs in Cerberus, made through the control-plane services as an
admin would: an organisation, a workspace pointing at the fixture upstream, and an agent whose
key the forwarder presents. By default no policies, so the run measures the transport; with
`starter_policies`, the `cerberus demo` starter set without its rate limits (the suite makes
hundreds of calls a minute), to see whether the guardrails a new user gets break the protocol."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents import schemas as agent_schemas
from cerberus.agents import service as agents
from cerberus.auth import bootstrap
from cerberus.cache import create_cache
from cerberus.changes.service import Actor
from cerberus.db import create_engine, create_sessionmaker
from cerberus.demo.provision import STARTER_POLICIES
from cerberus.guardrails import get_guardrail_type
from cerberus.invalidation import publish_pending
from cerberus.policies import schemas as policy_schemas
from cerberus.policies import service as policies
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


async def provision(
    settings: Settings, upstream_url: str, *, starter_policies: bool = False
) -> Tenant:
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
            if starter_policies:
                await add_starter_policies(session, actor, organisation.id)
            await session.commit()
            await publish_pending(session, cache)
            return Tenant(admin.id, organisation.id, workspace.id, agent.id, key.plain)
    finally:
        await cache.close()
        await engine.dispose()


async def add_starter_policies(session: AsyncSession, actor: Actor, organisation_id: str) -> None:
    for starter in STARTER_POLICIES:
        guardrail = get_guardrail_type(starter.guardrail_type)
        if guardrail is None or starter.guardrail_type.startswith("rate_limit"):
            continue
        action = next(action for action in starter.actions if action in guardrail.actions)
        data = policy_schemas.PolicyCreate(
            name=starter.name,
            guardrail_type=starter.guardrail_type,
            action=action,
            config=starter.config,
        )
        await policies.create_policy(session, actor, organisation_id, data)
