"""One run per key for concurrent callers, shared by all of them.

A cache miss under load is many misses at once: every request in flight for the same agent
or policy set. Without this each of them loads from the database on its own (the agent
lookup, the policy pipelines).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


async def run_once(
    running: dict[K, asyncio.Future[V]], key: K, run: Callable[[], Awaitable[V]]
) -> V:
    """`run()`'s result, or that of the run already going for `key` (its error too)."""
    pending = running.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
    running[key] = future
    try:
        value = await run()
        future.set_result(value)
        return value
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved here so an unawaited future logs nothing
        raise
    finally:
        del running[key]
