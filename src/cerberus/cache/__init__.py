"""The shared cache: one interface, backed by Valkey/Redis in production or memory locally."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import NamedTuple

from cerberus.settings import Settings

Subscriber = Callable[[bytes], None]


class WindowResult(NamedTuple):
    """The outcome of one hit on a sliding-window counter.

    `allowed` says the window had room; `size` is the count of hits in the window after
    this one (which is not counted when a window is full, or when another enforced window
    of the same call was).

    A tuple, not a frozen dataclass: every rate-limited call makes one per window, and the
    dataclass cost several times as much to build.
    """

    allowed: bool
    size: int
    retry_after_seconds: float


class Window(NamedTuple):
    """One sliding window hit by a call of `Cache.hit_sliding_windows`."""

    key: str
    limit: int
    window_seconds: float
    # A full enforced window refuses the hit in every window of the call; a full window
    # that is not enforced (a log-only limit) only goes uncounted itself.
    enforced: bool = True


class Cache(abc.ABC):
    """What the gateway needs from a shared cache; both implementations behave the same."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the key; True if it existed."""

    async def hit_sliding_window(self, key: str, limit: int, window_seconds: float) -> WindowResult:
        """Count one event in an exact sliding window, atomically, unless the window is full.

        A denied hit is not counted, so a client that keeps retrying does not extend its wait.
        """
        (result,) = await self.hit_sliding_windows((Window(key, limit, window_seconds),))
        return result

    @abc.abstractmethod
    async def hit_sliding_windows(self, windows: Sequence[Window]) -> list[WindowResult]:
        """Count one event in several exact sliding windows at once, atomically (one round trip).

        Either every window with room counts the event, or, when an enforced window is full,
        none does: a refused request uses up no other limit. A key given twice counts twice,
        in order. Results are in the order of `windows`.
        """

    @abc.abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, channel: str, handler: Subscriber) -> None:
        """Call handler for every message later published on channel, by any instance."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the cache cannot be reached."""

    @abc.abstractmethod
    async def close(self) -> None: ...


def create_cache(settings: Settings) -> Cache:
    if settings.REDIS_URL:
        from cerberus.cache.redis import RedisCache

        return RedisCache(settings.REDIS_URL, pool_size=settings.REDIS_POOL_SIZE)
    from cerberus.cache.memory import MemoryCache

    return MemoryCache()
