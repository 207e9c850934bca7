"""A blocking call held in place, to show that the event loop serves other requests meanwhile.

Wrapped around a library call a handler makes (bcrypt's check, FastAPI's OpenAPI build), a
`Held` waits, in whatever thread runs it, until the test has had /health answered. Run on
the event loop it would hold the loop, /health could not be answered, and its wait would
end unreleased: `waited == [False]`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


class Held:
    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call
        self.entered = threading.Event()
        self.released = threading.Event()
        self.waited: list[bool] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.entered.is_set():  # only the first call is held
            self.entered.set()
            self.waited.append(self.released.wait(5))
        return self._call(*args, **kwargs)


async def health_while_held(
    http: httpx.AsyncClient, held: Held, pending: Awaitable[httpx.Response]
) -> tuple[httpx.Response, httpx.Response]:
    """Start `pending`; once it is inside the held call, ask /health, then release it.
    Returns (/health's answer, pending's answer)."""
    task = asyncio.ensure_future(pending)
    assert await asyncio.to_thread(held.entered.wait, 5)
    health = await http.get("/health")
    held.released.set()
    return health, await task
