"""The upstream client (proxy/upstream.py, proxy/http1.py) against servers that answer byte by byte.

Raw asyncio servers on loopback ports script exactly what goes on the wire: framings the SDK
never produces, connections closed at awkward moments, interim answers, encodings, TLS.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from cerberus.proxy.http1 import ConnectionBroken, request_head
from cerberus.proxy.upstream import UpstreamClient, UpstreamFailed, UpstreamTimeout
from cerberus.settings import Settings
from tests.proxy.conftest import create_tenant, running_gateway

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CALL = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "add"}}
RESULT = b'{"jsonrpc":"2.0","id":4,"result":{"content":[]}}'


class Wire:
    """What a raw server saw: one list of request heads per connection."""

    def __init__(self) -> None:
        self.connections: list[list[str]] = []


@asynccontextmanager
async def raw_server(
    script: Script, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Wire]]:
    wire = Wire()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}/mcp", wire
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader, wire: Wire, seen: list[str]) -> str:
    """One request's head (the body, sized by Content-Length, is read and dropped)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    if not seen:
        wire.connections.append(seen)
    seen.append(head)
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "content-length" and int(value):
            await reader.readexactly(int(value))
    return head


def answer(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", "content-type: application/json", *extra]
    if not any(line.lower().startswith(("content-length", "transfer-encoding")) for line in extra):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def client(**overrides: object) -> UpstreamClient:
    return UpstreamClient(Settings(**overrides))  # type: ignore[arg-type]


async def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (RESULT[:10], RESULT[10:]):
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + RESULT)
        await writer.drain()

    upstream = client()
    for script in (chunked, until_close):
        async with raw_server(script) as (url, wire):
            got = await upstream.send("POST", url, {}, b"{}")
            assert got.status == 200
            assert await got.read() == RESULT
            got.release()
    await upstream.close()


async def test_the_request_names_the_upstream_and_asks_for_no_compression() -> None:
    async def echo_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(answer(RESULT))
        await writer.drain()

    upstream = client()
    async with raw_server(echo_head) as (url, wire):
        port = url.split(":")[2].split("/")[0]
        got = await upstream.send("POST", f"http://bob:s%40cret@127.0.0.1:{port}/mcp?x=1", {}, b"")
        await got.read()
        got.release()
    head = wire.connections[0][0].split("\r\n")
    assert head[0] == "POST /mcp?x=1 HTTP/1.1"
    assert f"host: 127.0.0.1:{port}" in head
    assert "accept-encoding: identity" in head
    assert "content-length: 0" in head
    assert f"authorization: Basic {base64.b64encode(b'bob:s@cret').decode()}" in head
    await upstream.close()


def test_a_header_with_a_line_break_is_never_written() -> None:
    for name, value in [("x-a", "1\r\nx-injected: 2"), ("x-b\nx-c", "1"), ("x-d", "1\r")]:
        with pytest.raises(ValueError, match="line break"):
            request_head("POST", "/mcp", "h", {name: value}, 0)


async def test_an_unrequested_encoding_is_refused() -> None:
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(answer(b"\x1f\x8b...", "content-encoding: gzip"))
        await writer.drain()

    upstream = client()
    async with raw_server(gzipped) as (url, wire):
        with pytest.raises(UpstreamFailed, match="gzip"):
            await upstream.send("POST", url, {}, b"{}")
    await upstream.close()


async def test_interim_answers_are_skipped() -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n")
        writer.write(answer(RESULT, "mcp-session-id: s1"))
        await writer.drain()
        await reader.read()

    upstream = client()
    async with raw_server(early_hints) as (url, wire):
        got = await upstream.send("POST", url, {}, b"{}")
        assert (got.status, got.headers.get("mcp-session-id")) == (200, "s1")
        assert "link" not in got.headers
        assert await got.read() == RESULT
        got.release()
    await upstream.close()


async def test_an_answer_after_the_answer_never_reaches_another_request() -> None:
    # One read held the answer and the head of another: the second was read into the first
    # one's headers, and the connection, pooled, gave the rest to the next request.
    async def two_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        smuggled = answer(b"smuggle", "x-evil: 1")
        writer.write(answer(RESULT) + smuggled[:60])
        await writer.drain()
        try:
            await read_request(reader, wire, wire.connections[0])
        except asyncio.IncompleteReadError:
            return  # the gateway closed this connection: nothing more to answer
        writer.write(smuggled[60:])
        await writer.drain()
        await reader.read()

    async def trailers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(f"{len(RESULT):x}\r\n".encode() + RESULT + b"\r\n0\r\nx-evil: 1\r\n\r\n")
        await writer.drain()
        await reader.read()

    upstream = client()
    async with raw_server(two_answers) as (url, wire):
        first = await upstream.send("POST", url, {}, b"{}")
        assert await first.read() == RESULT
        assert "x-evil" not in first.headers
        first.release()
        second = await upstream.send("POST", url, {}, b"{}")
        assert await second.read() != b"smuggle"
        second.release()
        assert len(wire.connections) == 2  # the first connection was not reused
    async with raw_server(trailers) as (url, wire):
        got = await upstream.send("POST", url, {}, b"{}")
        assert await got.read() == RESULT
        assert "x-evil" not in got.headers
        got.release()
    await upstream.close()


async def test_a_connection_idle_as_long_as_servers_keep_theirs_is_not_reused() -> None:
    # uvicorn and Node close idle connections at 5 s; reused until 30 s, a POST written as
    # the upstream closed failed (502), and is not retried: it may have run a tool.
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[str] = []
        while True:
            await read_request(reader, wire, seen)
            writer.write(answer(RESULT))
            await writer.drain()

    upstream = client()
    async with raw_server(keep_alive) as (url, wire):
        for pause in (0.0, 0.5, 4.5):
            await asyncio.sleep(pause)
            got = await upstream.send("POST", url, {}, b"{}")
            assert await got.read() == RESULT
            got.release()
    await upstream.close()
    # Reused after half a second; after four and a half, a new connection.
    assert [len(requests) for requests in wire.connections] == [2, 1]


async def test_a_large_streamed_body_arrives_whole_through_back_pressure() -> None:
    block = b"x" * 65536
    blocks = 80  # 5 MiB: far past the high-water mark, so reading pauses and resumes

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(answer(b"", f"content-length: {len(block) * blocks}"))
        for _ in range(blocks):
            writer.write(block)
            await writer.drain()
        await reader.read()

    upstream = client()
    async with raw_server(big) as (url, wire):
        got = await upstream.send("GET", url, {}, None)
        total = 0
        while chunk := await got.readany():
            total += len(chunk)
            await asyncio.sleep(0)  # a slow reader
        assert total == len(block) * blocks
        got.release()
    await upstream.close()


async def test_a_get_on_a_kept_alive_connection_the_upstream_dropped_is_retried_once() -> None:
    """The upstream answers one request per connection, then drops the next without a word:
    GET (idempotent) is sent again on a new connection; POST is not (a tool never runs twice)."""

    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        seen: list[str] = []
        await read_request(reader, wire, seen)
        writer.write(answer(RESULT))
        await writer.drain()
        await read_request(reader, wire, seen)  # then close without answering

    upstream = client()
    async with raw_server(one_per_connection) as (url, wire):
        for _ in range(2):
            got = await upstream.send("GET", url, {}, None)
            assert await got.read() == RESULT
            got.release()
        assert [len(requests) for requests in wire.connections] == [2, 1]
        with pytest.raises(UpstreamFailed, match="closed"):
            await upstream.send("POST", url, {}, b"{}")
        assert [len(requests) for requests in wire.connections] == [2, 2]
    await upstream.close()


async def test_connections_stay_within_mcp_max_connections() -> None:
    open_now = peak = 0
    release = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            seen: list[str] = []
            while True:
                await read_request(reader, wire, seen)
                await release.wait()
                writer.write(answer(RESULT))
                await writer.drain()
        finally:
            open_now -= 1

    upstream = client(MCP_MAX_CONNECTIONS=2, MCP_MAX_CONNECTIONS_PER_UPSTREAM=2)

    async def call() -> bytes:
        got = await upstream.send("POST", url, {}, b"{}")
        try:
            return await got.read()
        finally:
            got.release()

    async with raw_server(held) as (url, wire):
        calls = [asyncio.create_task(call()) for _ in range(6)]
        await asyncio.sleep(0.3)
        assert len(wire.connections) == 2  # the other four wait for a connection
        release.set()
        assert await asyncio.gather(*calls) == [RESULT] * 6
    assert peak == 2
    await upstream.close()


def held_until(release: asyncio.Event, wire: Wire) -> Script:
    """A server that answers each request once `release` is set."""

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[str] = []
        while True:
            await read_request(reader, wire, seen)
            await release.wait()
            writer.write(answer(RESULT))
            await writer.drain()

    return held


async def _call(upstream: UpstreamClient, url: str) -> bytes:
    got = await upstream.send("POST", url, {}, b"{}")
    try:
        return await got.read()
    finally:
        got.release()


async def test_an_upstream_that_hangs_cannot_hold_every_connection() -> None:
    """MCP_MAX_CONNECTIONS_PER_UPSTREAM, by default half of MCP_MAX_CONNECTIONS: calls to
    a hung upstream (a tenant's) wait for its share, and calls to others still go through.
    Before, the hung upstream took the process's every connection and everyone waited."""
    hung_release, other_release = asyncio.Event(), asyncio.Event()
    other_release.set()
    hung_wire, wire = Wire(), Wire()
    hung, other = held_until(hung_release, hung_wire), held_until(other_release, wire)
    upstream = client(MCP_MAX_CONNECTIONS=4)
    async with raw_server(hung) as (hung_url, _), raw_server(other) as (url, _):
        stuck = [asyncio.create_task(_call(upstream, hung_url)) for _ in range(6)]
        await asyncio.sleep(0.2)
        assert len(hung_wire.connections) == 2
        answered = await asyncio.wait_for(
            asyncio.gather(*(_call(upstream, url) for _ in range(4))), 2
        )
        assert answered == [RESULT] * 4
        assert len(wire.connections) == 2
        hung_release.set()
        assert await asyncio.gather(*stuck) == [RESULT] * 6
    await upstream.close()


async def test_a_freed_connection_wakes_a_call_that_can_use_it() -> None:
    """Calls wait in order; a connection freed for one upstream goes to the first call that
    can use it, not to the first in line, whose upstream may be at its cap (its call would
    wait again, and the wake-up would be lost until the timeout)."""
    hung_release, other_release = asyncio.Event(), asyncio.Event()
    hung, other = held_until(hung_release, Wire()), held_until(other_release, Wire())
    upstream = client(MCP_MAX_CONNECTIONS=2, MCP_MAX_CONNECTIONS_PER_UPSTREAM=1)
    async with raw_server(hung) as (hung_url, _), raw_server(other) as (url, _):
        first_hung = asyncio.create_task(_call(upstream, hung_url))
        first_other = asyncio.create_task(_call(upstream, url))
        await asyncio.sleep(0.1)
        second_hung = asyncio.create_task(_call(upstream, hung_url))  # its upstream's cap
        await asyncio.sleep(0.05)
        second_other = asyncio.create_task(_call(upstream, url))  # the process's limit
        await asyncio.sleep(0.05)
        other_release.set()
        assert await asyncio.wait_for(first_other, 2) == RESULT
        assert await asyncio.wait_for(second_other, 2) == RESULT
        assert not second_hung.done()
        hung_release.set()
        assert await asyncio.gather(first_hung, second_hung) == [RESULT] * 2
    await upstream.close()


async def test_a_body_cut_short_is_a_broken_connection_not_a_short_answer() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(answer(b"", f"content-length: {len(RESULT)}") + RESULT[:10])
        await writer.drain()

    upstream = client()
    async with raw_server(cut) as (url, wire):
        got = await upstream.send("POST", url, {}, b"{}")
        with pytest.raises(ConnectionBroken):
            await got.read()
        got.release()
    await upstream.close()


async def test_a_body_cut_short_is_502_through_the_gateway(
    proxy_settings, http: httpx.AsyncClient
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, wire, [])
        writer.write(answer(b"", f"content-length: {len(RESULT)}") + RESULT[:10])
        await writer.drain()

    async with raw_server(cut) as (url, wire), running_gateway(proxy_settings()) as gateway:
        tenant = await create_tenant(gateway.app, url)
        got = await http.post(gateway.mcp, json=CALL, headers=tenant.headers())
    assert got.status_code == 502
    assert got.json()["error"]["code"] == -32003
    assert got.json()["id"] == 4


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_upstreams_are_verified(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[str] = []
        while True:
            await read_request(reader, wire, seen)
            writer.write(answer(RESULT))
            await writer.drain()

    async with raw_server(plain, tls) as (url, wire):
        untrusting = client(MCP_MAX_RETRIES=0)
        with pytest.raises(UpstreamFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.send("POST", url, {}, b"{}")
        await untrusting.close()

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read when the client's context is made
        trusting = client()
        for _ in range(2):
            got = await trusting.send("POST", url, {}, b"{}")
            assert await got.read() == RESULT
            got.release()
        assert len(wire.connections) == 1  # kept alive over TLS too
        await trusting.close()


async def test_an_upgrade_is_refused_and_unsolicited_bytes_drop_an_idle_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[str] = []
        head = await read_request(reader, wire, seen)
        if "x-upgrade" in head:
            switch = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c"
            writer.write(switch + b"\r\n\r\nxx")
        else:
            writer.write(answer(RESULT))
            await writer.drain()
            await asyncio.sleep(0.05)
            # An idle kept-alive connection hears from the server (as a 408 on timeout would).
            writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()

    upstream = client()
    async with raw_server(script) as (url, wire):
        with pytest.raises(UpstreamFailed, match="invalid HTTP"):
            await upstream.send("POST", url, {"x-upgrade": "1"}, b"{}")
        first = await upstream.send("POST", url, {}, b"{}")
        assert await first.read() == RESULT
        first.release()
        await asyncio.sleep(0.2)
        second = await upstream.send("POST", url, {}, b"{}")
        assert (second.status, await second.read()) == (200, RESULT)
        second.release()
    # Each call on its own connection: the first dropped, the second's closed by the 408.
    assert [len(requests) for requests in wire.connections] == [1, 1, 1]
    await upstream.close()


async def test_a_kept_alive_connection_that_goes_silent_times_out_and_is_dropped() -> None:
    async def answers_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[str] = []
        await read_request(reader, wire, seen)
        writer.write(answer(RESULT))
        await writer.drain()
        while True:  # every later request on this connection goes unanswered
            await read_request(reader, wire, seen)

    upstream = client(MCP_REQUEST_TIMEOUT_SECONDS=0.3)
    async with raw_server(answers_once) as (url, wire):
        first = await upstream.send("POST", url, {}, b"{}")
        assert await first.read() == RESULT
        first.release()
        with pytest.raises(UpstreamTimeout):
            await upstream.send("POST", url, {}, b"{}")  # on the kept-alive connection
        third = await upstream.send("POST", url, {}, b"{}")  # on a new connection, answered
        assert await third.read() == RESULT
        third.release()
    assert [len(requests) for requests in wire.connections] == [2, 1]
    await upstream.close()
