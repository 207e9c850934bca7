"""Small async factories for test data; each flushes so ids exist, the caller's session commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.keys import generate_key
from cerberus.agents.models import Agent
from cerberus.auth.passwords import hash_password
from cerberus.tenancy.models import Organisation, User, Workspace

DEFAULT_PASSWORD = "correct-horse-battery"
_password_hashes: dict[str, str] = {}


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


async def create_organisation(session: AsyncSession, **fields: Any) -> Organisation:
    slug = fields.pop("slug", unique("org"))
    organisation = Organisation(name=fields.pop("name", slug.title()), slug=slug, **fields)
    session.add(organisation)
    await session.flush()
    return organisation


async def create_workspace(
    session: AsyncSession, organisation: Organisation, **fields: Any
) -> Workspace:
    slug = fields.pop("slug", unique("ws"))
    workspace = Workspace(
        organisation_id=organisation.id,
        name=fields.pop("name", slug.title()),
        slug=slug,
        mcp_server_url=fields.pop("mcp_server_url", "http://127.0.0.1:9/mcp"),
        **fields,
    )
    session.add(workspace)
    await session.flush()
    return workspace


async def create_agent(
    session: AsyncSession, workspace: Workspace, *, prefix: str = "sk-", **fields: Any
) -> tuple[Agent, str]:
    """An agent and its plain key (shown once, as the API does)."""
    key = generate_key(prefix)
    agent = Agent(
        organisation_id=workspace.organisation_id,
        workspace_id=workspace.id,
        name=fields.pop("name", unique("agent")),
        key_hash=key.hash,
        key_prefix=key.display_prefix,
        **fields,
    )
    session.add(agent)
    await session.flush()
    return agent, key.plain


async def create_user(
    session: AsyncSession,
    organisation: Organisation | None,
    *,
    role: str = "org_admin",
    password: str = DEFAULT_PASSWORD,
    **fields: Any,
) -> User:
    """A person; pass organisation=None with role="super_admin" for a platform admin."""
    if password not in _password_hashes:
        # bcrypt is slow on purpose; one hash per distinct password keeps the suite fast.
        _password_hashes[password] = hash_password(password)
    user = User(
        organisation_id=organisation.id if organisation is not None else None,
        email=fields.pop("email", f"{unique('user')}@example.com"),
        password_hash=_password_hashes[password],
        role=role,
        **fields,
    )
    session.add(user)
    await session.flush()
    return user


async def create_tenant(session: AsyncSession) -> tuple[Organisation, User, User]:
    """An organisation with one org_admin and one org_viewer."""
    organisation = await create_organisation(session)
    admin = await create_user(session, organisation, role="org_admin")
    viewer = await create_user(session, organisation, role="org_viewer")
    return organisation, admin, viewer
