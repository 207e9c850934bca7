"""The one HTTP client the proxy uses to reach upstream MCP servers, pooled per process.

aiohttp keeps 90-115 % of direct throughput here (conventions.md, "The hot path"). The
timeout covers only the wait for the answer's headers: MCP streams may stay open for
minutes, so a whole-response timeout would cut them. Only failures where no request can
have reached the upstream (connecting) are retried, so a tool never runs twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey

from cerberus.settings import Settings

logger = logging.getLogger("cerberus.upstream")

BACKOFF_SECONDS = 0.05
IDLE_GRACE_SECONDS = 1.0


class UpstreamTimeout(Exception):
    """The upstream did not start answering within MCP_REQUEST_TIMEOUT_SECONDS."""


class UpstreamFailed(Exception):
    """The upstream could not be reached, or the connection broke before an answer."""


class _BoundedIdleConnector(aiohttp.TCPConnector):
    """A connector that keeps at most `max_idle` idle connections (aiohttp has no such knob).

    Only connections idle for IDLE_GRACE_SECONDS are closed: under load more than `max_idle`
    are idle for an instant between calls, and closing those would reopen one per call.
    """

    def __init__(self, *, max_idle: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_idle = max_idle

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        super()._release(key, protocol, should_close=should_close)
        idle = sum(len(conns) for conns in self._conns.values())
        if idle <= self._max_idle:
            return
        now = time.monotonic()
        for pool_key, conns in list(self._conns.items()):
            # Oldest first: aiohttp appends released connections on the right.
            while conns and idle > self._max_idle and now - conns[0][1] > IDLE_GRACE_SECONDS:
                stale, _ = conns.popleft()
                stale.close()
                idle -= 1
            if not conns:
                del self._conns[pool_key]


class UpstreamClient:
    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.MCP_REQUEST_TIMEOUT_SECONDS
        self._retries = settings.MCP_MAX_RETRIES
        self._max_connections = settings.MCP_MAX_CONNECTIONS
        self._max_idle = settings.MCP_MAX_KEEPALIVE_CONNECTIONS
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop (uvicorn's), closed by the lifespan.
        if self._session is None:
            connector = _BoundedIdleConnector(
                max_idle=self._max_idle,
                limit=self._max_connections,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timeout),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                # One session serves every agent: a jar would send one agent's upstream cookies
                # with the next agent's requests (and costs a lookup on every request).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> aiohttp.ClientResponse:
        """The upstream's answer with its headers read; the caller reads and releases the body."""
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self.session.request(
                        method, url, headers=dict(headers), data=body, allow_redirects=False
                    )
            except TimeoutError:
                raise UpstreamTimeout(
                    f"upstream did not answer within {self._timeout:g}s"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                # Nothing was sent: retrying cannot repeat a tool's side effect.
                if attempt >= self._retries:
                    raise UpstreamFailed(f"cannot connect to upstream: {exc.os_error}") from None
                attempt += 1
                await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            except aiohttp.ClientError as exc:
                raise UpstreamFailed(f"upstream connection failed: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
