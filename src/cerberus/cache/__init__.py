"""The shared cache: one interface, backed by Valkey/Redis in production or memory locally."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from cerberus.settings import Settings

Subscriber = Callable[[bytes], None]


@dataclass(frozen=True)
class WindowResult:
    """The outcome of one hit on a sliding-window counter."""

    allowed: bool
    count: int
    retry_after_seconds: float


class Cache(abc.ABC):
    """What the gateway needs from a shared cache; both implementations behave the same."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the key; True if it existed."""

    @abc.abstractmethod
    async def hit_sliding_window(self, key: str, limit: int, window_seconds: float) -> WindowResult:
        """Count one event in an exact sliding window, atomically, unless the window is full.

        A denied hit is not counted, so a client that keeps retrying does not extend its wait.
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
