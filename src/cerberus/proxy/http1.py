"""One HTTP/1.1 connection to an upstream and the answer it is reading, parsed by httptools.

The proxy frames its own requests (it has every header already) and streams answers back
message by message, so it needs only this much of an HTTP client. aiohttp's client did the
same work with about 0.1 ms more CPU per call (URL objects, header multidicts, automatic
headers, traces and timers; `python -m bench.client_cost`: 165 against 70 us), a fifth to a
third of the gateway's profile (docs/benchmarks.md). Parsing is llhttp's, the parser uvicorn
serves with, so framing (chunked, Content-Length, bodiless statuses) is not reimplemented.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable, Mapping

import httptools

from cerberus.reply_timer import deadlines

# Past this much unread body the socket stops being read until the reader catches up.
HIGH_WATER = 256 * 1024
_BODILESS = frozenset({204, 304})


class ConnectionBroken(Exception):
    """The connection closed or sent something that is not HTTP before the answer ended."""


# A body read whole is held in memory, then parsed and scanned: bounded as an SSE event is
# (sse.py), so that one answer cannot take the process's memory and the audit events queued
# in it.
MAX_ANSWER_BYTES = 32 * 1024 * 1024


class AnswerTooLarge(Exception):
    """A body longer than the reader would hold in memory."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit


def request_head(
    method: str, target: str, authority: str, headers: Mapping[str, str], length: int | None
) -> bytes:
    """The request line and headers; ValueError when a header would break the framing.

    The body is asked for as it is (identity): the guardrails read what the upstream sends,
    so nothing here decodes compression (callers pass no Accept-Encoding of their own).
    """
    lines = [f"{method} {target} HTTP/1.1", f"host: {authority}", "accept-encoding: identity"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length is not None:
        lines.append(f"content-length: {length}")
    lines.append("\r\n")
    head = "\r\n".join(lines)
    # Every line ends in exactly one CRLF: a CR or LF inside a name or value would start a
    # header (or a request) of the sender's choosing upstream.
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise ValueError("a header contains a line break")
    return head.encode("latin-1")


class Answer:
    """The upstream's answer: status and headers at once, the body as it arrives."""

    def __init__(self, connection: Connection) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}  # lower-case names; repeated ones joined by ", "
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: ConnectionBroken | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._done = False  # released or closed: the connection is no longer ours

    @property
    def complete(self) -> bool:
        return self._complete

    async def readany(self) -> bytes:
        """What has arrived since the last read (waiting for some); b"" once the body ended."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._connection.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._connection.resume()
        return data

    async def read(self, limit: int = MAX_ANSWER_BYTES) -> bytes:
        """The whole body; AnswerTooLarge as soon as it passes `limit` bytes."""
        parts = []
        size = 0
        while chunk := await self.readany():
            size += len(chunk)
            if size > limit:
                raise AnswerTooLarge(limit)
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Give the connection back for reuse if the answer was read to its end, else close it."""
        if not self._done:
            self._done = True
            self._connection.finished(reusable=self._complete)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._connection.finished(reusable=False)

    # Called by the connection.
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._connection.pause()
        self._wake()

    def _end(self, error: ConnectionBroken | None) -> None:
        # The first ending stands: complete, or broken.
        if not self._complete and self._error is None:
            if error is None:
                self._complete = True
            else:
                self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Unrequested(Exception):
    """Raised from a parser callback to stop parsing an answer that follows a finished one."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; `on_idle`/`on_lost` tell the pool what became of it."""

    def __init__(
        self,
        on_idle: Callable[[Connection], None],
        on_lost: Callable[[Connection], None],
    ) -> None:
        self._on_idle = on_idle
        self._on_lost = on_lost
        # Made by the loop's create_connection; kept, as asking for the running loop costs a
        # getpid system call each time (CPython checks it was not forked).
        self.loop = asyncio.get_running_loop()
        self._deadlines = deadlines(self.loop)
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: Answer | None = None
        self._headers_ready: asyncio.Future[Answer] | None = None
        self._keep_alive = False
        self._until_close = False
        self._informational = False
        self._head_done = False
        self._paused = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Each request is written whole: Nagle would only hold the next one back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.complete:
            self._break("the upstream sent data nobody asked for")
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if isinstance(exc.__context__, _Unrequested):
                self._break("the upstream sent data nobody asked for")
                return
            # An upgrade (101) is refused too: MCP never switches protocols.
            self._break(f"invalid HTTP from the upstream ({type(exc).__name__})")

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is not None and not answer.complete:
            if self._until_close and self._headers_ready is None:
                answer._end(None)  # a body delimited by the end of the connection
            else:
                self._fail(ConnectionBroken("the upstream closed the connection"))
        self._on_lost(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self._answer is not None and self._answer.complete:
            # A second answer in the same read: bytes nobody asked for, which would have
            # been read into this answer's headers and then, pooled, answered another
            # request on this connection (an upstream's framing bug, or a smuggled answer).
            raise _Unrequested
        self._head_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        # After the head, a chunked answer's trailers: not headers the client was sent.
        if self._answer is None or self._informational or self._head_done:
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._answer.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        answer = self._answer
        if answer is None:
            return
        if 100 <= status < 200:
            # 1xx interim answers (103 Early Hints): the real one follows on this connection.
            self._informational = True
            answer.headers.clear()
            return
        answer.status = status
        self._head_done = True
        headers = answer.headers
        self._until_close = (
            status not in _BODILESS
            and "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
        )
        ready, self._headers_ready = self._headers_ready, None
        if ready is not None and not ready.done():
            ready.set_result(answer)

    def on_body(self, body: bytes) -> None:
        if self._answer is not None:
            self._answer._feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._keep_alive = self._parser.should_keep_alive()
        if self._answer is not None:
            self._answer._end(None)

    # Used by the pool and the answer.
    @property
    def usable(self) -> bool:
        transport = self._transport
        return not self.closed and transport is not None and not transport.is_closing()

    async def send(self, head: bytes, body: bytes | None, deadline: float) -> Answer:
        """Write one request and wait for its answer's headers until `deadline` (loop time;
        then TimeoutError, and the caller closes the connection)."""
        transport = self._transport
        if not self.usable or transport is None:
            raise ConnectionBroken("the connection is closed")
        self._answer = Answer(self)
        ready: asyncio.Future[Answer] = self.loop.create_future()
        self._headers_ready = ready
        self._keep_alive = self._until_close = self._informational = False
        self._deadlines.watch(deadline, ready)
        try:
            if body:
                transport.writelines((head, body))
            else:
                transport.write(head)
            return await ready
        finally:
            self._deadlines.release(ready)

    def finished(self, *, reusable: bool) -> None:
        self._answer = None
        self.resume()
        if reusable and self._keep_alive and not self.closed:
            self._on_idle(self)
        else:
            self.close()

    def pause(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self._transport is not None and not self.closed:
            self._paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.closed = True

    def _break(self, reason: str) -> None:
        self._fail(ConnectionBroken(reason))
        self.close()

    def _fail(self, error: ConnectionBroken) -> None:
        ready, self._headers_ready = self._headers_ready, None
        if ready is not None and not ready.done():
            ready.set_exception(error)
        if self._answer is not None:
            self._answer._end(error)
