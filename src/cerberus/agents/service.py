"""Agents and their keys: create (key shown once), update, revoke, rotate; each write recorded.

Only the SHA-256 of a key is stored. Every change to an agent is published so that every
instance's proxy drops the key it cached within a second.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents import schemas
from cerberus.agents.keys import NewKey, generate_key
from cerberus.agents.models import Agent
from cerberus.auth.dependencies import ensure_can_read, ensure_can_write
from cerberus.changes import service as changes
from cerberus.changes.service import Actor
from cerberus.db import utcnow
from cerberus.errors import Conflict, NotFound
from cerberus.field_errors import field_error
from cerberus.invalidation import Invalidation, invalidate_after_commit
from cerberus.pagination import PageParams, paginate
from cerberus.tenancy import service as tenancy
from cerberus.tenancy.models import User


def status_of(agent: Agent, now: datetime | None = None) -> schemas.AgentStatus:
    if agent.revoked_at is not None:
        return "revoked"
    if agent.expires_at is not None and agent.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def to_read(agent: Agent) -> schemas.AgentRead:
    return schemas.AgentRead.model_validate({**changes.snapshot(agent), "status": status_of(agent)})


def to_read_with_key(agent: Agent, key: NewKey) -> schemas.AgentWithKey:
    return schemas.AgentWithKey.model_validate(
        {**changes.snapshot(agent), "status": status_of(agent), "key": key.plain}
    )


async def list_agents(
    session: AsyncSession,
    user: User,
    workspace_id: str,
    params: PageParams,
    *,
    status: schemas.AgentStatus | None = None,
) -> tuple[list[Agent], int]:
    await tenancy.get_workspace(session, user, workspace_id)
    statement: Select[Any] = select(Agent).where(Agent.workspace_id == workspace_id)
    now = utcnow()
    if status == "revoked":
        statement = statement.where(Agent.revoked_at.is_not(None))
    elif status == "expired":
        statement = statement.where(Agent.revoked_at.is_(None), Agent.expires_at <= now)
    elif status == "active":
        statement = statement.where(
            Agent.revoked_at.is_(None), (Agent.expires_at.is_(None)) | (Agent.expires_at > now)
        )
    return await paginate(session, statement.order_by(Agent.name, Agent.id), params)


async def get_agent(session: AsyncSession, user: User, agent_id: str) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent not found")
    ensure_can_read(user, agent.organisation_id, "agent")
    return agent


async def create_agent(
    session: AsyncSession,
    actor: Actor,
    workspace_id: str,
    data: schemas.AgentCreate,
    key_prefix: str,
) -> tuple[Agent, NewKey]:
    workspace = await tenancy.get_workspace(session, actor.user, workspace_id)
    ensure_can_write(actor.user, workspace.organisation_id, "agent")
    _ensure_future("expires_at", data.expires_at)
    key = generate_key(key_prefix)
    agent = Agent(
        organisation_id=workspace.organisation_id,
        workspace_id=workspace.id,
        name=data.name,
        description=data.description,
        key_hash=key.hash,
        key_prefix=key.display_prefix,
        expires_at=data.expires_at,
    )
    session.add(agent)
    await session.flush()
    changes.record(
        session, actor, "create", "agent", agent.id, agent.organisation_id,
        after=changes.snapshot(agent),
    )  # fmt: skip
    invalidate_after_commit(session, _event(agent))
    return agent, key


async def update_agent(
    session: AsyncSession, actor: Actor, agent_id: str, data: schemas.AgentUpdate
) -> Agent:
    agent = await _writable(session, actor, agent_id)
    fields = data.model_dump(exclude_unset=True)
    if "expires_at" in fields:
        _ensure_future("expires_at", data.expires_at)
    before = changes.snapshot(agent)
    for name, value in fields.items():
        # `null` clears the description and the expiry; a name is required.
        if value is not None or name in ("description", "expires_at"):
            setattr(agent, name, value)
    await session.flush()
    changes.record_update(session, actor, agent, "agent", agent.organisation_id, before)
    invalidate_after_commit(session, _event(agent))
    return agent


async def revoke_agent(session: AsyncSession, actor: Actor, agent_id: str) -> None:
    """The agent's keys (current and any in a grace period) stop working; idempotent."""
    agent = await _writable(session, actor, agent_id)
    if agent.revoked_at is not None:
        return
    before = changes.snapshot(agent)
    agent.revoked_at = utcnow()
    agent.previous_key_hash = None
    agent.previous_key_expires_at = None
    await session.flush()
    old, new = changes.diff(before, changes.snapshot(agent))
    changes.record(
        session, actor, "revoke", "agent", agent.id, agent.organisation_id, before=old, after=new
    )
    invalidate_after_commit(session, _event(agent))


async def rotate_key(
    session: AsyncSession,
    actor: Actor,
    agent_id: str,
    data: schemas.AgentRotate,
    key_prefix: str,
) -> tuple[Agent, NewKey]:
    """A new key for the same agent; the old one works for the grace period, if any."""
    agent = await _writable(session, actor, agent_id)
    if agent.revoked_at is not None:
        raise Conflict("a revoked agent's key cannot be rotated; create a new agent")
    _ensure_future("expires_at", data.expires_at)
    before = changes.snapshot(agent)
    key = generate_key(key_prefix)
    if data.grace_period_seconds > 0:
        agent.previous_key_hash = agent.key_hash
        agent.previous_key_expires_at = utcnow() + timedelta(seconds=data.grace_period_seconds)
    else:
        agent.previous_key_hash = None
        agent.previous_key_expires_at = None
    agent.key_hash = key.hash
    agent.key_prefix = key.display_prefix
    if data.expires_at is not None:
        agent.expires_at = data.expires_at
    await session.flush()
    old, new = changes.diff(before, changes.snapshot(agent))
    new["grace_period_seconds"] = data.grace_period_seconds
    changes.record(
        session, actor, "rotate", "agent", agent.id, agent.organisation_id, before=old, after=new
    )
    invalidate_after_commit(session, _event(agent))
    return agent, key


async def _writable(session: AsyncSession, actor: Actor, agent_id: str) -> Agent:
    agent = await get_agent(session, actor.user, agent_id)
    ensure_can_write(actor.user, agent.organisation_id, "agent")
    return agent


def _ensure_future(field: str, value: datetime | None) -> None:
    if value is not None and value <= utcnow():
        raise field_error(field, "must be in the future")


def _event(agent: Agent) -> Invalidation:
    return Invalidation("agent", agent.id, agent.organisation_id, workspace_id=agent.workspace_id)
