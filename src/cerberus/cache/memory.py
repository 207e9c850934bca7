"""The in-process cache used when REDIS_URL is unset: one process, no network, same behaviour."""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence

from cerberus.cache import Cache, Subscriber, Window, WindowResult
from cerberus.sweeping import Sweeper

logger = logging.getLogger("cerberus.cache")


class _HitLog:
    """A window's admission times, oldest first, 8 bytes each in an array (a deque of floats
    took 32: a busy agent under a high hourly limit keeps an hour of them)."""

    __slots__ = ("_start", "times", "window_seconds")
    # MemoryCache appends to `times` itself (admission times come in order): a method call
    # per window of every request cost more than the append.

    def __init__(self, window_seconds: float) -> None:
        self.times = array("d")
        self._start = 0  # times before this index have left the window
        self.window_seconds = window_seconds

    def __len__(self) -> int:
        return len(self.times) - self._start

    def oldest(self) -> float:
        return self.times[self._start]

    def empty_at(self, now: float) -> bool:
        """True when every time it holds has left the window by `now`."""
        times = self.times
        return len(times) == self._start or times[-1] <= now - self.window_seconds

    def live(self, cutoff: float) -> int:
        """Forget the times at or before `cutoff`; how many are left. Mostly none has left
        since the last call (or only the oldest), which one look at the oldest tells."""
        times = self.times
        if self._start < len(times) and times[self._start] <= cutoff:
            self.drop_until(cutoff)
        return len(times) - self._start

    def drop_until(self, cutoff: float) -> None:
        """Forget the times at or before `cutoff`."""
        times = self.times
        start = bisect_right(times, cutoff, self._start)
        # Compacted once the dead head is the larger part: amortised O(1) per admission.
        if start == len(times) or (start > 1024 and start * 2 > len(times)):
            del times[:start]
            start = 0
        self._start = start


class MemoryCache(Cache):
    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}
        # (expiry, key) of every value set with a TTL: a value nobody reads again is dropped
        # when it expires, not kept for the life of the process.
        self._expiries: list[tuple[float, str]] = []
        self._windows: dict[str, _HitLog] = {}
        # A window per agent and per limited tool name: those nobody has hit for their whole
        # length are dropped, however many names were tried.
        self._window_sweeper = Sweeper()
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
        now = time.monotonic()
        self._drop_expired(now)
        expires_at = now + ttl_seconds if ttl_seconds is not None else None
        # A copy of exactly its size: the bytes orjson.dumps returns keep its whole output
        # buffer (4 KiB for an 80-byte value), and a value stays here for its TTL.
        self._values[key] = (bytes(memoryview(value)), expires_at)
        if expires_at is not None:
            heapq.heappush(self._expiries, (expires_at, key))

    def _drop_expired(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expires_at, key = heapq.heappop(expiries)
            entry = self._values.get(key)
            # Set again since with another expiry: that value stays.
            if entry is not None and entry[1] == expires_at:
                del self._values[key]

    async def delete(self, key: str) -> bool:
        existed = await self.get(key) is not None
        self._values.pop(key, None)
        self._windows.pop(key, None)
        return existed

    async def hit_sliding_windows(self, windows: Sequence[Window]) -> list[WindowResult]:
        # No await between reading and writing the windows: atomic within the event loop.
        now = time.monotonic()
        seen: list[tuple[_HitLog, int, int, bool]] = []
        pending: dict[str, int] = {}
        refused = False
        for key, limit, window_seconds, enforced in windows:
            hits = self._windows.get(key)
            if hits is None:
                self._window_sweeper.before_insert(self._windows, lambda log: log.empty_at(now))
                hits = self._windows[key] = _HitLog(window_seconds)
            size = hits.live(now - window_seconds)
            # Earlier windows of this call on the same key count first (as in the Redis script).
            earlier = pending.get(key, 0)
            room = size + earlier < limit
            if room:
                pending[key] = earlier + 1
            elif enforced:
                refused = True
            seen.append((hits, size, earlier, room))
        results = []
        for (hits, size, earlier, room), window in zip(seen, windows, strict=True):
            count = size if refused else size + earlier
            if room:
                if not refused:
                    hits.times.append(now)
                    count += 1
                # tuple.__new__ skips the named tuple's Python-level __new__.
                results.append(tuple.__new__(WindowResult, (True, count, 0.0)))
            else:
                retry_after = (
                    hits.oldest() + window.window_seconds - now if hits else window.window_seconds
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
