"""Recording every control-plane write (who, when, what, from where) and reading it back.

Services call `record(...)` in the same transaction as the change, so a change and its
history row are committed together or not at all. Secrets and hashes never enter a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.inspection import inspect

from cerberus.changes.models import ChangeRecord
from cerberus.pagination import PageParams, paginate
from cerberus.tenancy.models import User

ChangeAction = Literal["create", "update", "delete", "rotate", "revoke", "approve"]
# Never copied into a record; a changed password shows as `password_changed`.
SECRET_FIELDS = frozenset({"password_hash", "key_hash", "previous_key_hash"})
# Bookkeeping that changes on every write and says nothing about intent.
NOISE_FIELDS = frozenset({"updated_at", "last_used_at", "usage_count", "last_login_at"})


@dataclass(frozen=True)
class Actor:
    """The person making a change and the address the request came from."""

    user: User
    client_address: str | None


def snapshot(obj: Any) -> dict[str, Any]:
    """The object's columns as JSON values, without secrets."""
    values: dict[str, Any] = {}
    for column in inspect(type(obj)).columns:
        if column.key in SECRET_FIELDS:
            continue
        values[column.key] = _json_value(getattr(obj, column.key))
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, each side keeping its own value."""
    keys = [k for k in after if k not in NOISE_FIELDS and before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    session: AsyncSession,
    actor: Actor,
    action: ChangeAction,
    object_type: str,
    object_id: str,
    organisation_id: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> ChangeRecord:
    entry = ChangeRecord(
        organisation_id=organisation_id,
        actor_id=actor.user.id,
        actor_email=actor.user.email,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        client_address=actor.client_address,
    )
    session.add(entry)
    return entry


def record_update(
    session: AsyncSession,
    actor: Actor,
    obj: Any,
    object_type: str,
    organisation_id: str | None,
    before: dict[str, Any],
    *,
    extra_after: dict[str, Any] | None = None,
) -> ChangeRecord | None:
    """Record an update with only what changed; nothing is recorded when nothing changed."""
    old, new = diff(before, snapshot(obj))
    if extra_after:
        new.update(extra_after)
    if not new:
        return None
    return record(
        session, actor, "update", object_type, obj.id, organisation_id, before=old, after=new
    )


async def list_changes(
    session: AsyncSession,
    organisation_id: str,
    params: PageParams,
    *,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[ChangeRecord], int]:
    statement: Select[Any] = select(ChangeRecord).where(
        ChangeRecord.organisation_id == organisation_id
    )
    if actor:
        statement = statement.where(
            or_(ChangeRecord.actor_id == actor, ChangeRecord.actor_email == actor.lower())
        )
    if object_type:
        statement = statement.where(ChangeRecord.object_type == object_type)
    if object_id:
        statement = statement.where(ChangeRecord.object_id == object_id)
    if since:
        statement = statement.where(ChangeRecord.created_at >= since)
    if until:
        statement = statement.where(ChangeRecord.created_at < until)
    statement = statement.order_by(ChangeRecord.created_at.desc(), ChangeRecord.id)
    return await paginate(session, statement, params)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
