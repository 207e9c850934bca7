from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
import uvloop

from cerberus.reply_timer import SLACK_SECONDS, deadlines

# Bounds a wait that a broken timer would leave hanging; far above any deadline below.
GIVE_UP = 5.0


async def _failed_at(waiter: asyncio.Future[Any]) -> float:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiter), GIVE_UP)
    failed_at = asyncio.get_running_loop().time()
    assert waiter.done(), "the waiter outlived its deadline"  # wait_for's own TimeoutError
    assert isinstance(waiter.exception(), TimeoutError)
    return failed_at


async def test_a_reply_that_never_comes_fails_once_its_deadline_has_passed() -> None:
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()
    deadline = loop.time() + 0.05
    deadlines(loop).watch(deadline, waiter)
    assert await _failed_at(waiter) >= deadline - SLACK_SECONDS


async def test_a_shorter_deadline_is_kept_while_a_longer_one_is_armed() -> None:
    loop = asyncio.get_running_loop()
    due = deadlines(loop)
    patient: asyncio.Future[Any] = loop.create_future()
    hasty: asyncio.Future[Any] = loop.create_future()
    due.watch(loop.time() + 60, patient)
    deadline = loop.time() + 0.05
    due.watch(deadline, hasty)
    assert await _failed_at(hasty) >= deadline - SLACK_SECONDS
    assert not patient.done()
    due.release(patient)


async def test_each_deadline_is_kept_after_an_earlier_one_has_fired() -> None:
    loop = asyncio.get_running_loop()
    due = deadlines(loop)
    start = loop.time()
    waiters = [loop.create_future() for _ in range(3)]
    for offset, waiter in enumerate(waiters):
        due.watch(start + 0.05 * (offset + 1), waiter)
    for offset, waiter in enumerate(waiters):
        assert await _failed_at(waiter) >= start + 0.05 * (offset + 1) - SLACK_SECONDS


async def test_a_reply_that_came_in_is_left_alone_and_not_held_until_its_deadline() -> None:
    # The future holds the answer; kept until a deadline 30 s away, every call of those
    # 30 s would stay in memory.
    loop = asyncio.get_running_loop()
    due = deadlines(loop)
    answered: asyncio.Future[Any] = loop.create_future()
    unanswered: asyncio.Future[Any] = loop.create_future()
    due.watch(loop.time() + 30, answered)
    due.watch(loop.time() + 0.05, unanswered)
    answered.set_result(bytearray(1024))
    due.release(answered)
    await _failed_at(unanswered)
    gone = weakref.ref(answered)
    del answered
    gc.collect()
    assert gone() is None


def test_each_loop_has_its_own_deadlines_and_lets_go_of_them_when_it_is_gone() -> None:
    first, second = uvloop.new_event_loop(), asyncio.new_event_loop()
    try:
        assert deadlines(first) is deadlines(first)
        assert deadlines(first) is not deadlines(second)
        held = weakref.ref(deadlines(second))
    finally:
        first.close()
        second.close()
    del first, second
    gc.collect()
    assert held() is None
