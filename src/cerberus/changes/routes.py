"""The change history route: who changed what in an organisation, for its admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cerberus.auth.dependencies import AUTH_RESPONSES, CurrentUser
from cerberus.auth.roles import Role
from cerberus.changes import service as changes
from cerberus.changes.schemas import ChangeRead
from cerberus.errors import Forbidden
from cerberus.pagination import Page, PageDep
from cerberus.request_session import SessionDep
from cerberus.tenancy import service as tenancy
from cerberus.timestamps import UTCTimestamp

router = APIRouter(tags=["change history"], responses=AUTH_RESPONSES)


@router.get("/organisations/{org_id}/changes")
async def list_changes(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    actor: Annotated[str | None, Query(description="user id or email of who made it")] = None,
    object_type: Annotated[str | None, Query(examples=["policy"])] = None,
    object_id: Annotated[str | None, Query()] = None,
    since: Annotated[UTCTimestamp | None, Query(description="inclusive, ISO 8601")] = None,
    until: Annotated[UTCTimestamp | None, Query(description="exclusive, ISO 8601")] = None,
) -> Page[ChangeRead]:
    """Newest first; for the organisation's admins (a viewer is refused with 403)."""
    await tenancy.get_organisation(session, user, org_id)
    if user.role == Role.ORG_VIEWER:
        raise Forbidden("the change history is for the organisation's admins")
    rows, total = await changes.list_changes(
        session,
        org_id,
        page,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
    )
    items = [ChangeRead.model_validate(row) for row in rows]
    return Page(items=items, total=total, page=page.page, per_page=page.per_page)
