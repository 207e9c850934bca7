"""The demo tenant, created idempotently through the control-plane services.

Running the demo again finds what the last run made: the same organisation, workspace and
agent (pointed at this run's upstream), the starter policies it lacks, the same agent key
(kept in DATA_DIR, readable only by its owner, so pasted client configuration keeps
working) and the same admin password, which is shown only when it is set.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents import schemas as agent_schemas
from cerberus.agents import service as agents
from cerberus.agents.keys import hash_key
from cerberus.agents.models import Agent
from cerberus.auth import bootstrap
from cerberus.changes.service import Actor
from cerberus.db import create_engine, create_sessionmaker
from cerberus.errors import CerberusError
from cerberus.guardrails import get_guardrail_type
from cerberus.invalidation import publish_pending
from cerberus.policies import schemas as policy_schemas
from cerberus.policies import service as policies
from cerberus.policies.models import Policy
from cerberus.settings import Settings
from cerberus.tenancy import schemas as tenancy_schemas
from cerberus.tenancy import service as tenancy
from cerberus.tenancy.models import Organisation, User, Workspace

ADMIN_EMAIL = "admin@demo.example.com"
ORGANISATION_SLUG = "demo"
WORKSPACE_SLUG = "demo"
AGENT_NAME = "demo-agent"
KEY_FILE = "demo-agent.json"


class DemoError(Exception):
    """A reason the demo cannot start, said in one line."""


@dataclass(frozen=True)
class StarterPolicy:
    name: str
    guardrail_type: str
    actions: tuple[str, ...]  # preferred first; the first the type supports is used
    config: dict[str, Any] = field(default_factory=dict)


# Each applies when its guardrail type is registered; the demo upstream's tools show them.
STARTER_POLICIES = (
    StarterPolicy(
        "Deny destructive tools",
        "rbac",
        ("block",),
        {"denied_tools": ["delete_*", "drop_*"], "default_action": "allow"},
    ),
    StarterPolicy("60 requests a minute", "rate_limit_per_minute", ("throttle",), {"limit": 60}),
    StarterPolicy("2000 requests an hour", "rate_limit_per_hour", ("throttle",), {"limit": 2000}),
    StarterPolicy("Redact email addresses", "pii_email", ("redact", "block")),
    StarterPolicy("Redact phone numbers", "pii_phone", ("redact", "block")),
    StarterPolicy("Redact card numbers", "pii_credit_card", ("redact", "block")),
    StarterPolicy("Redact social security numbers", "pii_ssn", ("redact", "block")),
    StarterPolicy("Block secrets", "secrets", ("block",)),
    StarterPolicy("Block prompt injection", "prompt_injection", ("block",)),
    StarterPolicy("Pin tool definitions", "tool_pinning", ("block",)),
)


@dataclass(frozen=True)
class DemoTenant:
    organisation_id: str
    workspace_id: str
    agent_id: str
    agent_key: str
    admin_email: str
    # Set only on the run that created or reset the password: it is shown once.
    admin_password: str | None
    policies: list[tuple[str, str]]  # (guardrail type, action), every demo policy in force


async def provision(
    settings: Settings, upstream_url: str, *, reset_password: bool = False
) -> DemoTenant:
    """Open the configured database, make sure the demo tenant exists, commit."""
    from cerberus.cache import create_cache

    engine = create_engine(settings)
    cache = create_cache(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            try:
                tenant = await ensure_tenant(
                    session, settings, upstream_url, reset_password=reset_password
                )
            except CerberusError as exc:
                raise DemoError(f"cannot set up the demo tenant: {exc.detail}") from None
            except RequestValidationError as exc:
                reason = "; ".join(str(error.get("msg")) for error in exc.errors())
                raise DemoError(f"cannot set up the demo tenant: {reason}") from None
            await session.commit()
            await publish_pending(session, cache)
            return tenant
    finally:
        await cache.close()
        await engine.dispose()


async def ensure_tenant(
    session: AsyncSession, settings: Settings, upstream_url: str, *, reset_password: bool
) -> DemoTenant:
    admin, password = await _ensure_admin(session, reset_password)
    actor = Actor(user=admin, client_address=None)
    organisation = await _ensure_organisation(session, actor)
    workspace = await _ensure_workspace(session, actor, organisation, upstream_url, settings)
    agent, key = await _ensure_agent(session, actor, workspace, settings)
    in_force = await _ensure_policies(session, actor, organisation)
    return DemoTenant(
        organisation_id=organisation.id,
        workspace_id=workspace.id,
        agent_id=agent.id,
        agent_key=key,
        admin_email=admin.email,
        admin_password=password,
        policies=in_force,
    )


async def _ensure_admin(session: AsyncSession, reset_password: bool) -> tuple[User, str | None]:
    """The demo's super_admin; a new password only when it is created or reset."""
    admin = await session.scalar(
        select(User).where(User.email == ADMIN_EMAIL, User.deleted_at.is_(None))
    )
    if admin is None:
        password = secrets.token_urlsafe(15)
        return await bootstrap.create_superuser(session, ADMIN_EMAIL, password), password
    if not reset_password:
        return admin, None
    password = secrets.token_urlsafe(15)
    # Through the service, so the reset shows in the change history like any other.
    update = tenancy_schemas.UserUpdate(password=password, is_active=True)
    admin = await tenancy.update_user(
        session, Actor(user=admin, client_address=None), admin.id, update
    )
    return admin, password


async def _ensure_organisation(session: AsyncSession, actor: Actor) -> Organisation:
    found = await session.scalar(
        select(Organisation).where(
            Organisation.slug == ORGANISATION_SLUG, Organisation.deleted_at.is_(None)
        )
    )
    if found is not None:
        return found
    data = tenancy_schemas.OrganisationCreate(name="Demo", slug=ORGANISATION_SLUG)
    return await tenancy.create_organisation(session, actor, data)


async def _ensure_workspace(
    session: AsyncSession,
    actor: Actor,
    organisation: Organisation,
    upstream_url: str,
    settings: Settings,
) -> Workspace:
    allowed = settings.UPSTREAM_ALLOWED_HOSTS
    found = await session.scalar(
        select(Workspace).where(
            Workspace.organisation_id == organisation.id,
            Workspace.slug == WORKSPACE_SLUG,
            Workspace.deleted_at.is_(None),
        )
    )
    if found is None:
        data = tenancy_schemas.WorkspaceCreate(
            name="Demo CRM", slug=WORKSPACE_SLUG, mcp_server_url=upstream_url
        )
        return await tenancy.create_workspace(session, actor, organisation.id, data, allowed)
    if found.mcp_server_url != upstream_url or not found.is_active:
        # This run's upstream may listen on another port than the last one did.
        update = tenancy_schemas.WorkspaceUpdate(mcp_server_url=upstream_url, is_active=True)
        return await tenancy.update_workspace(session, actor, found.id, update, allowed)
    return found


async def _ensure_agent(
    session: AsyncSession, actor: Actor, workspace: Workspace, settings: Settings
) -> tuple[Agent, str]:
    """The demo agent and its key: the saved key while it still works, else a new one."""
    key_file = settings.DATA_DIR / KEY_FILE
    saved = _read_saved_key(key_file)
    agent = await session.scalar(
        select(Agent).where(
            Agent.workspace_id == workspace.id,
            Agent.name == AGENT_NAME,
            Agent.revoked_at.is_(None),
        )
    )
    if agent is None:
        data = agent_schemas.AgentCreate(name=AGENT_NAME, description="Created by `cerberus demo`.")
        agent, key = await agents.create_agent(
            session, actor, workspace.id, data, settings.API_KEY_PREFIX
        )
    elif saved is not None and hash_key(saved) == agent.key_hash and agent.expires_at is None:
        return agent, saved
    else:
        rotate = agent_schemas.AgentRotate(grace_period_seconds=0)
        agent, key = await agents.rotate_key(
            session, actor, agent.id, rotate, settings.API_KEY_PREFIX
        )
    _save_key(key_file, key.plain)
    return agent, key.plain


async def _ensure_policies(
    session: AsyncSession, actor: Actor, organisation: Organisation
) -> list[tuple[str, str]]:
    """Organisation-wide starter policies for every registered type the demo knows."""
    existing = {
        policy.name: policy
        for policy in await session.scalars(
            select(Policy).where(
                Policy.organisation_id == organisation.id, Policy.deleted_at.is_(None)
            )
        )
    }
    in_force: list[tuple[str, str]] = []
    for starter in STARTER_POLICIES:
        cls = get_guardrail_type(starter.guardrail_type)
        if cls is None:
            continue
        if starter.name in existing:
            policy = existing[starter.name]
            in_force.append((policy.guardrail_type, policy.action))
            continue
        action = next((a for a in starter.actions if a in cls.actions), None)
        if action is None:
            continue
        data = policy_schemas.PolicyCreate(
            name=starter.name,
            guardrail_type=starter.guardrail_type,
            action=action,
            config=starter.config,
            description="Starter policy created by `cerberus demo`.",
        )
        try:
            await policies.create_policy(session, actor, organisation.id, data)
        except (CerberusError, RequestValidationError):
            # A guardrail whose config differs from what the demo expects is left out,
            # rather than stopping the demo; `GET guardrails` shows how to configure it.
            continue
        in_force.append((starter.guardrail_type, action))
    return in_force


def _read_saved_key(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _save_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"agent": AGENT_NAME, "key": key}, handle)
    os.chmod(path, 0o600)
