"""Who is calling the control plane, and what they may see and change.

Routes take `user: CurrentUser` (the person behind a valid access token, 401 otherwise) and
scope every object by its organisation: `ensure_can_read(user, obj.organisation_id)` answers
404 for another tenant's object (its existence is not revealed), `ensure_can_write` also
answers 403 for a read-only viewer. Only a super_admin crosses organisations.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.auth import tokens
from cerberus.auth.roles import Role
from cerberus.auth.tokens import BEARER_CHALLENGE
from cerberus.changes.service import Actor
from cerberus.errors import Forbidden, NotFound, Unauthorized
from cerberus.request_session import SessionDep
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, User

# For OpenAPI: what any authenticated control-plane route may answer besides success.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or expired access token"},
    403: {"description": "the role may not do this (a viewer writing)"},
    404: {"description": "no such object in the caller's organisation"},
}

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from `POST /control-plane/api/v1/auth/login`.",
)


async def user_from_access_token(session: AsyncSession, settings: Settings, token: str) -> User:
    """The active user an access token names; also used by the console (token in a cookie)."""
    claims = tokens.decode(token, settings, expected="access")
    user = await session.get(User, claims.subject)
    if user is None or not user.is_active or user.deleted_at is not None:
        raise Unauthorized("user is not active", headers=BEARER_CHALLENGE)
    if user.organisation_id is not None:
        organisation = await session.get(Organisation, user.organisation_id)
        if organisation is None or not organisation.is_active or organisation.deleted_at:
            raise Unauthorized("organisation is not active", headers=BEARER_CHALLENGE)
    return user


async def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    if credentials is None:
        raise Unauthorized("missing bearer token", headers=BEARER_CHALLENGE)
    settings: Settings = request.app.state.settings
    return await user_from_access_token(session, settings, credentials.credentials)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_actor(request: Request, user: CurrentUser) -> Actor:
    """The current user and their address, for the change history of a write."""
    return Actor(user=user, client_address=request.client.host if request.client else None)


CurrentActor = Annotated[Actor, Depends(get_current_actor)]


def is_super_admin(user: User) -> bool:
    return user.role == Role.SUPER_ADMIN


def ensure_can_read(user: User, organisation_id: str | None, what: str = "object") -> None:
    """404 unless the object's organisation is the user's own (or the user is a super_admin)."""
    if is_super_admin(user):
        return
    if organisation_id is None or user.organisation_id != organisation_id:
        raise NotFound(f"{what} not found")


def ensure_can_write(user: User, organisation_id: str | None, what: str = "object") -> None:
    """As ensure_can_read, and 403 for an org_viewer, who may only read."""
    ensure_can_read(user, organisation_id, what)
    if user.role not in (Role.SUPER_ADMIN, Role.ORG_ADMIN):
        raise Forbidden(f"role {user.role} is read-only")


def ensure_super_admin(user: User) -> None:
    if not is_super_admin(user):
        raise Forbidden("only a super_admin may do this")
