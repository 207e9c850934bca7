"""The Valkey/Redis cache: shared by all instances, atomic counters in Lua, pub/sub invalidation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from cerberus.cache import Cache, Subscriber, WindowResult

logger = logging.getLogger("cerberus.cache")

# Server time keeps every instance on one clock; a sorted set of hit times is an exact window.
SLIDING_WINDOW = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now_ms, member)
  redis.call('PEXPIRE', key, window_ms)
  return {1, count + 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local retry_ms = window_ms
if oldest[2] then retry_ms = tonumber(oldest[2]) + window_ms - now_ms end
if retry_ms < 0 then retry_ms = 0 end
return {0, count, retry_ms}
"""


class RedisCache(Cache):
    def __init__(self, url: str, *, pool_size: int) -> None:
        # One connection more than the pool size: the pub/sub listener holds one of its own.
        self._pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size + 1, timeout=5, socket_connect_timeout=2
        )
        self._redis = Redis(connection_pool=self._pool)
        self._window_script = self._redis.register_script(SLIDING_WINDOW)
        self._handlers: defaultdict[str, list[Subscriber]] = defaultdict(list)
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(key)
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        if ttl_seconds is None:
            await self._redis.set(key, value)
        else:
            await self._redis.set(key, value, px=max(int(ttl_seconds * 1000), 1))

    async def delete(self, key: str) -> bool:
        return bool(await self._redis.delete(key))

    async def hit_sliding_window(self, key: str, limit: int, window_seconds: float) -> WindowResult:
        window_ms = max(int(window_seconds * 1000), 1)
        result: list[Any] = await self._window_script(
            keys=[key], args=[limit, window_ms, uuid.uuid4().hex]
        )
        allowed, count, retry_ms = (int(part) for part in result)
        return WindowResult(
            allowed=bool(allowed), count=count, retry_after_seconds=retry_ms / 1000.0
        )

    async def publish(self, channel: str, message: bytes) -> None:
        await self._redis.publish(channel, message)

    async def subscribe(self, channel: str, handler: Subscriber) -> None:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._handlers[channel].append(handler)
        await self._pubsub.subscribe(channel)
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(self._pubsub))

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                # The broker went away; keep trying, the TTL on cached entries is the safety net.
                logger.warning("cache subscription lost; reconnecting")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            name = channel.decode() if isinstance(channel, bytes) else str(channel)
            for handler in list(self._handlers.get(name, ())):
                try:
                    handler(message["data"])
                except Exception:
                    logger.exception("cache subscriber failed")

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()
        await self._pool.aclose()
