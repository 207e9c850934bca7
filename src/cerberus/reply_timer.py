"""A deadline on one awaited reply, as a loop timer rather than `asyncio.timeout`.

The upstream client and the cache client wait for a reply on every proxied call;
`asyncio.timeout` (its task bookkeeping and rescheduling) cost about a fifth of a
rate-limited call's client-side CPU, a timer on the reply's future almost nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any


def expire_at(
    loop: asyncio.AbstractEventLoop, deadline: float, waiter: asyncio.Future[Any]
) -> asyncio.TimerHandle:
    """Fail `waiter` with TimeoutError at `deadline` (loop time) unless it is done by then;
    cancel the returned timer once the reply is in."""
    return loop.call_at(deadline, _expire, waiter)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
