"""The integers a policy's config may hold: those the gateway's JSON encoder (orjson) writes.

A config goes through orjson into the shared cache, so a policy holding any other integer
could never be evaluated. The API refuses one (policies/service.py) and the proxy's pipeline
build treats a stored one as an invalid policy (policies/compiled.py); this module imports
nothing of the control plane, so the proxy's start-up does not load FastAPI for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONFIG_INT_MIN = -(2**63)
CONFIG_INT_MAX = 2**64 - 1
CONFIG_INT_RANGE = f"must be an integer from {CONFIG_INT_MIN} to {CONFIG_INT_MAX}"


def integer_out_of_range(config: Mapping[str, Any]) -> tuple[str | int, ...] | None:
    """Where in `config` (JSON, at any depth) the first integer outside that range is, if any."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), config)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not CONFIG_INT_MIN <= value <= CONFIG_INT_MAX:
                return path
        elif isinstance(value, Mapping):
            stack.extend(((*path, key), item) for key, item in reversed(list(value.items())))
        elif isinstance(value, list | tuple):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(value))))
    return None
