"""Slowing and then refusing repeated failed logins for one account, across every instance.

Failures are counted in the shared cache (a sliding window of LOGIN_LOCKOUT_SECONDS), so an
attacker gains nothing by spreading guesses over instances. Each failure waits a little
longer before answering; the LOGIN_MAX_FAILURES-th locks the account for
LOGIN_LOCKOUT_SECONDS, during which even the right password answers 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time

from cerberus.cache import Cache
from cerberus.errors import TooManyRequests
from cerberus.settings import Settings

_FAILURES = "cerberus:login:failures:"
_LOCKED = "cerberus:login:locked:"
BASE_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 2.0


def _account_key(email: str) -> str:
    # Hashed so the cache never holds the address itself.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


async def ensure_not_locked(cache: Cache, email: str) -> None:
    raw = await cache.get(_LOCKED + _account_key(email))
    if raw is None:
        return
    remaining = float(raw.decode()) - time.time()
    retry_after = max(math.ceil(remaining), 1)
    raise TooManyRequests(
        f"too many failed logins; try again in {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
    )


async def record_failure(cache: Cache, settings: Settings, email: str) -> None:
    """Count one failure, wait, and lock the account once the limit is reached."""
    account = _account_key(email)
    window = await cache.hit_sliding_window(
        _FAILURES + account, settings.LOGIN_MAX_FAILURES, settings.LOGIN_LOCKOUT_SECONDS
    )
    if not window.allowed or window.size >= settings.LOGIN_MAX_FAILURES:
        until = time.time() + settings.LOGIN_LOCKOUT_SECONDS
        await cache.set(
            _LOCKED + account, str(until).encode(), ttl_seconds=settings.LOGIN_LOCKOUT_SECONDS
        )
        await cache.delete(_FAILURES + account)
        await ensure_not_locked(cache, email)
    await asyncio.sleep(min(BASE_DELAY_SECONDS * 2 ** (window.size - 1), MAX_DELAY_SECONDS))


async def clear_failures(cache: Cache, email: str) -> None:
    await cache.delete(_FAILURES + _account_key(email))
