"""Control-plane audit routes: events, one event, export, analytics; viewers may read them all."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from cerberus.audit import analytics, export, service
from cerberus.audit.models import AuditEvent
from cerberus.audit.schemas import Analytics, AuditEventPage, AuditEventRead, AuditFilters, Period
from cerberus.auth.dependencies import CurrentUser, ensure_can_read
from cerberus.pagination import PageDep
from cerberus.request_session import SessionDep

# Included by cerberus.api under /control-plane/api/v1.
router = APIRouter(tags=["audit"])

FiltersQuery = Annotated[AuditFilters, Query()]


@router.get("/organisations/{org_id}/audit-events", response_model=AuditEventPage)
async def list_audit_events(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    filters: FiltersQuery,
    paging: PageDep,
) -> AuditEventPage:
    """Events newest first; filters combine; `since` is inclusive, `until` exclusive."""
    ensure_can_read(user, org_id, "organisation")
    await service.ensure_organisation(session, org_id)
    return await service.list_events(
        session, org_id, filters, page=paging.page, per_page=paging.per_page
    )


@router.get("/organisations/{org_id}/audit-events/export")
async def export_audit_events(
    org_id: str,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    filters: FiltersQuery,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    """Every matching event, oldest first, streamed as JSON Lines or CSV."""
    ensure_can_read(user, org_id, "organisation")
    await service.ensure_organisation(session, org_id)
    body = export.stream_events(request.app.state.sessionmaker, org_id, filters, format)
    filename = f"audit-events-{org_id}.{format}"
    return StreamingResponse(
        body,
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/audit-events/{decision_id}", response_model=AuditEventRead)
async def get_audit_event(decision_id: str, user: CurrentUser, session: SessionDep) -> AuditEvent:
    event = await service.get_by_decision_id(session, decision_id)
    ensure_can_read(user, event.organisation_id, "audit event")
    return event


@router.get("/organisations/{org_id}/analytics", response_model=Analytics)
async def get_analytics(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    workspace_id: str | None = None,
    period: Period = "day",
) -> Analytics:
    ensure_can_read(user, org_id, "organisation")
    await service.ensure_organisation(session, org_id)
    return await analytics.summarise(session, org_id, workspace_id=workspace_id, period=period)
