"""JWTs for people: short-lived access tokens and rotating refresh tokens, HS256 only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cerberus.auth import hs256
from cerberus.db import utcnow
from cerberus.errors import Unauthorized
from cerberus.settings import Settings
from cerberus.tenancy.models import User

TokenType = Literal["access", "refresh"]
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_REQUIRED_CLAIMS = ["sub", "type", "jti", "exp", "iat"]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    organisation_id: str | None
    role: str
    type: TokenType
    jti: str
    expires_at: datetime


def issue(user: User, settings: Settings, token_type: TokenType) -> IssuedToken:
    now = utcnow()
    if token_type == "access":
        lifetime = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    else:
        lifetime = timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)
    expires_at = now + lifetime
    jti = uuid.uuid4().hex
    payload: dict[str, Any] = {
        "sub": user.id,
        "org": user.organisation_id,
        "role": user.role,
        "type": token_type,
        "jti": jti,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = hs256.encode(payload, settings.SECRET_KEY.get_secret_value())
    return IssuedToken(token=token, jti=jti, expires_at=expires_at)


def decode(token: str, settings: Settings, expected: TokenType) -> TokenClaims:
    """The token's claims, or 401: expired, tampered, wrongly signed, `alg: none`, wrong type."""
    try:
        payload = hs256.decode(
            token, settings.SECRET_KEY.get_secret_value(), required=_REQUIRED_CLAIMS
        )
    except hs256.ExpiredToken:
        raise Unauthorized("token expired", headers=BEARER_CHALLENGE) from None
    except hs256.InvalidToken:
        raise Unauthorized("invalid token", headers=BEARER_CHALLENGE) from None
    if payload.get("type") != expected:
        raise Unauthorized(f"wrong token type, expected {expected}", headers=BEARER_CHALLENGE)
    subject, jti = payload.get("sub"), payload.get("jti")
    if not isinstance(subject, str) or not isinstance(jti, str):
        raise Unauthorized("invalid token", headers=BEARER_CHALLENGE)
    organisation = payload.get("org")
    return TokenClaims(
        subject=subject,
        organisation_id=organisation if isinstance(organisation, str) else None,
        role=str(payload.get("role", "")),
        type=expected,
        jti=jti,
        expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=utcnow().tzinfo),
    )
