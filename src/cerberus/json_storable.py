"""Free-form JSON the control plane stores (an organisation's or workspace's settings, a
policy's config): only what every reader of it can write back.

Python's JSON parser takes `NaN`, `Infinity` and a lone surrogate escape (`"\\ud800"`), which
JSON has no text for: PostgreSQL refused them with a 500, SQLite stored `NaN` and answered it
as `null`, a lone surrogate made every later read of the row a 500, and orjson, which writes
policies into the shared cache, cannot encode one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def json_problem(value: Any) -> str | None:
    """Why `value` (parsed JSON, at any depth) cannot be stored as it is, or None."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (no NaN or Infinity)"
        if isinstance(item, str):
            if not _encodable(item):
                return "text must not hold a lone surrogate (\\ud800-\\udfff)"
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def storable_json(value: Any) -> Any:
    """A pydantic AfterValidator: the value, or the 422's message."""
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
