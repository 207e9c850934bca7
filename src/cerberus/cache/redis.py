"""The Valkey/Redis cache: shared by all instances, atomic counters in Lua, pub/sub invalidation."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError

from cerberus.cache import Cache, Subscriber, Window, WindowResult

logger = logging.getLogger("cerberus.cache")

# Server time keeps every instance on one clock; a sorted set of hit times is an exact window.
# KEYS: one per window. ARGV[1]: a member unique to this call; then, per window, its limit,
# its length in ms and 1 if a full window refuses the hit everywhere. The reply is one string
# of three numbers per window (had room, count, retry ms): one bulk string is far cheaper
# for redis-py's pure-Python parser than an array of integers.
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


# How long one command may take, waiting for a pooled connection included.
COMMAND_TIMEOUT_SECONDS = 5.0


def _packed(args: tuple[str | int, ...]) -> bytes:
    """A command in RESP (redis-py's packer, general, cost a third of the call here)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Lane:
    """Connections of its own for the one command every proxied call sends (the rate-limit
    script), used without redis-py's command path: its retry wrapper, option handling and
    the blocking pool's condition cost more CPU than the command (24 % of a PostgreSQL +
    Redis gateway's CPU at concurrency 32, docs/benchmarks.md). At most `size` calls run at
    once, each on its own connection, and connections are kept for the next calls (closing
    the ones above a cap reopened one per call under load); one whose state is unknown after
    a failure or cancellation is closed."""

    def __init__(self, pool: BlockingConnectionPool, size: int) -> None:
        self._pool = pool
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AbstractConnection] = []

    async def call(self, *args: str | int) -> object:
        async with self._slots:
            reused = bool(self._idle)
            try:
                return await self._call(self._idle.pop() if reused else self._new(), args)
            except (ConnectionError, OSError):
                if not reused:
                    raise
                # An idle connection the server or a proxy closed meanwhile (a restart, an
                # idle timeout): tried once more on a new one, as redis-py's own retry would.
                return await self._call(self._new(), args)

    async def _call(self, connection: AbstractConnection, args: tuple[str | int, ...]) -> object:
        try:
            await connection.send_packed_command(_packed(args), check_health=False)
            reply = await connection.read_response()
        except ResponseError:
            self._idle.append(connection)  # an error reply, read whole: the connection is fine
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)
            raise
        self._idle.append(connection)
        return reply

    def _new(self) -> AbstractConnection:
        # TCP, TLS or a Unix socket: whatever the URL gave the pool.
        connection: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        return connection

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.disconnect()


class RedisCache(Cache):
    def __init__(
        self, url: str, *, pool_size: int, timeout: float = COMMAND_TIMEOUT_SECONDS
    ) -> None:
        # One connection more than the pool size: the pub/sub listener holds one of its own.
        # No socket timeout inside redis-py: on Python 3.11 it wraps every send in
        # asyncio.wait_for, a new task per command (~15 µs). Each command here runs under one
        # asyncio.timeout instead; redis-py drops a connection cancelled mid-reply.
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size + 1,
            timeout=timeout,
            socket_connect_timeout=2,
            socket_timeout=None,
        )
        self._timeout = timeout
        self._redis = Redis(connection_pool=self._pool)
        self._lane = _Lane(self._pool, pool_size)
        # Window members need only be unique: a random prefix per process and a counter.
        self._member_prefix = os.urandom(8).hex()
        self._members = itertools.count()
        self._handlers: defaultdict[str, list[Subscriber]] = defaultdict(list)
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def get(self, key: str) -> bytes | None:
        async with asyncio.timeout(self._timeout):
            value = await self._redis.get(key)
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        async with asyncio.timeout(self._timeout):
            if ttl_seconds is None:
                await self._redis.set(key, value)
            else:
                await self._redis.set(key, value, px=max(int(ttl_seconds * 1000), 1))

    async def delete(self, key: str) -> bool:
        async with asyncio.timeout(self._timeout):
            return bool(await self._redis.delete(key))

    async def hit_sliding_windows(self, windows: Sequence[Window]) -> list[WindowResult]:
        if not windows:
            return []
        arguments: list[str | int] = [f"{self._member_prefix}{next(self._members)}"]
        for window in windows:
            arguments += (
                window.limit,
                max(int(window.window_seconds * 1000), 1),
                1 if window.enforced else 0,
            )
        keys = [window.key for window in windows]
        command = ("EVALSHA", SLIDING_WINDOWS_SHA, len(keys), *keys, *arguments)
        async with asyncio.timeout(self._timeout):
            try:
                reply = await self._lane.call(*command)
            except NoScriptError:
                # Not run (a restarted or flushed server): load it and run it once.
                await self._redis.script_load(SLIDING_WINDOWS)
                reply = await self._lane.call(*command)
        if not isinstance(reply, bytes):
            raise RedisError(f"unexpected reply to the rate-limit script: {type(reply).__name__}")
        parts = reply.split()
        return [
            WindowResult(parts[at] == b"1", int(parts[at + 1]), int(parts[at + 2]) / 1000.0)
            for at in range(0, len(parts), 3)
        ]

    async def publish(self, channel: str, message: bytes) -> None:
        async with asyncio.timeout(self._timeout):
            await self._redis.publish(channel, message)

    async def subscribe(self, channel: str, handler: Subscriber) -> None:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._handlers[channel].append(handler)
        async with asyncio.timeout(self._timeout):
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
        async with asyncio.timeout(self._timeout):
            await self._redis.ping()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._lane.close()
        await self._redis.aclose()
        await self._pool.aclose()
