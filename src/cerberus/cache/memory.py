"""The in-process cache used when REDIS_URL is unset: one process, no network, same behaviour."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque

from cerberus.cache import Cache, Subscriber, WindowResult

logger = logging.getLogger("cerberus.cache")


class MemoryCache(Cache):
    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._subscribers: defaultdict[str, list[Subscriber]] = defaultdict(list)

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= time.monotonic():
            del self._values[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        expires_at = time.monotonic() + ttl_seconds if ttl_seconds is not None else None
        self._values[key] = (value, expires_at)

    async def delete(self, key: str) -> bool:
        existed = await self.get(key) is not None
        self._values.pop(key, None)
        self._windows.pop(key, None)
        return existed

    async def hit_sliding_window(self, key: str, limit: int, window_seconds: float) -> WindowResult:
        # No await between reading and writing the window: atomic within the event loop.
        now = time.monotonic()
        hits = self._windows.setdefault(key, deque())
        while hits and hits[0] <= now - window_seconds:
            hits.popleft()
        if len(hits) < limit:
            hits.append(now)
            return WindowResult(allowed=True, count=len(hits), retry_after_seconds=0.0)
        retry_after = hits[0] + window_seconds - now if hits else window_seconds
        return WindowResult(
            allowed=False, count=len(hits), retry_after_seconds=max(retry_after, 0.0)
        )

    async def publish(self, channel: str, message: bytes) -> None:
        loop = asyncio.get_running_loop()
        for handler in list(self._subscribers.get(channel, ())):
            # Delivered after the publisher continues, as with a real broker.
            loop.call_soon(_deliver, handler, message)

    async def subscribe(self, channel: str, handler: Subscriber) -> None:
        self._subscribers[channel].append(handler)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._subscribers.clear()


def _deliver(handler: Subscriber, message: bytes) -> None:
    try:
        handler(message)
    except Exception:
        logger.exception("cache subscriber failed")
