"""JWTs for people: short-lived access tokens and rotating refresh tokens, HS256 only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cerberus.db import utcnow
from cerberus.errors import Unauthorized
from cerberus.settings import Settings
from cerberus.tenancy.models import User

ALGORITHM = "HS256"
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
    import jwt  # see decode

    token = jwt.encode(payload, settings.SECRET_KEY.get_secret_value(), algorithm=ALGORITHM)
    return IssuedToken(token=token, jti=jti, expires_at=expires_at)


def decode(token: str, settings: Settings, expected: TokenType) -> TokenClaims:
    """The token's claims, or 401: expired, tampered, wrongly signed, `alg: none`, wrong type."""
    # Imported on first use: PyJWT loads the `cryptography` package when it is installed
    # (+10.5 MiB resident), which a process serving only the proxy never needs.
    import jwt

    try:
        payload = jwt.decode(
            token,
            settings.SECRET_KEY.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", headers=BEARER_CHALLENGE) from None
    except jwt.PyJWTError:
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
