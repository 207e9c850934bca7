"""One suite, run against both cache implementations: they must behave the same."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import orjson
import pytest

from cerberus.cache import Cache, Window, create_cache
from cerberus.cache.memory import MemoryCache
from cerberus.settings import Settings
from tests.cache.redis_servers import redis_server, socket_exists
from tests.conftest import flush_test_cache

if TYPE_CHECKING:
    from cerberus.cache.redis import RedisCache


@pytest.fixture
async def cache(settings: Settings) -> AsyncIterator[Cache]:
    await flush_test_cache(settings)
    instance = create_cache(settings)
    yield instance
    await instance.close()


async def test_set_then_get_returns_the_value(cache: Cache) -> None:
    await cache.set("k", b"v")
    assert await cache.get("k") == b"v"


async def test_missing_key_is_none(cache: Cache) -> None:
    assert await cache.get("absent") is None


async def test_value_expires_after_its_ttl(cache: Cache) -> None:
    await cache.set("short", b"v", ttl_seconds=0.05)
    await asyncio.sleep(0.15)
    assert await cache.get("short") is None


async def test_delete_reports_whether_the_key_existed(cache: Cache) -> None:
    await cache.set("k", b"v")
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") is None


async def test_sliding_window_admits_exactly_the_limit(cache: Cache) -> None:
    results = [await cache.hit_sliding_window("w", limit=3, window_seconds=60) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.size for r in results[:3]] == [1, 2, 3]
    assert results[3].size == 3
    assert 0 < results[3].retry_after_seconds <= 60


async def test_sliding_window_is_atomic_under_concurrency(cache: Cache) -> None:
    results = await asyncio.gather(
        *(cache.hit_sliding_window("burst", limit=10, window_seconds=60) for _ in range(40))
    )
    assert sum(r.allowed for r in results) == 10


async def test_sliding_window_frees_a_slot_when_the_oldest_hit_leaves(cache: Cache) -> None:
    first = await cache.hit_sliding_window("slide", limit=1, window_seconds=0.3)
    denied = await cache.hit_sliding_window("slide", limit=1, window_seconds=0.3)
    assert first.allowed
    assert not denied.allowed
    await asyncio.sleep(denied.retry_after_seconds + 0.05)
    assert (await cache.hit_sliding_window("slide", limit=1, window_seconds=0.3)).allowed


async def test_windows_with_different_keys_are_independent(cache: Cache) -> None:
    assert (await cache.hit_sliding_window("a", limit=1, window_seconds=60)).allowed
    assert (await cache.hit_sliding_window("b", limit=1, window_seconds=60)).allowed


async def test_several_windows_count_a_hit_together(cache: Cache) -> None:
    windows = (Window("minute", 2, 60), Window("hour", 5, 3600))
    first = await cache.hit_sliding_windows(windows)
    second = await cache.hit_sliding_windows(windows)
    assert [(r.allowed, r.size) for r in first] == [(True, 1), (True, 1)]
    assert [(r.allowed, r.size) for r in second] == [(True, 2), (True, 2)]
    refused = await cache.hit_sliding_windows(windows)
    assert [r.allowed for r in refused] == [False, True]
    assert 0 < refused[0].retry_after_seconds <= 60
    assert refused[1].retry_after_seconds == 0
    # The full minute refused the hit, so the hour did not count it either.
    assert (await cache.hit_sliding_window("hour", limit=5, window_seconds=3600)).size == 3


async def test_a_full_window_that_is_not_enforced_only_skips_itself(cache: Cache) -> None:
    assert (await cache.hit_sliding_window("logged", limit=1, window_seconds=60)).allowed
    results = await cache.hit_sliding_windows(
        (Window("logged", 1, 60, enforced=False), Window("counted", 1, 60))
    )
    assert [(r.allowed, r.size) for r in results] == [(False, 1), (True, 1)]
    assert not (await cache.hit_sliding_window("counted", limit=1, window_seconds=60)).allowed


async def test_a_key_given_twice_counts_twice_in_order(cache: Cache) -> None:
    results = await cache.hit_sliding_windows((Window("twice", 3, 60), Window("twice", 3, 60)))
    assert [(r.allowed, r.size) for r in results] == [(True, 1), (True, 2)]
    results = await cache.hit_sliding_windows((Window("twice", 3, 60), Window("twice", 3, 60)))
    # The second would exceed the limit: the hit is refused in both, and neither counts.
    assert [(r.allowed, r.size) for r in results] == [(True, 2), (False, 2)]
    assert (await cache.hit_sliding_window("twice", limit=3, window_seconds=60)).size == 3


async def test_several_windows_stay_exact_under_concurrency(cache: Cache) -> None:
    windows = (Window("tool", 4, 60), Window("agent", 10, 60))
    results = await asyncio.gather(*(cache.hit_sliding_windows(windows) for _ in range(30)))
    assert sum(tool.allowed and agent.allowed for tool, agent in results) == 4
    assert (await cache.hit_sliding_window("agent", limit=100, window_seconds=60)).size == 5


async def test_no_windows_give_no_results(cache: Cache) -> None:
    assert await cache.hit_sliding_windows(()) == []


async def test_windows_work_after_the_server_forgot_the_script(
    cache: Cache, settings: Settings
) -> None:
    assert (await cache.hit_sliding_window("reload", limit=2, window_seconds=60)).allowed
    if settings.REDIS_URL:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.REDIS_URL)
        try:
            await redis.script_flush()  # as after a restart of the server
        finally:
            await redis.aclose()
    result = await cache.hit_sliding_window("reload", limit=2, window_seconds=60)
    assert (result.allowed, result.size) == (True, 2)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _fake_redis(
    handler: Handler, accepted: list[asyncio.StreamWriter]
) -> AsyncIterator[RedisCache]:
    """A RedisCache (one connection, 0.2 s timeout) on a loopback server run by `handler`,
    which appends each connection's writer to `accepted` so that all are closed after."""
    from cerberus.cache.redis import RedisCache

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", pool_size=1, timeout=0.2)
    try:
        with anyio.fail_after(10):
            yield cache
    finally:
        await cache.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_redis_that_never_answers_fails_the_command_instead_of_hanging() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    async with _fake_redis(silent, accepted) as cache:
        with pytest.raises(TimeoutError):
            await cache.get("k")
        with pytest.raises(TimeoutError):
            await cache.hit_sliding_window("w", limit=1, window_seconds=60)


async def test_a_reply_that_comes_after_the_timeout_is_never_read_as_another_answer() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def late_then_prompt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        first = len(accepted) == 1
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                if first:
                    await asyncio.sleep(0.5)  # past the client's deadline
                    writer.write(b"$5\r\nstale\r\n")
                else:
                    writer.write(b"$5\r\nfresh\r\n")
                await writer.drain()

    async with _fake_redis(late_then_prompt, accepted) as cache:
        with pytest.raises(TimeoutError):
            await cache.get("k")
        await asyncio.sleep(0.5)  # the stale reply has been sent by now
        assert await cache.get("k") == b"fresh"
        # A command that waits for the pool's one connection gets its own answer too.
        hold = asyncio.create_task(cache.get("k"))
        await asyncio.sleep(0)
        assert await cache.get("k") == b"fresh"
        assert await hold == b"fresh"


async def test_windows_work_after_the_server_closed_every_connection(
    cache: Cache, settings: Settings
) -> None:
    # Idle connections die with a restart or an idle timeout; the next call must not fail.
    assert (await cache.hit_sliding_window("killed", limit=5, window_seconds=60)).allowed
    if settings.REDIS_URL:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.REDIS_URL)
        try:
            await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        finally:
            await redis.aclose()
    result = await cache.hit_sliding_window("killed", limit=5, window_seconds=60)
    assert (result.allowed, result.size) == (True, 2)


async def test_a_cancelled_call_leaves_the_next_answers_right(cache: Cache) -> None:
    # A call cancelled while its reply is on the way must not leave that reply to be read as
    # the answer to a later call (a stale reply here says a count above 5).
    for _ in range(5):
        await cache.hit_sliding_window("cancelled", limit=100, window_seconds=60)
    for _ in range(20):
        task = asyncio.create_task(
            cache.hit_sliding_window("cancelled", limit=100, window_seconds=60)
        )
        await asyncio.sleep(0)  # sent, its reply not read yet (in memory: already done)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for round_number in range(20):
        result = await cache.hit_sliding_window(f"fresh-{round_number}", limit=3, window_seconds=60)
        assert (result.allowed, result.size) == (True, 1)


async def test_rate_limit_calls_reuse_a_bounded_set_of_connections(settings: Settings) -> None:
    # Above the pool size, calls wait for a connection rather than opening (and closing) one
    # each: the churn cost more than the command at concurrency 32.
    if not settings.REDIS_URL:
        pytest.skip("connections are a Redis matter")
    from redis.asyncio import Redis

    from cerberus.cache.redis import RedisCache

    observer = Redis.from_url(settings.REDIS_URL)
    cache = RedisCache(settings.REDIS_URL, pool_size=3)
    try:
        before = int((await observer.info("stats"))["total_connections_received"])
        for _ in range(5):
            await asyncio.gather(
                *(
                    cache.hit_sliding_window(f"bounded-{n}", limit=100, window_seconds=60)
                    for n in range(40)
                )
            )
        after = int((await observer.info("stats"))["total_connections_received"])
        assert after - before <= 3
    finally:
        await cache.close()
        await observer.aclose()


@pytest.fixture
def redis_socket(tmp_path: Path) -> Iterator[Path]:
    """A Redis server of this test's own, listening only on a Unix socket."""
    path = tmp_path / "redis.sock"
    with redis_server(["--port", "0", "--unixsocket", str(path)], socket_exists(path)):
        yield path


async def test_rate_limits_work_over_a_unix_socket(redis_socket: Path) -> None:
    # REDIS_URL may name a socket (unix://): the rate-limit connections are the pool's kind.
    from cerberus.cache.redis import RedisCache

    cache = RedisCache(f"unix://{redis_socket}", pool_size=2)
    try:
        results = [
            await cache.hit_sliding_window("socket", limit=2, window_seconds=60) for _ in range(3)
        ]
    finally:
        await cache.close()
    assert [result.allowed for result in results] == [True, True, False]


async def test_published_message_reaches_every_subscriber(settings: Settings) -> None:
    publisher, subscriber = create_cache(settings), create_cache(settings)
    received: list[bytes] = []
    arrived = asyncio.Event()

    def on_message(message: bytes) -> None:
        received.append(message)
        arrived.set()

    try:
        await subscriber.subscribe("invalidate", on_message)
        # With one in-process cache per process, publisher and subscriber must be the same one.
        source = publisher if settings.REDIS_URL else subscriber
        await source.publish("invalidate", b"agent:42")
        await asyncio.wait_for(arrived.wait(), timeout=2)
        assert received == [b"agent:42"]
    finally:
        await publisher.close()
        await subscriber.close()


async def test_ping_succeeds_on_a_reachable_cache(cache: Cache) -> None:
    await cache.ping()


async def test_memory_cache_drops_expired_values_nobody_reads() -> None:
    # Values set with a TTL and never read again (a session's remembered requests) were kept
    # for the life of the process: memory grew with every call.
    cache = MemoryCache()
    for number in range(100):
        await cache.set(f"old-{number}", b"v", ttl_seconds=0.05)
    await cache.set("kept", b"v", ttl_seconds=60)
    await cache.set("overwritten", b"first", ttl_seconds=0.05)
    await cache.set("overwritten", b"second", ttl_seconds=60)
    await asyncio.sleep(0.1)
    await cache.set("new", b"v", ttl_seconds=60)
    assert sorted(cache._values) == ["kept", "new", "overwritten"]
    assert await cache.get("overwritten") == b"second"


async def test_memory_cache_keeps_a_value_at_its_own_size() -> None:
    # orjson.dumps returns bytes that hold its whole output buffer (4 KiB for a short value):
    # kept as they were, a session's remembered requests took ~4 KiB each for 15 minutes.
    cache = MemoryCache()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(500):
            value = orjson.dumps({"method": "tools/call", "params": {"name": f"t{number}"}})
            await cache.set(f"request-{number}", value, ttl_seconds=60)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The key, the value, its expiry: a few hundred bytes each.
    assert grown < 500 * 1000, f"{grown / 500:.0f} bytes per value"
    assert await cache.get("request-7") == b'{"method":"tools/call","params":{"name":"t7"}}'


async def test_memory_cache_drops_windows_nobody_hit_for_their_whole_length() -> None:
    # A window per agent and per limited tool name stayed for the life of the process: an
    # agent trying tool names under a `*` per-tool limit grew memory with every name.
    cache = MemoryCache()
    for number in range(1500):
        await cache.hit_sliding_windows([Window(f"old-{number}", 10, 0.05, True)])
    await cache.hit_sliding_windows([Window("long", 10, 60, True)])
    await asyncio.sleep(0.1)
    for number in range(1500):
        await cache.hit_sliding_windows([Window(f"new-{number}", 10, 0.05, True)])
    # The old ones went at the sweep (at 2,048 windows); the long window is still counting.
    assert not any(key.startswith("old-") for key in cache._windows)
    assert len(cache._windows) == 1501
    (long,) = await cache.hit_sliding_windows([Window("long", 10, 60, True)])
    assert long.size == 2
