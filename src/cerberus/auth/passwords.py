"""Password hashing with bcrypt; checks take the same time whether or not the account exists.

A hash or a check is 0.3-0.7 s of CPU. Request handlers await `hash_password_in_thread` and
`verify_password_in_thread`: on the event loop, each login (and each failed one, which
anyone can send) held every request of the process, proxied calls included, for that long.
They share one thread, and a login finding MAX_QUEUED_CHECKS already there is refused at
once (429) rather than queued: a flood of logins would otherwise grow the queue, and every
login's wait, without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar

import bcrypt

from cerberus.errors import TooManyRequests

# bcrypt only reads the first 72 bytes; longer passwords are refused at the schema.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_LENGTH = 8
# Hashes and checks queued or running in this process's password thread, at most, when a
# login arrives: 16 checks are 5-11 s of waiting for the last of them.
MAX_QUEUED_CHECKS = 16
BUSY_RETRY_SECONDS = 1

T = TypeVar("T")


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
_queued = 0  # hashes and checks handed to _HASHING and not yet answered


async def _in_thread(call: Callable[..., T], *args: Any) -> T:
    global _queued
    _queued += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_HASHING, call, *args)
    finally:
        _queued -= 1


async def hash_password_in_thread(password: str) -> str:
    """Queued whatever the queue holds: only an authenticated admin (or start-up) sets one."""
    return await _in_thread(hash_password, password)


async def verify_password_in_thread(password: str, password_hash: str | None) -> bool:
    """A login's check; TooManyRequests when MAX_QUEUED_CHECKS are queued or running."""
    # No await between this test and _in_thread's count: one event loop, so no race.
    if _queued >= MAX_QUEUED_CHECKS:
        raise TooManyRequests(
            f"too many logins in progress; try again in {BUSY_RETRY_SECONDS} second",
            headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
        )
    return await _in_thread(verify_password, password, password_hash)


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
