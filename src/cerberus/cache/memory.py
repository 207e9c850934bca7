"""The in-process cache used when REDIS_URL is unset: one process, no network, same behaviour."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Sequence

from cerberus.cache import Cache, Subscriber, Window, WindowResult

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

    async def hit_sliding_windows(self, windows: Sequence[Window]) -> list[WindowResult]:
        # No await between reading and writing the windows: atomic within the event loop.
        now = time.monotonic()
        seen: list[tuple[deque[float], int, int, bool]] = []
        pending: dict[str, int] = {}
        refused = False
        for key, limit, window_seconds, enforced in windows:
            hits = self._windows.get(key)
            if hits is None:
                hits = self._windows[key] = deque()
            cutoff = now - window_seconds
            while hits and hits[0] <= cutoff:
                hits.popleft()
            # Earlier windows of this call on the same key count first (as in the Redis script).
            earlier = pending.get(key, 0)
            room = len(hits) + earlier < limit
            if room:
                pending[key] = earlier + 1
            elif enforced:
                refused = True
            seen.append((hits, len(hits), earlier, room))
        results = []
        for (hits, size, earlier, room), window in zip(seen, windows, strict=True):
            count = size if refused else size + earlier
            if room:
                if not refused:
                    hits.append(now)
                    count += 1
                results.append(WindowResult(True, count, 0.0))
            else:
                retry_after = (
                    hits[0] + window.window_seconds - now if hits else window.window_seconds
                )
                results.append(WindowResult(False, count, max(retry_after, 0.0)))
        return results

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
