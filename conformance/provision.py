"""The tenant a conformance run needs in Cerberus: one organisation, one workspace pointing at
the fixture upstream, and one agent whose key the forwarder presents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cerberus.agents.keys import generate_key
from cerberus.agents.models import Agent
from cerberus.db import create_engine, create_sessionmaker
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, Workspace


@dataclass(frozen=True)
class Tenant:
    organisation_id: str
    workspace_id: str
    agent_id: str
    key: str


async def provision(settings: Settings, upstream_url: str) -> Tenant:
    """Create the rows in the (already migrated) database `settings` names; commit them."""
    suffix = uuid.uuid4().hex[:8]
    key = generate_key(settings.API_KEY_PREFIX)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            organisation = Organisation(name="Conformance", slug=f"conformance-{suffix}")
            session.add(organisation)
            await session.flush()
            workspace = Workspace(
                organisation_id=organisation.id,
                name="Conformance fixture",
                slug=f"fixture-{suffix}",
                mcp_server_url=upstream_url,
            )
            session.add(workspace)
            await session.flush()
            agent = Agent(
                organisation_id=organisation.id,
                workspace_id=workspace.id,
                name="conformance-suite",
                key_hash=key.hash,
                key_prefix=key.display_prefix,
            )
            session.add(agent)
            await session.commit()
            return Tenant(organisation.id, workspace.id, agent.id, key.plain)
    finally:
        await engine.dispose()
