"""Queries over the audit trail: filtered pages of events, one event by decision id."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.audit.models import AuditEvent
from cerberus.audit.schemas import AuditEventPage, AuditEventRead, AuditFilters
from cerberus.errors import NotFound, Unprocessable
from cerberus.tenancy.models import Organisation

DEFAULT_PER_PAGE = 50


async def ensure_organisation(session: AsyncSession, organisation_id: str) -> Organisation:
    """The organisation, or 404: a deleted tenant's trail is not served."""
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None or organisation.deleted_at is not None:
        raise NotFound("organisation not found")
    return organisation


def conditions(organisation_id: str, filters: AuditFilters) -> list[ColumnElement[bool]]:
    """The WHERE clauses for one organisation's events under the given filters."""
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise Unprocessable("since must be before until")
    clauses: list[ColumnElement[bool]] = [AuditEvent.organisation_id == organisation_id]
    if filters.workspace_id is not None:
        clauses.append(AuditEvent.workspace_id == filters.workspace_id)
    if filters.agent_id is not None:
        clauses.append(AuditEvent.agent_id == filters.agent_id)
    if filters.action is not None:
        clauses.append(AuditEvent.action == filters.action)
    if filters.tool_name is not None:
        clauses.append(AuditEvent.tool_name == filters.tool_name)
    if filters.direction is not None:
        clauses.append(AuditEvent.direction == filters.direction)
    if filters.since is not None:
        clauses.append(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        clauses.append(AuditEvent.created_at < filters.until)
    return clauses


async def list_events(
    session: AsyncSession,
    organisation_id: str,
    filters: AuditFilters,
    *,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> AuditEventPage:
    """One page of events, newest first, and how many match in all."""
    where = conditions(organisation_id, filters)
    total = await session.scalar(select(func.count()).select_from(AuditEvent).where(*where))
    rows = await session.scalars(
        select(AuditEvent)
        .where(*where)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return AuditEventPage(
        items=[AuditEventRead.model_validate(row) for row in rows],
        total=total or 0,
        page=page,
        per_page=per_page,
    )


async def get_by_decision_id(session: AsyncSession, decision_id: str) -> AuditEvent:
    event = await session.scalar(select(AuditEvent).where(AuditEvent.decision_id == decision_id))
    if event is None:
        raise NotFound("audit event not found")
    return event
