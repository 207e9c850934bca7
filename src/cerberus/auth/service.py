"""Logging people in and rotating their refresh tokens."""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.auth import lockout, tokens
from cerberus.auth.passwords import verify_password_in_thread
from cerberus.auth.schemas import TokenPair
from cerberus.auth.tokens import BEARER_CHALLENGE
from cerberus.cache import Cache
from cerberus.db import utcnow
from cerberus.errors import Unauthorized
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, RefreshToken, User

logger = logging.getLogger("cerberus.auth")

INVALID_LOGIN = "invalid email or password"
REFRESH_REFUSED = "refresh token already used or unknown"


class RefreshTokenReused(Unauthorized):
    """The 401 of a used refresh token presented again, whose login's tokens were ended in
    the session: the caller commits that before answering (an error rolls it back)."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def login(
    session: AsyncSession, cache: Cache, settings: Settings, email: str, password: str
) -> TokenPair:
    email = normalise_email(email)
    await lockout.ensure_not_locked(cache, email)
    user = await session.scalar(select(User).where(User.email == email))
    # Nothing is written yet: ending the read here gives the database connection back while
    # the password check waits its turn (a flood of logins would otherwise hold the whole
    # pool, which the proxy's key lookups and the audit writer share). The user stays loaded.
    await session.commit()
    # Always one bcrypt check, so timing does not tell which accounts exist.
    password_ok = await verify_password_in_thread(password, user.password_hash if user else None)
    if user is None or not password_ok or not await _may_log_in(session, user):
        await lockout.record_failure(cache, settings, email)
        raise Unauthorized(INVALID_LOGIN)
    # Again: guesses sent together all passed the first check, and the ones checked before
    # this one may have locked the account meanwhile (a right guess among many is refused).
    await lockout.ensure_not_locked(cache, email)
    await lockout.clear_failures(cache, email)
    user.last_login_at = utcnow()
    return await issue_pair(session, user, settings)


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> TokenPair:
    """A new pair for a refresh token that was never used. A second use is refused, and ends
    every token of its login (RFC 9700 4.14.2): one of the two users is not its owner."""
    claims = tokens.decode(refresh_token, settings, expected="refresh")
    this_token = (RefreshToken.jti == claims.jti, RefreshToken.user_id == claims.subject)
    # One conditional UPDATE: of two concurrent uses of the same token only one can win.
    used = await _use_refresh_tokens(session, *this_token)
    token = await session.scalar(select(RefreshToken).where(*this_token))
    if used != 1 or token is None:
        if token is not None:
            await _end_login(session, token)
            raise RefreshTokenReused(REFRESH_REFUSED, headers=BEARER_CHALLENGE)
        raise Unauthorized(REFRESH_REFUSED, headers=BEARER_CHALLENGE)
    user = await session.get(User, claims.subject)
    if user is None or not await _may_log_in(session, user):
        raise Unauthorized("user is not active", headers=BEARER_CHALLENGE)
    return await issue_pair(session, user, settings, family=token.family or token.jti)


async def _end_login(session: AsyncSession, reused: RefreshToken) -> None:
    """A used (or revoked) refresh token came back: it was copied, and whoever refreshed
    with it first, its owner or a thief, holds the login's live token. That one ends too."""
    family = reused.family or reused.jti
    ended = await _use_refresh_tokens(
        session, or_(RefreshToken.family == family, RefreshToken.jti == family)
    )
    logger.warning(
        "used refresh token presented again; its login ended",
        extra={"user_id": reused.user_id, "tokens_ended": ended},
    )


async def logout(session: AsyncSession, settings: Settings, refresh_token: str) -> None:
    """The refresh token stops working (its access token lasts until it expires)."""
    claims = tokens.decode(refresh_token, settings, expected="refresh")
    await _use_refresh_tokens(session, RefreshToken.jti == claims.jti)


async def revoke_refresh_tokens(session: AsyncSession, user_id: str) -> None:
    """Every refresh token of a user stops working: their password changed, so one a thief
    took with the old password (or used first) must not outlive it."""
    await _use_refresh_tokens(session, RefreshToken.user_id == user_id)


async def _use_refresh_tokens(session: AsyncSession, *which: ColumnElement[bool]) -> int:
    """Mark the unused refresh tokens that match as used; how many there were."""
    result = await session.execute(
        update(RefreshToken)
        .where(*which, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


async def issue_pair(
    session: AsyncSession, user: User, settings: Settings, *, family: str | None = None
) -> TokenPair:
    """A new login's tokens, or (with `family`) the next pair of the login it names."""
    access = tokens.issue(user, settings, "access")
    refresh_token = tokens.issue(user, settings, "refresh")
    session.add(
        RefreshToken(
            jti=refresh_token.jti,
            user_id=user.id,
            expires_at=refresh_token.expires_at,
            family=family or refresh_token.jti,
        )
    )
    await session.flush()
    return TokenPair(
        access_token=access.token,
        refresh_token=refresh_token.token,
        expires_in=settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60,
    )


async def _may_log_in(session: AsyncSession, user: User) -> bool:
    if not user.is_active or user.deleted_at is not None:
        return False
    if user.organisation_id is None:
        return True
    organisation = await session.get(Organisation, user.organisation_id)
    return organisation is not None and organisation.is_active and organisation.deleted_at is None
