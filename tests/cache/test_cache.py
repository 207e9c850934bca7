"""One suite, run against both cache implementations: they must behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cerberus.cache import Cache, create_cache
from cerberus.settings import Settings
from tests.conftest import flush_test_cache


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
    assert [r.count for r in results[:3]] == [1, 2, 3]
    assert results[3].count == 3
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
