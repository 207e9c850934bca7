"""A small Redis protocol (RESP2) client on asyncio: the few commands the shared cache sends.

redis-py is general: importing it cost ~6 MiB of every gateway process, and its command path
(retry wrapper, option handling, a reply parser in Python over a stream reader) cost more
CPU than the one command each proxied call sends (docs/benchmarks.md). This client speaks
RESP2 straight over an asyncio protocol, to a Redis or Valkey server over TCP, TLS
(`rediss://`, as ElastiCache serves it) or a Unix socket, with AUTH and SELECT from the URL.
`Client` keeps a bounded set of connections for commands; `Subscription` holds the one
connection in subscriber mode and subscribes again after losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

from cerberus.reply_timer import deadlines

logger = logging.getLogger("cerberus.cache")

CONNECT_TIMEOUT_SECONDS = 2.0
RESUBSCRIBE_DELAY_SECONDS = 0.5
RESUBSCRIBE_TIMEOUT_SECONDS = 5.0

Argument = str | bytes | int


class RedisError(Exception):
    """Anything that went wrong talking to the cache server."""


class RedisConnectionError(RedisError, ConnectionError):
    """The connection could not be made, or was lost before the reply came."""


class ReplyError(RedisError):
    """The server answered with an error (the connection stays usable)."""

    @property
    def code(self) -> str:
        """The error's first word: ERR, NOSCRIPT, WRONGTYPE..."""
        return str(self).split(" ", 1)[0]


class ProtocolError(RedisError):
    """The server sent something that is not RESP2."""


@dataclass(frozen=True)
class Address:
    """Where the server is and how to log in, from a redis://, rediss:// or unix:// URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a Unix socket
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0


def parse_url(url: str) -> Address:
    """The address in a URL; ValueError with a one-line reason for one this client cannot use."""
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"db", "password"})
    if unknown:
        raise ValueError(f"unsupported query parameter {unknown[0]!r} (db and password are)")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else query.get("password")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        db = _db(query.get("db", "0"))
        return Address(path=parts.path, username=username, password=password, db=db)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("must start with redis://, rediss:// or unix://")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    db_text = parts.path.lstrip("/") or query.get("db", "0")
    return Address(
        host=parts.hostname or "127.0.0.1",
        port=port,
        tls=parts.scheme == "rediss",
        username=username,
        password=password,
        db=_db(db_text),
    )


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"the database number {text!r} is not a number")
    return int(text)


def pack(args: Sequence[Argument]) -> bytes:
    """One command in RESP2: an array of bulk strings."""
    return b"*%d\r\n%b" % (len(args), bulk_strings(args))


def bulk_strings(args: Sequence[Argument]) -> bytes:
    """The elements of a command's array, without its header (to pack a command in parts)."""
    parts = []
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        else:
            data = b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Incomplete(Exception):
    """The buffer ends inside a reply; `need` is the least length that could complete it."""

    def __init__(self, need: int) -> None:
        self.need = need


def parse(buffer: bytes | bytearray, at: int) -> tuple[object, int]:
    """The reply starting at `at` and where the next one starts; `_Incomplete` if it has
    not all arrived. An error reply is returned as a ReplyError, not raised."""
    end = buffer.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete(len(buffer) + 1)
    kind, line = buffer[at : at + 1], bytes(buffer[at + 1 : end])
    after = end + 2
    if kind == b"$":
        size = _number(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            raise _Incomplete(after + size + 2)
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == b"+":
        return line, after
    if kind == b":":
        return _number(line), after
    if kind == b"-":
        return ReplyError(line.decode(errors="replace")), after
    if kind == b"*":
        count = _number(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse(buffer, after)
            items.append(item)
        return items, after
    raise ProtocolError(f"unexpected reply type {kind!r}")


def _number(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise ProtocolError(f"not a number: {line[:20]!r}") from None


Push = Callable[[list[object]], None]


class Connection(asyncio.Protocol):
    """One connection: commands are written as they come and replies matched in order.

    On a subscriber connection, published messages (arrays starting with `message`) go to
    `on_push` instead of to a waiting command.
    """

    def __init__(self, on_push: Push | None = None) -> None:
        self._on_push = on_push
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._need = 0
        self._waiting: deque[asyncio.Future[object]] = deque()
        self._loop = asyncio.get_running_loop()
        self._deadlines = deadlines(self._loop)
        self.lost: asyncio.Future[None] = self._loop.create_future()

    @property
    def is_open(self) -> bool:
        return not self.lost.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) < self._need:
            return  # a long reply still arriving: not parsed again for every chunk
        at = 0
        try:
            while at < len(self._buffer):
                reply, at = parse(self._buffer, at)
                self._deliver(reply)
        except _Incomplete as incomplete:
            self._need = incomplete.need - at
        except ProtocolError as exc:
            self._fail(exc)
            return
        else:
            self._need = 0
        del self._buffer[:at]

    def _deliver(self, reply: object) -> None:
        if (
            self._on_push is not None
            and isinstance(reply, list)
            and reply
            and reply[0] in (b"message", b"pmessage")
        ):
            self._on_push(reply)
            return
        if not self._waiting:
            raise ProtocolError("a reply nobody asked for")
        waiter = self._waiting.popleft()
        if waiter.done():
            return  # its caller was cancelled; the reply was still read, so order holds
        if isinstance(reply, ReplyError):
            waiter.set_exception(reply)
        else:
            waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        error = RedisConnectionError(f"connection to the cache lost: {exc or 'closed'}")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)

    def _fail(self, exc: Exception) -> None:
        logger.warning("cache connection closed", extra={"error": repr(exc)})
        self.close()

    async def call(self, payload: bytes, deadline: float | None = None) -> object:
        """Send one packed command and wait for its reply, until `deadline` (loop time) at
        most: then TimeoutError, and the connection's state is unknown (the caller closes it)."""
        if self._transport is None or not self.is_open:
            raise RedisConnectionError("connection to the cache is closed")
        waiter: asyncio.Future[object] = self._loop.create_future()
        self._waiting.append(waiter)
        self._transport.write(payload)
        if deadline is None:
            return await waiter
        self._deadlines.watch(deadline, waiter)
        try:
            return await waiter
        finally:
            self._deadlines.release(waiter)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def connect(address: Address, on_push: Push | None = None) -> Connection:
    """A logged-in connection on the URL's database, or RedisError."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            if address.path is not None:
                _, connection = await loop.create_unix_connection(
                    lambda: Connection(on_push), address.path
                )
            else:
                _, connection = await loop.create_connection(
                    lambda: Connection(on_push),
                    address.host,
                    address.port,
                    ssl=_tls_context() if address.tls else None,
                    server_hostname=address.host if address.tls else None,
                )
    except (OSError, TimeoutError) as exc:
        where = address.path or f"{address.host}:{address.port}"
        raise RedisConnectionError(f"cannot connect to the cache at {where}: {exc!r}") from None
    try:
        if address.password is not None:
            login = [address.username, address.password] if address.username else [address.password]
            await connection.call(pack(["AUTH", *login]))
        if address.db:
            await connection.call(pack(["SELECT", address.db]))
    except BaseException:
        connection.close()
        raise
    return connection


def _tls_context() -> ssl.SSLContext:
    # The system's trust store and hostname checks, as redis-py's default for rediss://.
    return ssl.create_default_context()


class Client:
    """Commands over at most `size` connections at once, each kept for the next command.

    A connection whose state is unknown after a cancellation or a lost reply is closed; an
    idle one the server closed meanwhile (a restart, an idle timeout) is replaced once.
    """

    def __init__(self, address: Address, size: int) -> None:
        self._address = address
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []
        self._closed = False

    async def call(self, *args: Argument, deadline: float | None = None) -> object:
        return await self.send(pack(args), deadline)

    async def send(self, payload: bytes, deadline: float | None = None) -> object:
        """A command already packed (`pack`), answered before `deadline` (loop time; None:
        no limit) or TimeoutError: waiting for a free connection and connecting count."""
        slots = self._slots
        if slots.locked():
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        else:
            await slots.acquire()  # free: taken without waiting
        try:
            connection = self._take_idle()
            if connection is not None:
                try:
                    return await self._call(connection, payload, deadline)
                except RedisConnectionError:
                    pass  # tried once more on a new connection, as redis-py would
            async with asyncio.timeout_at(deadline):
                connection = await connect(self._address)
            return await self._call(connection, payload, deadline)
        finally:
            slots.release()

    def _take_idle(self) -> Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_open:
                return connection
        return None

    async def _call(self, connection: Connection, payload: bytes, deadline: float | None) -> object:
        try:
            reply = await connection.call(payload, deadline)
        except ReplyError:
            self._keep(connection)  # an error reply, read whole: the connection is fine
            raise
        except BaseException:
            connection.close()
            raise
        self._keep(connection)
        return reply

    def _keep(self, connection: Connection) -> None:
        if self._closed:
            connection.close()
        else:
            self._idle.append(connection)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


Handler = Callable[[str, bytes], None]


class Subscription:
    """The connection in subscriber mode: every message published on a subscribed channel
    goes to `handler(channel, data)`. When the connection is lost, it reconnects and
    subscribes to every channel again, in the background, until it is closed."""

    def __init__(self, address: Address, handler: Handler) -> None:
        self._address = address
        self._handler = handler
        self._channels: list[str] = []
        self._connection: Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def _connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            connection = self._connection
            if connection is not None and connection.is_open:
                await connection.call(pack(["SUBSCRIBE", channel]))
            else:
                await self._open([*self._channels, channel])
            if channel not in self._channels:
                self._channels.append(channel)

    async def _open(self, channels: Sequence[str]) -> None:
        connection = await connect(self._address, self._on_push)
        try:
            for channel in channels:
                await connection.call(pack(["SUBSCRIBE", channel]))
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_subscribed())

    async def _keep_subscribed(self) -> None:
        while True:
            connection = self._connection
            if connection is not None:
                await connection.lost
            logger.warning("cache subscription lost; reconnecting")
            while True:
                await asyncio.sleep(RESUBSCRIBE_DELAY_SECONDS)
                try:
                    # A server that accepts but never answers must not hold the lock forever.
                    async with self._lock, asyncio.timeout(RESUBSCRIBE_TIMEOUT_SECONDS):
                        # `subscribe` may have opened a new connection meanwhile.
                        if not self._connected:
                            await self._open(self._channels)
                    break
                except (RedisError, TimeoutError):
                    continue

    def _on_push(self, message: list[object]) -> None:
        channel, data = message[-2], message[-1]
        if not isinstance(channel, bytes) or not isinstance(data, bytes):
            return
        try:
            self._handler(channel.decode(errors="replace"), data)
        except Exception:
            logger.exception("cache subscriber failed")

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._connection is not None:
            self._connection.close()
