"""The gateway's own Redis client (cache/resp.py): the protocol, the URL, and real servers
started here with what production uses (a password, a database number, TLS) and under
uvloop, the event loop `cerberus serve` runs."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from redis.asyncio import Redis

from cerberus.cache import Window
from cerberus.cache.redis import RedisCache
from cerberus.cache.resp import (
    Address,
    ProtocolError,
    RedisConnectionError,
    ReplyError,
    _Incomplete,
    connect,
    pack,
    parse,
    parse_url,
)
from tests.cache.redis_servers import port_answers, redis_server
from tests.servers import free_port

PASSWORD = "p@ss word/1"
QUOTED_PASSWORD = "p%40ss%20word%2F1"


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert (
        pack(["SET", "k", b"\x00v", 5])
        == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00v\r\n$1\r\n5\r\n"
    )


def test_every_reply_type_is_read() -> None:
    replies = b"+OK\r\n:42\r\n$-1\r\n$3\r\na\r\n\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n-ERR no\r\n*-1\r\n"
    values = []
    at = 0
    while at < len(replies):
        value, at = parse(replies, at)
        values.append(value)
    assert values[:5] == [b"OK", 42, None, b"a\r\n", [[1], b""]]
    assert isinstance(values[5], ReplyError)
    assert values[5].code == "ERR"
    assert values[6] is None


def test_a_reply_cut_anywhere_asks_for_more() -> None:
    whole = b"*2\r\n$5\r\nhello\r\n:7\r\n"
    for cut in range(len(whole)):
        with pytest.raises(_Incomplete) as incomplete:
            parse(whole[:cut], 0)
        assert cut < incomplete.value.need <= len(whole) + 1
    assert parse(whole, 0) == ([b"hello", 7], len(whole))


def test_a_long_bulk_string_says_how_much_it_needs() -> None:
    # The connection waits for that many bytes instead of parsing again on every chunk.
    with pytest.raises(_Incomplete) as incomplete:
        parse(b"$1000000\r\nabc", 0)
    assert incomplete.value.need == len(b"$1000000\r\n") + 1_000_000 + 2


def test_what_is_not_resp_is_refused() -> None:
    with pytest.raises(ProtocolError):
        parse(b"HTTP/1.1 400 Bad Request\r\n", 0)
    with pytest.raises(ProtocolError):
        parse(b":x\r\n", 0)


def test_urls() -> None:
    assert parse_url("redis://cache:6380/2") == Address(host="cache", port=6380, db=2)
    assert parse_url(f"rediss://:{QUOTED_PASSWORD}@cache.aws/0") == Address(
        host="cache.aws", tls=True, password=PASSWORD
    )
    assert parse_url("redis://user:pw@h") == Address(host="h", username="user", password="pw")
    assert parse_url("unix:///run/r.sock?db=3&password=pw") == Address(
        path="/run/r.sock", db=3, password="pw"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://cache", "must start with"),
        ("redis://cache:99999", "port"),
        ("redis://cache/one", "database number"),
        ("redis://cache?ssl_cert_reqs=none", "unsupported query parameter 'ssl_cert_reqs'"),
        ("unix://", "socket's path"),
    ],
)
def test_urls_this_client_cannot_use_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_url(url)


@pytest.fixture
def locked_redis() -> Iterator[int]:
    """A Redis server of this test's own that asks for a password."""
    port = free_port()
    with redis_server(["--port", str(port), "--requirepass", PASSWORD], port_answers(port)):
        yield port


async def test_the_password_and_database_in_the_url_are_used(locked_redis: int) -> None:
    cache = RedisCache(
        f"redis://:{QUOTED_PASSWORD}@127.0.0.1:{locked_redis}/3", pool_size=2, timeout=2
    )
    observer = Redis(port=locked_redis, password=PASSWORD, db=3)
    try:
        await cache.set("where", b"db3")
        assert await observer.get("where") == b"db3"
        assert (await cache.hit_sliding_window("w", limit=1, window_seconds=60)).allowed
    finally:
        await cache.close()
        await observer.aclose()


async def test_a_wrong_password_is_an_error_not_a_hang(locked_redis: int) -> None:
    cache = RedisCache(f"redis://:wrong@127.0.0.1:{locked_redis}/0", pool_size=1, timeout=2)
    try:
        with pytest.raises(ReplyError, match=r"WRONGPASS|invalid"):
            await cache.get("k")
    finally:
        await cache.close()


@pytest.fixture
def tls_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A Redis server speaking only TLS, with a certificate for 127.0.0.1 from a CA that this
    test's processes trust (SSL_CERT_FILE), as ElastiCache's is trusted through the system's."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")

    def run(*arguments: str) -> None:
        subprocess.run([openssl, *arguments], check=True, capture_output=True, cwd=tmp_path)

    run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.crt",
    )  # fmt: skip
    run(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.crt",
    )  # fmt: skip
    port = free_port()
    tls = [
        *("--port", "0", "--tls-port", str(port), "--requirepass", PASSWORD),
        *("--tls-cert-file", str(tmp_path / "server.crt")),
        *("--tls-key-file", str(tmp_path / "server.key")),
        *("--tls-ca-cert-file", str(tmp_path / "ca.crt"), "--tls-auth-clients", "no"),
    ]
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.crt"))
    with redis_server(tls, port_answers(port)):
        yield port


async def test_rediss_speaks_tls_and_checks_the_certificate(tls_redis: int) -> None:
    cache = RedisCache(f"rediss://:{QUOTED_PASSWORD}@127.0.0.1:{tls_redis}/0", pool_size=2)
    try:
        await cache.set("secure", b"yes")
        assert await cache.get("secure") == b"yes"
        results = [await cache.hit_sliding_window("tls", 2, 60) for _ in range(3)]
        assert [result.allowed for result in results] == [True, True, False]
    finally:
        await cache.close()


async def test_rediss_refuses_a_certificate_it_does_not_trust(
    tls_redis: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    cache = RedisCache(
        f"rediss://:{QUOTED_PASSWORD}@127.0.0.1:{tls_redis}/0", pool_size=1, timeout=2
    )
    try:
        with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await cache.get("secure")
    finally:
        await cache.close()


@pytest.fixture
def plain_redis() -> Iterator[int]:
    port = free_port()
    with redis_server(["--port", str(port)], port_answers(port)):
        yield port


def test_the_cache_works_under_uvloop(plain_redis: int) -> None:
    # `cerberus serve` runs uvloop, whose transports are not asyncio's classes (a check that
    # they were failed every connection there, while tests on asyncio's loop passed).
    async def scenario() -> tuple[list[bool], bytes | None, bytes]:
        cache = RedisCache(f"redis://127.0.0.1:{plain_redis}/0", pool_size=2, timeout=5)
        arrived: asyncio.Queue[bytes] = asyncio.Queue()
        try:
            await cache.subscribe("changes", arrived.put_nowait)
            windows = [Window("u", 2, 60)]
            allowed = [(await cache.hit_sliding_windows(windows))[0].allowed for _ in range(3)]
            big = bytes(range(256)) * 8192  # 2 MiB: its reply arrives in many chunks
            await cache.set("big", big)
            await cache.publish("changes", b"hello")
            message = await asyncio.wait_for(arrived.get(), timeout=5)
            return allowed, await cache.get("big"), message
        finally:
            await cache.close()

    allowed, big, message = uvloop.run(scenario())
    assert allowed == [True, True, False]
    assert big == bytes(range(256)) * 8192
    assert message == b"hello"


async def test_a_subscription_comes_back_after_its_connection_is_killed(plain_redis: int) -> None:
    # Invalidations must keep arriving after a failover or an idle timeout cut the
    # subscriber's connection: the client reconnects and subscribes again by itself.
    cache = RedisCache(f"redis://127.0.0.1:{plain_redis}/0", pool_size=1, timeout=2)
    observer = Redis(port=plain_redis)
    arrived: asyncio.Queue[bytes] = asyncio.Queue()
    try:
        await cache.subscribe("changes", arrived.put_nowait)
        await observer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        deadline = time.monotonic() + 10
        while arrived.empty():
            assert time.monotonic() < deadline, "no message after the connection was killed"
            await observer.publish("changes", b"again")
            await asyncio.sleep(0.1)
        assert arrived.get_nowait() == b"again"
    finally:
        await cache.close()
        await observer.aclose()


async def test_a_reply_nobody_asked_for_closes_the_connection_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A server out of step with its client: its replies can no longer be matched to
    # commands, so the connection is dropped (and said so once), never read on.
    accepted: list[asyncio.StreamWriter] = []

    async def chatty(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # kept open: the client must be the one to close
        writer.write(b"+OK\r\n+OK\r\n+OK\r\n")
        await writer.drain()

    server = await asyncio.start_server(chatty, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        connection = await connect(Address(port=port))
        await asyncio.wait_for(connection.lost, timeout=5)
        with pytest.raises(RedisConnectionError):
            await connection.call(pack(["PING"]))
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    closed = [r for r in caplog.records if r.getMessage() == "cache connection closed"]
    assert len(closed) == 1


async def test_a_publish_that_cannot_reach_redis_still_reaches_this_instance() -> None:
    # The instance that made a change kept serving what it made stale (a revoked key, for
    # the key cache's whole TTL) when Redis was down as it published.
    port = free_port()
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", pool_size=1, timeout=1)
    arrived: list[bytes] = []
    try:
        with redis_server(["--port", str(port)], port_answers(port)):
            await cache.subscribe("changes", arrived.append)
        with pytest.raises(RedisConnectionError, match="cannot connect to the cache"):
            await cache.publish("changes", b"revoked")
        assert arrived == [b"revoked"]
    finally:
        await cache.close()
