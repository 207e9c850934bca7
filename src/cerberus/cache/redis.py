"""The Valkey/Redis cache: shared by all instances, atomic counters in Lua, pub/sub invalidation."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
from collections import defaultdict
from collections.abc import Sequence

from cerberus.cache import Cache, Subscriber, Window, WindowResult
from cerberus.cache.resp import (
    Client,
    RedisError,
    ReplyError,
    Subscription,
    bulk_strings,
    parse_url,
)

logger = logging.getLogger("cerberus.cache")

# Server time keeps every instance on one clock; a sorted set of hit times is an exact window.
# KEYS: one per window. ARGV[1]: a member unique to this call; then, per window, its limit,
# its length in ms and 1 if a full window refuses the hit everywhere. The reply is one string
# of three numbers per window (had room, count, retry ms): one bulk string to read.
SLIDING_WINDOWS = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sizes, earlier, room, pending = {}, {}, {}, {}
local refused = false
for i = 1, #KEYS do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - tonumber(ARGV[i * 3]))
  sizes[i] = redis.call('ZCARD', key)
  earlier[i] = pending[key] or 0
  if sizes[i] + earlier[i] < tonumber(ARGV[i * 3 - 1]) then
    room[i] = true
    pending[key] = earlier[i] + 1
  elseif ARGV[i * 3 + 1] == '1' then
    refused = true
  end
end
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local window_ms = tonumber(ARGV[i * 3])
  local count = sizes[i]
  if not refused then count = count + earlier[i] end
  if room[i] then
    if not refused then
      redis.call('ZADD', key, now_ms, ARGV[1] .. ':' .. i)
      redis.call('PEXPIRE', key, window_ms)
      count = count + 1
    end
    out[i] = '1 ' .. count .. ' 0'
  else
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local retry_ms = window_ms
    if oldest[2] then retry_ms = tonumber(oldest[2]) + window_ms - now_ms end
    if retry_ms < 0 then retry_ms = 0 end
    out[i] = '0 ' .. count .. ' ' .. retry_ms
  end
end
return table.concat(out, ' ')
"""
SLIDING_WINDOWS_SHA = hashlib.sha1(SLIDING_WINDOWS.encode()).hexdigest()


# How long one command may take, waiting for a free connection included.
COMMAND_TIMEOUT_SECONDS = 5.0
# Packed rate-limit commands kept per set of windows (one per agent and tool, or so).
MAX_FRAMES = 4096


class RedisCache(Cache):
    """The cache on a Redis or Valkey server, through the gateway's own client (cache/resp.py)."""

    def __init__(
        self, url: str, *, pool_size: int, timeout: float = COMMAND_TIMEOUT_SECONDS
    ) -> None:
        address = parse_url(url)
        # Each command has `timeout` seconds from its start, waiting for a connection
        # included; a connection that timed out or was cancelled mid-reply is closed.
        # Subscriptions hold one connection more than the pool.
        self._client = Client(address, pool_size)
        self._subscription = Subscription(address, self._on_message)
        self._timeout = timeout
        # Window members need only be unique: a random prefix per process and a counter.
        self._member_prefix = os.urandom(8).hex()
        self._members = itertools.count()
        self._handlers: defaultdict[str, list[Subscriber]] = defaultdict(list)
        self._frames: dict[tuple[Window, ...], tuple[bytes, bytes]] = {}

    def _deadline(self) -> float:
        """When a command started now must have been answered (loop time)."""
        return asyncio.get_running_loop().time() + self._timeout

    async def get(self, key: str) -> bytes | None:
        value = await self._client.call("GET", key, deadline=self._deadline())
        if value is None or isinstance(value, bytes):
            return value
        raise RedisError(f"unexpected reply to GET: {type(value).__name__}")

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        deadline = self._deadline()
        if ttl_seconds is None:
            await self._client.call("SET", key, value, deadline=deadline)
        else:
            ttl_ms = max(int(ttl_seconds * 1000), 1)
            await self._client.call("SET", key, value, "PX", ttl_ms, deadline=deadline)

    async def delete(self, key: str) -> bool:
        return bool(await self._client.call("DEL", key, deadline=self._deadline()))

    async def hit_sliding_windows(self, windows: Sequence[Window]) -> list[WindowResult]:
        if not windows:
            return []
        before, after = self._script_frame(tuple(windows))
        member = f"{self._member_prefix}{next(self._members)}".encode()
        command = b"%b$%d\r\n%b\r\n%b" % (before, len(member), member, after)
        deadline = self._deadline()
        try:
            reply = await self._client.send(command, deadline)
        except ReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
            # Not run (a restarted or flushed server): load it and run it once.
            await self._client.call("SCRIPT", "LOAD", SLIDING_WINDOWS, deadline=deadline)
            reply = await self._client.send(command, deadline)
        if not isinstance(reply, bytes):
            raise RedisError(f"unexpected reply to the rate-limit script: {type(reply).__name__}")
        parts = reply.split()
        return [
            WindowResult(parts[at] == b"1", int(parts[at + 1]), int(parts[at + 2]) / 1000.0)
            for at in range(0, len(parts), 3)
        ]

    def _script_frame(self, windows: tuple[Window, ...]) -> tuple[bytes, bytes]:
        """The rate-limit command packed but for its member (a call's windows recur: the
        same agent and tool hit the same keys with the same limits)."""
        frame = self._frames.get(windows)
        if frame is None:
            keys = [window.key for window in windows]
            arguments: list[str | int] = []
            for window in windows:
                arguments += (
                    window.limit,
                    max(int(window.window_seconds * 1000), 1),
                    1 if window.enforced else 0,
                )
            head: list[str | int] = ["EVALSHA", SLIDING_WINDOWS_SHA, len(keys), *keys]
            size = len(head) + 1 + len(arguments)  # the member goes between the two
            frame = (b"*%d\r\n%b" % (size, bulk_strings(head)), bulk_strings(arguments))
            if len(self._frames) >= MAX_FRAMES:
                self._frames.clear()
            self._frames[windows] = frame
        return frame

    async def publish(self, channel: str, message: bytes) -> None:
        try:
            await self._client.call("PUBLISH", channel, message, deadline=self._deadline())
        except BaseException:
            # This instance's own subscribers hear it anyway: the change was made here, and
            # while Redis is down it kept using what the change made stale (a revoked key,
            # an old policy) for a whole TTL. The others have only their TTLs.
            self._on_message(channel, message)
            raise

    async def subscribe(self, channel: str, handler: Subscriber) -> None:
        async with asyncio.timeout(self._timeout):
            await self._subscription.subscribe(channel)
        # Only once subscribed: a caller that retries after a failure adds it once.
        self._handlers[channel].append(handler)

    def _on_message(self, channel: str, data: bytes) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(data)
            except Exception:
                logger.exception("cache subscriber failed")

    async def ping(self) -> None:
        await self._client.call("PING", deadline=self._deadline())

    async def close(self) -> None:
        await self._subscription.close()
        await self._client.close()
