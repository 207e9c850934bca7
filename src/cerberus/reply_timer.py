"""Deadlines on awaited replies, all of a loop's on the timer of the earliest.

The upstream client and the cache client wait for a reply on every proxied call, with a
deadline seconds away that almost never passes. `asyncio.timeout` (its task bookkeeping and
rescheduling) cost about a fifth of a rate-limited call's client-side CPU; a loop timer of
its own for each reply still cost ~7,000 instructions a call (uvloop allocates, starts,
stops and closes a libuv handle; docs/benchmarks.md). Here a loop keeps one timer, armed for
the earliest deadline of the replies it waits for: when it fires it fails those whose
deadline has passed and arms itself for the next. With one timeout for every call, each new
deadline is later than one already armed, so a call costs a dict entry and no timer.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

# Loop timers may fire up to a millisecond early (uvloop rounds delays to milliseconds): a
# reply due within it is failed now rather than by a second timer an instant later.
SLACK_SECONDS = 0.001


class Deadlines:
    """The replies one event loop waits for, each with its deadline (loop time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the registry below is keyed weakly by the loop, and a value holding its
        # key would keep both for good.
        self._loop = weakref.ref(loop)
        self._waiting: dict[asyncio.Future[Any], float] = {}
        self._armed_at: float | None = None  # the earliest armed timer, if any

    def watch(self, deadline: float, waiter: asyncio.Future[Any]) -> None:
        """Fail `waiter` with TimeoutError once `deadline` has passed unless it is done by
        then; `release` it when its reply is in (or its wait is given up)."""
        self._waiting[waiter] = deadline
        armed_at = self._armed_at
        if armed_at is None or deadline < armed_at:
            loop = self._loop()
            if loop is not None:  # a waiter of a loop that is gone is never awaited
                self._arm(loop, deadline)

    def release(self, waiter: asyncio.Future[Any]) -> None:
        self._waiting.pop(waiter, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        self._armed_at = at
        loop.call_at(at, self._expire, loop, at)

    def _expire(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._armed_at == at:
            self._armed_at = None  # a later timer, armed before an earlier one, may remain
        now = loop.time() + SLACK_SECONDS
        waiting = self._waiting
        next_at: float | None = None
        for waiter, deadline in list(waiting.items()):
            if deadline <= now:
                del waiting[waiter]
                if not waiter.done():
                    waiter.set_exception(TimeoutError())
            elif next_at is None or deadline < next_at:
                next_at = deadline
        if next_at is not None and (self._armed_at is None or next_at < self._armed_at):
            self._arm(loop, next_at)


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)


def deadlines(loop: asyncio.AbstractEventLoop) -> Deadlines:
    """The loop's deadlines (each connection asks once, when it is made)."""
    found = _BY_LOOP.get(loop)
    if found is None:
        found = _BY_LOOP[loop] = Deadlines(loop)
    return found
