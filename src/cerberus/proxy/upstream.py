"""The one HTTP client the proxy uses to reach upstream MCP servers, pooled per process.

Requests go over keep-alive HTTP/1.1 connections (proxy/http1.py), at most
MCP_MAX_CONNECTIONS open (MCP_MAX_CONNECTIONS_PER_UPSTREAM to one origin) and
MCP_MAX_KEEPALIVE_CONNECTIONS left idle. The timeout covers
getting a connection and the wait for the answer's headers, not the body: MCP streams may
stay open for minutes, so a whole-response timeout would cut them. Failures where no
request can have reached the upstream (connecting) are retried with backoff, so a tool never
runs twice; so is, once, a GET or DELETE on a kept-alive connection the upstream had closed
meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from cerberus.proxy.http1 import Answer, Connection, ConnectionBroken, request_head
from cerberus.settings import Settings

BACKOFF_SECONDS = 0.05
IDLE_GRACE_SECONDS = 1.0
# An idle connection older than this is closed rather than reused. uvicorn (which the MCP
# SDK serves with) and Node close theirs after 5 s idle: a POST written just as they close
# fails, and is not retried (it may have run a tool), so the gateway lets go first.
KEEPALIVE_SECONDS = 4.0
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})


class UpstreamTimeout(Exception):
    """The upstream did not start answering within MCP_REQUEST_TIMEOUT_SECONDS."""


class UpstreamFailed(Exception):
    """The upstream could not be reached, or the connection broke before an answer."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class Target:
    origin: Origin
    path: str  # with the query
    authority: str  # the Host header
    authorization: str | None  # from user:password in the URL, as Basic credentials


@functools.lru_cache(maxsize=512)
def target_of(url: str) -> Target:
    """Where a workspace's upstream URL points; ValueError for one that cannot be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    authority = parts.netloc.rpartition("@")[2]
    return Target(Origin(parts.scheme, parts.hostname, port), path, authority, authorization)


class Pool:
    """Keep-alive connections per origin, most recently used first."""

    def __init__(self, *, limit: int, max_idle: int, per_origin: int) -> None:
        self._limit = limit
        self._max_idle = max_idle
        self._per_origin = per_origin
        self._idle: dict[Origin, deque[Connection]] = {}
        self._idle_count = 0
        self._open: set[Connection] = set()
        self._connecting = 0
        # Open or connecting, per origin: what MCP_MAX_CONNECTIONS_PER_UPSTREAM caps.
        self._held: dict[Origin, int] = {}
        self._waiters: deque[tuple[Origin, asyncio.Future[None]]] = deque()
        self._tls: ssl.SSLContext | None = None

    async def acquire(self, origin: Origin) -> tuple[Connection, bool]:
        """A connection to `origin` and whether it served a request before."""
        while True:
            connection = self.take_idle(origin)
            if connection is not None:
                return connection, True
            if self._held.get(origin, 0) < self._per_origin and (
                len(self._open) + self._connecting < self._limit or self._evict_idle()
            ):
                return await self._connect(origin), False
            waiter = asyncio.get_running_loop().create_future()
            entry = (origin, waiter)
            self._waiters.append(entry)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then timed out: the room it was woken for is free
                raise
            finally:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def close(self) -> None:
        for connection in list(self._open):
            connection.close()

    def take_idle(self, origin: Origin) -> Connection | None:
        """A kept-alive connection to `origin` ready for a request, or None (no waiting)."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.usable and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            self._close(origin, connection)
        return None

    async def _connect(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()

        def made() -> Connection:
            return Connection(
                lambda c: self._put_idle(origin, c), lambda c: self._discard(origin, c)
            )

        self._connecting += 1
        self._held[origin] = self._held.get(origin, 0) + 1
        try:
            _, connection = await loop.create_connection(
                made,
                origin.host,
                origin.port,
                ssl=self._tls if tls else None,
                server_hostname=origin.host if tls else None,
            )
        except BaseException:
            self._connecting -= 1
            self._release(origin)
            raise
        self._connecting -= 1
        if connection.closed:
            # Lost before this coroutine resumed: its loss was not counted, as it was not
            # open yet. Nothing was sent, so the caller may retry.
            self._release(origin)
            raise ConnectionResetError("the upstream closed the connection at once")
        self._open.add(connection)
        return connection

    def _release(self, origin: Origin) -> None:
        """One connection to `origin` fewer, open or connecting: room for a waiter."""
        held = self._held[origin] - 1
        if held:
            self._held[origin] = held
        else:
            del self._held[origin]
        self._wake()

    def _put_idle(self, origin: Origin, connection: Connection) -> None:
        now = connection.idle_since = time.monotonic()
        self._idle.setdefault(origin, deque()).append(connection)
        self._idle_count += 1
        if self._idle_count > self._max_idle:
            self._trim(now)
        self._wake()

    def _trim(self, now: float) -> None:
        # Only connections idle past the grace period: under load many are idle for an
        # instant between calls, and closing those would open a new one per call.
        for origin, idle in list(self._idle.items()):
            while (
                idle and self._idle_count > self._max_idle
                and now - idle[0].idle_since > IDLE_GRACE_SECONDS
            ):  # fmt: skip
                self._idle_count -= 1
                self._close(origin, idle.popleft())

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection to another origin to make room; False if none."""
        oldest: tuple[float, Origin] | None = None
        for origin, idle in self._idle.items():
            if idle and (oldest is None or idle[0].idle_since < oldest[0]):
                oldest = (idle[0].idle_since, origin)
        if oldest is None:
            return False
        self._idle_count -= 1
        self._close(oldest[1], self._idle[oldest[1]].popleft())
        return True

    def _close(self, origin: Origin, connection: Connection) -> None:
        """Close a connection taken off the idle list (and stop counting it at once)."""
        self._discard(origin, connection)
        connection.close()

    def _discard(self, origin: Origin, connection: Connection) -> None:
        """Forget a connection that is closing (once, whoever notices first)."""
        if connection not in self._open:
            return
        self._open.discard(connection)
        idle = self._idle.get(origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            self._idle_count -= 1
        if idle is not None and not idle:
            del self._idle[origin]
        self._release(origin)

    def _wake(self) -> None:
        """Wake the longest waiting request that can now go on: one for an origin with an
        idle connection, or one whose origin is under its cap when there is room (waking one
        whose origin is at its cap would lose the wake-up)."""
        room = len(self._open) + self._connecting < self._limit or self._idle_count > 0
        for entry in self._waiters:
            origin, waiter = entry
            if waiter.done():
                continue
            if self._idle.get(origin) or (room and self._held.get(origin, 0) < self._per_origin):
                self._waiters.remove(entry)
                waiter.set_result(None)
                return


class UpstreamClient:
    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.MCP_REQUEST_TIMEOUT_SECONDS
        self._retries = settings.MCP_MAX_RETRIES
        limit = settings.MCP_MAX_CONNECTIONS
        self._pool = Pool(
            limit=limit,
            max_idle=settings.MCP_MAX_KEEPALIVE_CONNECTIONS,
            per_origin=settings.MCP_MAX_CONNECTIONS_PER_UPSTREAM or max(1, limit // 2),
        )
        self._loop: asyncio.AbstractEventLoop | None = None  # its connections' loop

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        """The upstream's answer with its headers read; the caller reads and releases the body."""
        try:
            target = target_of(url)
            if target.authorization is not None and "authorization" not in headers:
                headers = {**headers, "authorization": target.authorization}
            length = len(body) if body is not None else (0 if method == "POST" else None)
            head = request_head(method, target.path, target.authority, headers, length)
        except ValueError as exc:
            raise UpstreamFailed(f"cannot send to upstream: {exc}") from None
        attempt = 0
        stale_retried = False
        while True:
            try:
                answer = await self._exchange(target.origin, head, body)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"upstream did not answer within {self._timeout:g}s"
                ) from None
            except OSError as exc:
                # Connecting failed: nothing was sent, so retrying cannot repeat a side effect.
                if attempt >= self._retries:
                    raise UpstreamFailed(f"cannot connect to upstream: {exc}") from None
                attempt += 1
                await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
                continue
            except _StaleConnection:
                if method in IDEMPOTENT and not stale_retried:
                    stale_retried = True
                    continue
                raise UpstreamFailed("upstream connection failed: closed by the upstream") from None
            except ConnectionBroken as exc:
                raise UpstreamFailed(f"upstream connection failed: {exc}") from None
            encoding = answer.headers.get("content-encoding", "identity").lower()
            if encoding != "identity":
                # Asked for identity; a body the guardrails cannot read may not pass.
                answer.close()
                raise UpstreamFailed(f"upstream answered with unrequested encoding {encoding!r}")
            return answer

    async def _exchange(self, origin: Origin, head: bytes, body: bytes | None) -> Answer:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # One deadline for getting a connection and for the answer's headers. A kept-alive
        # connection is taken without waiting, and the connection times its own wait with a
        # timer: asyncio.timeout cost 6.4 us a call against 0.9 for the timer.
        deadline = loop.time() + self._timeout
        connection = self._pool.take_idle(origin)
        reused = connection is not None
        if connection is None:
            async with asyncio.timeout_at(deadline):
                connection, reused = await self._pool.acquire(origin)
        try:
            return await connection.send(head, body, deadline)
        except ConnectionBroken as exc:
            connection.close()
            if reused:
                raise _StaleConnection from exc
            raise
        except BaseException:
            connection.close()  # cancelled or timed out: the answer will not be read
            raise

    async def close(self) -> None:
        self._pool.close()


class _StaleConnection(Exception):
    """A kept-alive connection broke before any answer: the upstream may have closed it."""
