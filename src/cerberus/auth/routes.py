"""Login, refresh and "who am I" for people using the control plane."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from cerberus.auth import service as auth
from cerberus.auth.dependencies import CurrentUser
from cerberus.auth.schemas import LoginRequest, RefreshRequest, TokenPair
from cerberus.request_session import SessionDep
from cerberus.tenancy.schemas import UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or expired credentials"}
}


@router.post(
    "/login",
    responses={
        **UNAUTHORIZED,
        429: {"description": "too many failed logins, or logins in progress (see Retry-After)"},
    },
)
async def login(body: LoginRequest, request: Request, session: SessionDep) -> TokenPair:
    """Exchange email and password for an access token and a refresh token."""
    state = request.app.state
    return await auth.login(session, state.cache, state.settings, body.email, body.password)


@router.post("/refresh", responses=UNAUTHORIZED)
async def refresh(body: RefreshRequest, request: Request, session: SessionDep) -> TokenPair:
    """Exchange a refresh token (usable once) for a new pair."""
    try:
        return await auth.refresh(session, request.app.state.settings, body.refresh_token)
    except auth.RefreshTokenReused:
        await session.commit()  # the ended login must outlive the 401
        raise


@router.post("/logout", status_code=204, responses=UNAUTHORIZED)
async def logout(body: RefreshRequest, request: Request, session: SessionDep) -> None:
    """End a login: its refresh token stops working (204 also when it had been used)."""
    await auth.logout(session, request.app.state.settings, body.refresh_token)


@router.get("/me", responses=UNAUTHORIZED)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
