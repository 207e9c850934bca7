"""Routes for organisations, workspaces and users (thin: parse, call the service, answer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from cerberus.auth.dependencies import AUTH_RESPONSES, CurrentActor, CurrentUser
from cerberus.pagination import Page, PageDep
from cerberus.request_session import SessionDep
from cerberus.tenancy import schemas
from cerberus.tenancy import service as tenancy
from cerberus.tenancy.schemas import (
    EnvironmentType,
    OrganisationRead,
    OrgRole,
    UserRead,
    WorkspaceRead,
)

router = APIRouter(responses=AUTH_RESPONSES)
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the slug or email is already taken"}
}
NO_CONTENT = status.HTTP_204_NO_CONTENT


def _allowed_hosts(request: Request) -> list[str]:
    return list(request.app.state.settings.UPSTREAM_ALLOWED_HOSTS)


@router.get("/organisations", tags=["organisations"])
async def list_organisations(
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    is_active: Annotated[bool | None, Query()] = None,
) -> Page[OrganisationRead]:
    """All organisations for a super_admin; otherwise the caller's own."""
    rows, total = await tenancy.list_organisations(session, user, page, is_active=is_active)
    items = [OrganisationRead.model_validate(row) for row in rows]
    return Page(items=items, total=total, page=page.page, per_page=page.per_page)


@router.post("/organisations", status_code=201, tags=["organisations"], responses=CONFLICT)
async def create_organisation(
    body: schemas.OrganisationCreate, actor: CurrentActor, session: SessionDep
) -> OrganisationRead:
    """super_admin only; `admin_email` and `admin_password` also create its first org_admin."""
    return OrganisationRead.model_validate(await tenancy.create_organisation(session, actor, body))


@router.get("/organisations/{org_id}", tags=["organisations"])
async def get_organisation(org_id: str, user: CurrentUser, session: SessionDep) -> OrganisationRead:
    return OrganisationRead.model_validate(await tenancy.get_organisation(session, user, org_id))


@router.patch("/organisations/{org_id}", tags=["organisations"], responses=CONFLICT)
async def update_organisation(
    org_id: str, body: schemas.OrganisationUpdate, actor: CurrentActor, session: SessionDep
) -> OrganisationRead:
    """Admins may rename and configure; only a super_admin changes `slug` or `is_active`."""
    return OrganisationRead.model_validate(
        await tenancy.update_organisation(session, actor, org_id, body)
    )


@router.delete("/organisations/{org_id}", status_code=NO_CONTENT, tags=["organisations"])
async def delete_organisation(org_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    """Soft delete (super_admin only): its people can no longer log in, its slug is freed."""
    await tenancy.delete_organisation(session, actor, org_id)
    return Response(status_code=NO_CONTENT)


@router.get("/organisations/{org_id}/workspaces", tags=["workspaces"])
async def list_workspaces(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    environment_type: Annotated[EnvironmentType | None, Query()] = None,
    is_active: Annotated[bool | None, Query()] = None,
) -> Page[WorkspaceRead]:
    rows, total = await tenancy.list_workspaces(
        session, user, org_id, page, environment_type=environment_type, is_active=is_active
    )
    items = [WorkspaceRead.model_validate(row) for row in rows]
    return Page(items=items, total=total, page=page.page, per_page=page.per_page)


@router.post(
    "/organisations/{org_id}/workspaces", status_code=201, tags=["workspaces"], responses=CONFLICT
)
async def create_workspace(
    org_id: str,
    body: schemas.WorkspaceCreate,
    request: Request,
    actor: CurrentActor,
    session: SessionDep,
) -> WorkspaceRead:
    workspace = await tenancy.create_workspace(
        session, actor, org_id, body, _allowed_hosts(request)
    )
    return WorkspaceRead.model_validate(workspace)


@router.get("/workspaces/{workspace_id}", tags=["workspaces"])
async def get_workspace(workspace_id: str, user: CurrentUser, session: SessionDep) -> WorkspaceRead:
    return WorkspaceRead.model_validate(await tenancy.get_workspace(session, user, workspace_id))


@router.patch("/workspaces/{workspace_id}", tags=["workspaces"], responses=CONFLICT)
async def update_workspace(
    workspace_id: str,
    body: schemas.WorkspaceUpdate,
    request: Request,
    actor: CurrentActor,
    session: SessionDep,
) -> WorkspaceRead:
    workspace = await tenancy.update_workspace(
        session, actor, workspace_id, body, _allowed_hosts(request)
    )
    return WorkspaceRead.model_validate(workspace)


@router.delete("/workspaces/{workspace_id}", status_code=NO_CONTENT, tags=["workspaces"])
async def delete_workspace(workspace_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    """Soft delete; every agent of the workspace is revoked."""
    await tenancy.delete_workspace(session, actor, workspace_id)
    return Response(status_code=NO_CONTENT)


@router.get("/organisations/{org_id}/users", tags=["users"])
async def list_users(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    role: Annotated[OrgRole | None, Query()] = None,
    is_active: Annotated[bool | None, Query()] = None,
) -> Page[UserRead]:
    rows, total = await tenancy.list_users(
        session, user, org_id, page, role=role, is_active=is_active
    )
    items = [UserRead.model_validate(row) for row in rows]
    return Page(items=items, total=total, page=page.page, per_page=page.per_page)


@router.post("/organisations/{org_id}/users", status_code=201, tags=["users"], responses=CONFLICT)
async def create_user(
    org_id: str, body: schemas.UserCreate, actor: CurrentActor, session: SessionDep
) -> UserRead:
    return UserRead.model_validate(await tenancy.create_user(session, actor, org_id, body))


@router.get("/users/{user_id}", tags=["users"])
async def get_user(user_id: str, user: CurrentUser, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await tenancy.get_user(session, user, user_id))


@router.patch("/users/{user_id}", tags=["users"], responses=CONFLICT)
async def update_user(
    user_id: str, body: schemas.UserUpdate, actor: CurrentActor, session: SessionDep
) -> UserRead:
    """Admins edit anyone in their organisation; everyone may change their own name and password."""
    return UserRead.model_validate(await tenancy.update_user(session, actor, user_id, body))


@router.delete("/users/{user_id}", status_code=NO_CONTENT, tags=["users"])
async def delete_user(user_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    await tenancy.delete_user(session, actor, user_id)
    return Response(status_code=NO_CONTENT)
