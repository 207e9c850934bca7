"""Password hashing with bcrypt; checks take the same time whether or not the account exists.

A hash or a check is 0.3-0.7 s of CPU. Request handlers await `hash_password_in_thread` and
`verify_password_in_thread`: on the event loop, each login (and each failed one, which
anyone can send) held every request of the process, proxied calls included, for that long.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
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


# One thread: bcrypt releases the GIL, so the loop keeps running, and a flood of logins
# queues here rather than taking both cores from the proxied calls.
_HASHING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cerberus-password")


async def hash_password_in_thread(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_in_thread(password: str, password_hash: str | None) -> bool:
    return await asyncio.get_running_loop().run_in_executor(
        _HASHING, verify_password, password, password_hash
    )


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
