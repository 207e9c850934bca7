"""Dropping expired entries from an in-process dict as it grows, at amortised O(1) a write.

A dict keyed by what callers send (API keys, tool names) keeps every key it was given unless
something removes it; entries read again are checked for expiry then, but keys nobody sends
again would stay for the life of the process. A sweep walks the dict once whenever it has
doubled since the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

SWEEP_AT_LEAST = 1024


class Sweeper:
    """Decides when a dict is due a sweep, and sweeps it."""

    __slots__ = ("_due_at",)

    def __init__(self) -> None:
        self._due_at = SWEEP_AT_LEAST

    def before_insert(self, entries: dict[K, V], expired: Callable[[V], bool]) -> None:
        """Called before a new key goes in: drops the expired entries when the dict is due."""
        if len(entries) < self._due_at:
            return
        for key in [key for key, value in entries.items() if expired(value)]:
            del entries[key]
        self._due_at = max(SWEEP_AT_LEAST, 2 * len(entries))
