"""Audit: every proxy decision, written in batches and queried by admins."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    """`rows` in lists of `size` (the last one shorter), each built when it is asked for:
    a batch's rows are made chunk by chunk, between two chances for the loop to serve."""
    remaining = iter(rows)
    while chunk := list(islice(remaining, size)):
        yield chunk
