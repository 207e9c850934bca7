"""Policies: scope and config validated on every write, each write recorded and published.

A policy's config is checked by the guardrail class itself (`model_validate`), so what the
catalogue's JSON Schema promises and what is accepted cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.models import Agent
from cerberus.auth.dependencies import ensure_can_read, ensure_can_write
from cerberus.changes import service as changes
from cerberus.changes.service import Actor
from cerberus.db import utcnow
from cerberus.errors import NotFound
from cerberus.field_errors import field_error
from cerberus.guardrails import get_guardrail_type
from cerberus.invalidation import Invalidation, invalidate_after_commit
from cerberus.pagination import PageParams, paginate
from cerberus.policies import schemas
from cerberus.policies.config_integers import CONFIG_INT_RANGE, integer_out_of_range
from cerberus.policies.effective import effective_policies, scope_rank
from cerberus.policies.models import Policy
from cerberus.tenancy import service as tenancy
from cerberus.tenancy.models import User, Workspace

SCOPES: tuple[schemas.PolicyScope, ...] = ("organisation", "workspace", "agent")


def scope_of(policy: Policy) -> schemas.PolicyScope:
    return SCOPES[scope_rank(policy)]


def to_read(policy: Policy) -> schemas.PolicyRead:
    return schemas.PolicyRead.model_validate(
        {**changes.snapshot(policy), "scope": scope_of(policy)}
    )


def validate_config(guardrail_type: str, action: str, config: dict[str, Any]) -> None:
    """422 naming the field: unknown type, an action the type lacks, or a bad config value
    (one the guardrail's model refuses, or an integer the gateway cannot encode)."""
    cls = get_guardrail_type(guardrail_type)
    if cls is None:
        raise field_error("guardrail_type", f"unknown guardrail type {guardrail_type!r}")
    if action not in cls.actions:
        allowed = ", ".join(cls.actions)
        raise field_error("action", f"{guardrail_type} supports the actions {allowed}")
    if "action" in config:
        raise field_error("config.action", "set the policy's `action`, not config.action")
    try:
        cls.model_validate({**config, "action": action})
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "config", *error["loc"]),
                    "msg": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors()
            ]
        ) from None
    where = integer_out_of_range(config)
    if where is not None:
        raise field_error(".".join(["config", *map(str, where)]), CONFIG_INT_RANGE)


async def resolve_scope(
    session: AsyncSession, org_id: str, workspace_id: str | None, agent_id: str | None
) -> tuple[str | None, str | None]:
    """The (workspace, agent) pair, checked: both in the organisation, the agent in the workspace.

    An agent-scoped policy without a workspace takes the agent's.
    """
    if workspace_id is not None:
        workspace = await session.get(Workspace, workspace_id)
        if workspace is None or workspace.deleted_at is not None:
            raise field_error("workspace_id", "no such workspace in this organisation")
        if workspace.organisation_id != org_id:
            raise field_error("workspace_id", "no such workspace in this organisation")
    if agent_id is not None:
        agent = await session.get(Agent, agent_id)
        if agent is None or agent.organisation_id != org_id:
            raise field_error("agent_id", "no such agent in this organisation")
        if workspace_id is not None and agent.workspace_id != workspace_id:
            raise field_error("agent_id", "the agent belongs to another workspace")
        workspace_id = agent.workspace_id
    return workspace_id, agent_id


async def list_policies(
    session: AsyncSession,
    user: User,
    org_id: str,
    params: PageParams,
    *,
    workspace_id: str | None = None,
    agent_id: str | None = None,
    guardrail_type: str | None = None,
    enabled: bool | None = None,
    scope: schemas.PolicyScope | None = None,
) -> tuple[list[Policy], int]:
    await tenancy.get_organisation(session, user, org_id)
    statement: Select[Any] = select(Policy).where(
        Policy.organisation_id == org_id, Policy.deleted_at.is_(None)
    )
    if workspace_id is not None:
        statement = statement.where(Policy.workspace_id == workspace_id)
    if agent_id is not None:
        statement = statement.where(Policy.agent_id == agent_id)
    if guardrail_type is not None:
        statement = statement.where(Policy.guardrail_type == guardrail_type)
    if enabled is not None:
        statement = statement.where(Policy.enabled == enabled)
    if scope == "organisation":
        statement = statement.where(Policy.workspace_id.is_(None), Policy.agent_id.is_(None))
    elif scope == "workspace":
        statement = statement.where(Policy.workspace_id.is_not(None), Policy.agent_id.is_(None))
    elif scope == "agent":
        statement = statement.where(Policy.agent_id.is_not(None))
    statement = statement.order_by(Policy.guardrail_type, Policy.priority.desc(), Policy.id)
    return await paginate(session, statement, params)


async def get_policy(session: AsyncSession, user: User, policy_id: str) -> Policy:
    policy = await session.get(Policy, policy_id)
    if policy is None or policy.deleted_at is not None:
        raise NotFound("policy not found")
    ensure_can_read(user, policy.organisation_id, "policy")
    return policy


async def create_policy(
    session: AsyncSession, actor: Actor, org_id: str, data: schemas.PolicyCreate
) -> Policy:
    await tenancy.writable_organisation(session, actor.user, org_id)
    validate_config(data.guardrail_type, data.action, data.config)
    workspace_id, agent_id = await resolve_scope(session, org_id, data.workspace_id, data.agent_id)
    policy = Policy(
        organisation_id=org_id,
        workspace_id=workspace_id,
        agent_id=agent_id,
        name=data.name,
        description=data.description,
        guardrail_type=data.guardrail_type,
        action=data.action,
        config=data.config,
        priority=data.priority,
        enabled=data.enabled,
    )
    session.add(policy)
    await session.flush()
    changes.record(
        session, actor, "create", "policy", policy.id, org_id, after=changes.snapshot(policy)
    )
    _publish(session, policy, {policy.workspace_id})
    return policy


async def update_policy(
    session: AsyncSession, actor: Actor, policy_id: str, data: schemas.PolicyUpdate
) -> Policy:
    policy = await get_policy(session, actor.user, policy_id)
    ensure_can_write(actor.user, policy.organisation_id, "policy")
    fields = data.model_dump(exclude_unset=True)
    old_workspace = policy.workspace_id
    if "workspace_id" in fields or "agent_id" in fields:
        workspace_id, agent_id = await resolve_scope(
            session,
            policy.organisation_id,
            fields.get("workspace_id", policy.workspace_id),
            fields.get("agent_id", policy.agent_id),
        )
        fields["workspace_id"], fields["agent_id"] = workspace_id, agent_id
    action = fields.get("action") or policy.action
    config = fields["config"] if fields.get("config") is not None else policy.config
    validate_config(policy.guardrail_type, action, config)
    before = changes.snapshot(policy)
    for name, value in fields.items():
        if value is not None or name in ("workspace_id", "agent_id", "description"):
            setattr(policy, name, value)
    await session.flush()
    changes.record_update(session, actor, policy, "policy", policy.organisation_id, before)
    _publish(session, policy, {old_workspace, policy.workspace_id})
    return policy


async def delete_policy(session: AsyncSession, actor: Actor, policy_id: str) -> None:
    policy = await get_policy(session, actor.user, policy_id)
    ensure_can_write(actor.user, policy.organisation_id, "policy")
    before = changes.snapshot(policy)
    policy.deleted_at = utcnow()
    await session.flush()
    changes.record(
        session, actor, "delete", "policy", policy.id, policy.organisation_id, before=before
    )
    _publish(session, policy, {policy.workspace_id})


async def effective_policy(
    session: AsyncSession, user: User, workspace_id: str, agent_id: str | None
) -> schemas.EffectivePolicy:
    """What the proxy would apply to this agent (or to any agent, without one) in the workspace."""
    workspace = await tenancy.get_workspace(session, user, workspace_id)
    if agent_id is not None:
        agent = await session.get(Agent, agent_id)
        if agent is None or agent.workspace_id != workspace.id:
            raise NotFound("agent not found in this workspace")
    rows = await session.scalars(
        select(Policy).where(
            Policy.organisation_id == workspace.organisation_id,
            Policy.deleted_at.is_(None),
            Policy.enabled.is_(True),
            or_(Policy.workspace_id.is_(None), Policy.workspace_id == workspace.id),
        )
    )
    chosen = effective_policies(rows, workspace.id, agent_id)
    return schemas.EffectivePolicy(
        organisation_id=workspace.organisation_id,
        workspace_id=workspace.id,
        agent_id=agent_id,
        policies=[
            schemas.EffectivePolicyEntry(
                guardrail_type=name, scope=scope_of(policy), policy=to_read(policy)
            )
            for name, policy in chosen.items()
        ],
    )


def _publish(session: AsyncSession, policy: Policy, workspaces: set[str | None]) -> None:
    for workspace_id in workspaces:
        invalidate_after_commit(
            session,
            Invalidation("policy", policy.id, policy.organisation_id, workspace_id=workspace_id),
        )
