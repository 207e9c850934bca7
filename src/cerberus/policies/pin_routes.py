"""Routes for reviewing pinned tool definitions and approving changed ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from cerberus.auth.dependencies import AUTH_RESPONSES, CurrentActor, CurrentUser
from cerberus.pagination import Page, PageDep
from cerberus.policies import pin_service as pins
from cerberus.policies.pin_service import PinStatus, ToolPinApprove, ToolPinRead
from cerberus.request_session import SessionDep

router = APIRouter(responses=AUTH_RESPONSES, tags=["tool pins"])


@router.get("/workspaces/{workspace_id}/tool-pins")
async def list_tool_pins(
    workspace_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[PinStatus | None, Query()] = None,
) -> Page[ToolPinRead]:
    """The tools pinned in a workspace; `status=pending` lists changes awaiting approval."""
    rows, total = await pins.list_pins(session, user, workspace_id, page, status=status)
    items = [pins.to_read(row) for row in rows]
    return Page(items=items, total=total, page=page.page, per_page=page.per_page)


@router.get("/tool-pins/{pin_id}")
async def get_tool_pin(pin_id: str, user: CurrentUser, session: SessionDep) -> ToolPinRead:
    pin, _workspace = await pins.get_pin(session, user, pin_id)
    return pins.to_read(pin)


@router.post(
    "/tool-pins/{pin_id}/approve",
    responses={409: {"description": "nothing awaits approval, or it changed since reviewed"}},
)
async def approve_tool_pin(
    pin_id: str,
    actor: CurrentActor,
    session: SessionDep,
    body: Annotated[ToolPinApprove | None, Body()] = None,
) -> ToolPinRead:
    """Accept the changed definition: it becomes the pin, and the tool is usable again."""
    pin = await pins.approve(session, actor, pin_id, body or ToolPinApprove())
    return pins.to_read(pin)


@router.delete("/tool-pins/{pin_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tool_pin(pin_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    """Forget the pin; the next `tools/list` pins the tool again as new."""
    await pins.unpin(session, actor, pin_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
