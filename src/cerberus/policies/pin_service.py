"""Admins review pinned tool definitions and approve a changed one; each approval is recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.auth.dependencies import ensure_can_read, ensure_can_write
from cerberus.changes import service as changes
from cerberus.changes.service import Actor
from cerberus.db import utcnow
from cerberus.errors import Conflict, NotFound
from cerberus.invalidation import Invalidation, invalidate_after_commit
from cerberus.pagination import PageParams, paginate
from cerberus.policies.models import ToolPin
from cerberus.tenancy import service as tenancy
from cerberus.tenancy.models import User, Workspace

PinStatus = Literal["pinned", "pending"]


class ToolPinRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    workspace_id: str
    tool_name: str
    status: PinStatus = Field(description="pending: a changed definition awaits approval")
    definition_hash: str
    definition: dict[str, Any]
    pending_hash: str | None
    pending_definition: dict[str, Any] | None
    first_seen_at: datetime
    approved_at: datetime | None
    approved_by: str | None


class ToolPinApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pending_hash: str | None = Field(
        default=None,
        description="the definition hash the admin reviewed; 409 if it changed meanwhile",
    )


def to_read(pin: ToolPin) -> ToolPinRead:
    status: PinStatus = "pending" if pin.pending_hash is not None else "pinned"
    return ToolPinRead.model_validate({**changes.snapshot(pin), "status": status})


async def list_pins(
    session: AsyncSession,
    user: User,
    workspace_id: str,
    params: PageParams,
    *,
    status: PinStatus | None = None,
) -> tuple[list[ToolPin], int]:
    await tenancy.get_workspace(session, user, workspace_id)
    statement: Select[Any] = select(ToolPin).where(ToolPin.workspace_id == workspace_id)
    if status == "pending":
        statement = statement.where(ToolPin.pending_hash.is_not(None))
    elif status == "pinned":
        statement = statement.where(ToolPin.pending_hash.is_(None))
    return await paginate(session, statement.order_by(ToolPin.tool_name), params)


async def get_pin(session: AsyncSession, user: User, pin_id: str) -> tuple[ToolPin, Workspace]:
    pin = await session.get(ToolPin, pin_id)
    workspace = await session.get(Workspace, pin.workspace_id) if pin is not None else None
    if pin is None or workspace is None or workspace.deleted_at is not None:
        raise NotFound("tool pin not found")
    ensure_can_read(user, workspace.organisation_id, "tool pin")
    return pin, workspace


async def approve(
    session: AsyncSession, actor: Actor, pin_id: str, body: ToolPinApprove
) -> ToolPin:
    pin, workspace = await get_pin(session, actor.user, pin_id)
    ensure_can_write(actor.user, workspace.organisation_id, "tool pin")
    if pin.pending_hash is None:
        raise Conflict(f"tool {pin.tool_name!r} has no changed definition awaiting approval")
    if body.pending_hash is not None and body.pending_hash != pin.pending_hash:
        raise Conflict(f"tool {pin.tool_name!r} changed again since it was reviewed")
    before = {"definition_hash": pin.definition_hash}
    pin.definition_hash = pin.pending_hash
    pin.definition = pin.pending_definition or {}
    pin.pending_hash = None
    pin.pending_definition = None
    pin.approved_at = utcnow()
    pin.approved_by = actor.user.id
    await session.flush()
    changes.record(
        session,
        actor,
        "approve",
        "tool_pin",
        pin.id,
        workspace.organisation_id,
        before=before,
        after={"tool_name": pin.tool_name, "definition_hash": pin.definition_hash},
    )
    _publish(session, pin, workspace)
    return pin


async def unpin(session: AsyncSession, actor: Actor, pin_id: str) -> None:
    """Forget a pin: the next tools/list pins the tool afresh (and reports it as new)."""
    pin, workspace = await get_pin(session, actor.user, pin_id)
    ensure_can_write(actor.user, workspace.organisation_id, "tool pin")
    before = {"tool_name": pin.tool_name, "definition_hash": pin.definition_hash}
    await session.delete(pin)
    await session.flush()
    changes.record(
        session, actor, "delete", "tool_pin", pin.id, workspace.organisation_id, before=before
    )
    _publish(session, pin, workspace)


def _publish(session: AsyncSession, pin: ToolPin, workspace: Workspace) -> None:
    """After the commit, every instance reloads the workspace's pins or, not holding them,
    drops their shared entry (PinStore.invalidate); one that misses the event reads them
    again within the TTL."""
    invalidate_after_commit(
        session,
        Invalidation("tool_pin", pin.id, workspace.organisation_id, workspace_id=workspace.id),
    )
