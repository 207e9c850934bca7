"""Password hashing with bcrypt; checks take the same time whether or not the account exists."""

from __future__ import annotations

from functools import cache

import bcrypt

# bcrypt only reads the first 72 bytes; longer passwords are refused at the schema.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_LENGTH = 8


@cache
def _dummy_hash() -> str:
    """Compared against when the account does not exist, so a miss costs as much as a hit.

    Computed on first use rather than at import: a full bcrypt hash costs 0.3-0.7 s, which
    every process start (CLI commands included) paid before.
    """
    return bcrypt.hashpw(b"cerberus-dummy-password", bcrypt.gensalt()).decode()


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-time comparison (bcrypt.checkpw); a missing hash still pays for one check."""
    candidate = password.encode()[:MAX_PASSWORD_BYTES]
    stored = (password_hash or _dummy_hash()).encode()
    try:
        matches = bcrypt.checkpw(candidate, stored)
    except ValueError:
        return False
    return matches and password_hash is not None


def check_password_strength(password: str) -> str:
    """Used by schemas: a readable reason instead of bcrypt's silent truncation."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes")
    return password
