"""Organisations, workspaces and users: scoped reads, validated writes, each write recorded.

Every function takes the acting user (or Actor) and checks the organisation first, so
another tenant's object is indistinguishable from a missing one (404).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.models import Agent
from cerberus.auth.dependencies import (
    ensure_can_read,
    ensure_can_write,
    ensure_super_admin,
    is_super_admin,
)
from cerberus.auth.passwords import hash_password_in_thread
from cerberus.auth.roles import Role
from cerberus.auth.service import revoke_refresh_tokens
from cerberus.changes import service as changes
from cerberus.changes.service import Actor
from cerberus.db import utcnow
from cerberus.errors import Conflict, NotFound
from cerberus.field_errors import field_error
from cerberus.invalidation import Invalidation, invalidate_after_commit
from cerberus.pagination import PageParams, paginate
from cerberus.tenancy import schemas
from cerberus.tenancy.models import Organisation, User, Workspace
from cerberus.tenancy.upstream_urls import check_upstream_url


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """A concurrent insert of the same unique value loses here, as 409 rather than 500."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(message) from None


def _tombstone(value: str, object_id: str) -> str:
    # Frees a unique slug or email for reuse once its owner is soft-deleted.
    return f"deleted-{object_id}-{value}"[:100]


# Organisations


async def list_organisations(
    session: AsyncSession, user: User, params: PageParams, *, is_active: bool | None = None
) -> tuple[list[Organisation], int]:
    statement: Select[Any] = select(Organisation).where(Organisation.deleted_at.is_(None))
    if not is_super_admin(user):
        statement = statement.where(Organisation.id == user.organisation_id)
    if is_active is not None:
        statement = statement.where(Organisation.is_active == is_active)
    return await paginate(session, statement.order_by(Organisation.slug), params)


async def get_organisation(session: AsyncSession, user: User, org_id: str) -> Organisation:
    ensure_can_read(user, org_id, "organisation")
    organisation = await session.get(Organisation, org_id)
    if organisation is None or organisation.deleted_at is not None:
        raise NotFound("organisation not found")
    return organisation


async def writable_organisation(session: AsyncSession, user: User, org_id: str) -> Organisation:
    organisation = await get_organisation(session, user, org_id)
    ensure_can_write(user, org_id, "organisation")
    return organisation


async def create_organisation(
    session: AsyncSession, actor: Actor, data: schemas.OrganisationCreate
) -> Organisation:
    ensure_super_admin(actor.user)
    if await session.scalar(select(Organisation.id).where(Organisation.slug == data.slug)):
        raise Conflict(f"an organisation with slug {data.slug!r} already exists")
    if data.admin_email is not None:
        await _ensure_email_free(session, data.admin_email)
    organisation = Organisation(name=data.name, slug=data.slug, settings=data.settings)
    session.add(organisation)
    await flush_or_conflict(session, f"an organisation with slug {data.slug!r} already exists")
    changes.record(
        session, actor, "create", "organisation", organisation.id, organisation.id,
        after=changes.snapshot(organisation),
    )  # fmt: skip
    if data.admin_email is not None and data.admin_password is not None:
        await _add_user(
            session,
            actor,
            organisation.id,
            schemas.UserCreate(
                email=data.admin_email, password=data.admin_password, role=Role.ORG_ADMIN.value
            ),
        )
    return organisation


async def update_organisation(
    session: AsyncSession, actor: Actor, org_id: str, data: schemas.OrganisationUpdate
) -> Organisation:
    organisation = await writable_organisation(session, actor.user, org_id)
    fields = data.model_dump(exclude_unset=True)
    if "slug" in fields or "is_active" in fields:
        ensure_super_admin(actor.user)
    if fields.get("slug") not in (None, organisation.slug):
        taken = await session.scalar(select(Organisation.id).where(Organisation.slug == data.slug))
        if taken:
            raise Conflict(f"an organisation with slug {data.slug!r} already exists")
    before = changes.snapshot(organisation)
    for name, value in fields.items():
        if value is not None:
            setattr(organisation, name, value)
    await flush_or_conflict(session, "an organisation with that slug already exists")
    changes.record_update(session, actor, organisation, "organisation", org_id, before)
    invalidate_after_commit(session, Invalidation("organisation", org_id, organisation_id=org_id))
    return organisation


async def delete_organisation(session: AsyncSession, actor: Actor, org_id: str) -> None:
    organisation = await get_organisation(session, actor.user, org_id)
    ensure_super_admin(actor.user)
    before = changes.snapshot(organisation)
    organisation.deleted_at = utcnow()
    organisation.is_active = False
    organisation.slug = _tombstone(organisation.slug, organisation.id)
    await session.flush()
    changes.record(session, actor, "delete", "organisation", org_id, org_id, before=before)
    invalidate_after_commit(session, Invalidation("organisation", org_id, organisation_id=org_id))


# Workspaces


async def list_workspaces(
    session: AsyncSession,
    user: User,
    org_id: str,
    params: PageParams,
    *,
    environment_type: str | None = None,
    is_active: bool | None = None,
) -> tuple[list[Workspace], int]:
    await get_organisation(session, user, org_id)
    statement: Select[Any] = select(Workspace).where(
        Workspace.organisation_id == org_id, Workspace.deleted_at.is_(None)
    )
    if environment_type is not None:
        statement = statement.where(Workspace.environment_type == environment_type)
    if is_active is not None:
        statement = statement.where(Workspace.is_active == is_active)
    return await paginate(session, statement.order_by(Workspace.slug), params)


async def get_workspace(session: AsyncSession, user: User, workspace_id: str) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None or workspace.deleted_at is not None:
        raise NotFound("workspace not found")
    ensure_can_read(user, workspace.organisation_id, "workspace")
    return workspace


def check_mcp_server_url(url: str, allowed_hosts: Sequence[str]) -> None:
    try:
        check_upstream_url(url, allowed_hosts)
    except ValueError as exc:
        raise field_error("mcp_server_url", str(exc)) from None


async def create_workspace(
    session: AsyncSession,
    actor: Actor,
    org_id: str,
    data: schemas.WorkspaceCreate,
    allowed_hosts: Sequence[str],
) -> Workspace:
    await writable_organisation(session, actor.user, org_id)
    check_mcp_server_url(data.mcp_server_url, allowed_hosts)
    await _ensure_workspace_slug_free(session, org_id, data.slug)
    workspace = Workspace(
        organisation_id=org_id,
        name=data.name,
        slug=data.slug,
        environment_type=data.environment_type,
        mcp_server_url=data.mcp_server_url,
        settings=data.settings.model_dump(exclude_none=True),
    )
    session.add(workspace)
    await flush_or_conflict(session, f"a workspace with slug {data.slug!r} already exists")
    changes.record(
        session, actor, "create", "workspace", workspace.id, org_id,
        after=changes.snapshot(workspace),
    )  # fmt: skip
    invalidate_after_commit(session, _workspace_event(workspace))
    return workspace


async def update_workspace(
    session: AsyncSession,
    actor: Actor,
    workspace_id: str,
    data: schemas.WorkspaceUpdate,
    allowed_hosts: Sequence[str],
) -> Workspace:
    workspace = await get_workspace(session, actor.user, workspace_id)
    ensure_can_write(actor.user, workspace.organisation_id, "workspace")
    fields = data.model_dump(exclude_unset=True, exclude={"settings"})
    if data.mcp_server_url is not None:
        check_mcp_server_url(data.mcp_server_url, allowed_hosts)
    if data.slug is not None and data.slug != workspace.slug:
        await _ensure_workspace_slug_free(session, workspace.organisation_id, data.slug)
    before = changes.snapshot(workspace)
    for name, value in fields.items():
        if value is not None:
            setattr(workspace, name, value)
    if data.settings is not None:
        workspace.settings = data.settings.model_dump(exclude_none=True)
    await flush_or_conflict(session, "a workspace with that slug already exists")
    changes.record_update(session, actor, workspace, "workspace", workspace.organisation_id, before)
    invalidate_after_commit(session, _workspace_event(workspace))
    return workspace


async def delete_workspace(session: AsyncSession, actor: Actor, workspace_id: str) -> None:
    """Soft delete; the workspace's agents are revoked so none of their keys keeps working."""
    workspace = await get_workspace(session, actor.user, workspace_id)
    ensure_can_write(actor.user, workspace.organisation_id, "workspace")
    before = changes.snapshot(workspace)
    now = utcnow()
    workspace.deleted_at = now
    workspace.is_active = False
    workspace.slug = _tombstone(workspace.slug, workspace.id)
    agent_ids = list(
        await session.scalars(
            select(Agent.id).where(Agent.workspace_id == workspace.id, Agent.revoked_at.is_(None))
        )
    )
    if agent_ids:
        await session.execute(
            update(Agent)
            .where(Agent.id.in_(agent_ids))
            .values(revoked_at=now, previous_key_hash=None, previous_key_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    org_id = workspace.organisation_id
    changes.record(session, actor, "delete", "workspace", workspace.id, org_id, before=before)
    for agent_id in agent_ids:
        changes.record(session, actor, "revoke", "agent", agent_id, org_id, after={"revoked": True})
        invalidate_after_commit(
            session, Invalidation("agent", agent_id, org_id, workspace_id=workspace.id)
        )
    invalidate_after_commit(session, _workspace_event(workspace))


def _workspace_event(workspace: Workspace) -> Invalidation:
    return Invalidation(
        "workspace", workspace.id, workspace.organisation_id, workspace_id=workspace.id
    )


async def _ensure_workspace_slug_free(session: AsyncSession, org_id: str, slug: str) -> None:
    taken = await session.scalar(
        select(Workspace.id).where(Workspace.organisation_id == org_id, Workspace.slug == slug)
    )
    if taken:
        raise Conflict(f"a workspace with slug {slug!r} already exists in this organisation")


# Users


async def list_users(
    session: AsyncSession,
    user: User,
    org_id: str,
    params: PageParams,
    *,
    role: str | None = None,
    is_active: bool | None = None,
) -> tuple[list[User], int]:
    await get_organisation(session, user, org_id)
    statement: Select[Any] = select(User).where(
        User.organisation_id == org_id, User.deleted_at.is_(None)
    )
    if role is not None:
        statement = statement.where(User.role == role)
    if is_active is not None:
        statement = statement.where(User.is_active == is_active)
    return await paginate(session, statement.order_by(User.email), params)


async def get_user(session: AsyncSession, user: User, user_id: str) -> User:
    found = await session.get(User, user_id)
    if found is None or found.deleted_at is not None:
        raise NotFound("user not found")
    ensure_can_read(user, found.organisation_id, "user")
    return found


async def create_user(
    session: AsyncSession, actor: Actor, org_id: str, data: schemas.UserCreate
) -> User:
    await writable_organisation(session, actor.user, org_id)
    await _ensure_email_free(session, data.email)
    return await _add_user(session, actor, org_id, data)


async def update_user(
    session: AsyncSession, actor: Actor, user_id: str, data: schemas.UserUpdate
) -> User:
    target = await get_user(session, actor.user, user_id)
    if target.id != actor.user.id or data.role is not None or data.is_active is not None:
        # People may change their own name, email and password; the rest needs an admin.
        ensure_can_write(actor.user, target.organisation_id, "user")
    if target.role == Role.SUPER_ADMIN and data.role is not None:
        raise field_error("role", "a super_admin's role cannot be changed here")
    if data.email is not None and data.email.lower() != target.email:
        await _ensure_email_free(session, data.email)
    before = changes.snapshot(target)
    fields = data.model_dump(exclude_unset=True, exclude={"password"})
    for name, value in fields.items():
        if value is not None:
            setattr(target, name, value.lower() if name == "email" else value)
    extra = None
    if data.password is not None:
        target.password_hash = await hash_password_in_thread(data.password)
        await revoke_refresh_tokens(session, target.id)
        extra = {"password_changed": True}
    await flush_or_conflict(session, "a user with that email already exists")
    changes.record_update(
        session, actor, target, "user", target.organisation_id, before, extra_after=extra
    )
    return target


async def delete_user(session: AsyncSession, actor: Actor, user_id: str) -> None:
    target = await get_user(session, actor.user, user_id)
    ensure_can_write(actor.user, target.organisation_id, "user")
    if target.id == actor.user.id:
        raise Conflict("you cannot delete your own account")
    before = changes.snapshot(target)
    target.deleted_at = utcnow()
    target.is_active = False
    target.email = _tombstone(target.email, target.id)[:320]
    await session.flush()
    changes.record(
        session, actor, "delete", "user", target.id, target.organisation_id, before=before
    )


async def _add_user(
    session: AsyncSession, actor: Actor, org_id: str, data: schemas.UserCreate
) -> User:
    user = User(
        organisation_id=org_id,
        email=data.email.lower(),
        full_name=data.full_name,
        password_hash=await hash_password_in_thread(data.password),
        role=data.role,
    )
    session.add(user)
    await flush_or_conflict(session, f"a user with email {data.email!r} already exists")
    changes.record(session, actor, "create", "user", user.id, org_id, after=changes.snapshot(user))
    return user


async def _ensure_email_free(session: AsyncSession, email: str) -> None:
    taken = await session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
    if taken:
        raise Conflict(f"a user with email {email!r} already exists")
