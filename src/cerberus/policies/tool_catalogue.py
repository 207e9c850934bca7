"""The tool catalogue per workspace: every tool definition a tools/list answer showed, so
that a tools/call answer can be checked against its tool's `outputSchema` (policies/
pipelines.py). Kept in memory and shared between instances through the shared cache: the
answer that listed the tools may have gone through another instance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import orjson

from cerberus.cache import Cache

logger = logging.getLogger("cerberus.pins")

CATALOGUE_TTL_SECONDS = 24 * 3600
# After the shared catalogue lacked a tool, it is not read again for this long: without it a
# client that never lists tools (stateless agents) cost a shared-cache read on every answer.
CATALOGUE_RECHECK_SECONDS = 1.0

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class ToolCatalogue:
    def __init__(self, cache: Cache, spawn: Spawn) -> None:
        self._cache = cache
        self._spawn = spawn  # the pin store's: its tasks end when it closes
        self._catalogue: dict[str, dict[str, dict[str, Any]]] = {}
        self._catalogue_read_at: dict[str, float] = {}

    def remember_tools(self, workspace_id: str, message: Mapping[str, Any]) -> None:
        result = message.get("result")
        tools = result.get("tools") if isinstance(result, Mapping) else None
        if not isinstance(tools, list):
            return
        known = self._catalogue.setdefault(workspace_id, {})
        changed = False
        for tool in tools:
            name = tool.get("name") if isinstance(tool, Mapping) else None
            if isinstance(name, str) and known.get(name) != tool:
                known[name] = dict(tool)
                changed = True
        if changed:
            self._spawn(self._share_catalogue(workspace_id))

    async def _share_catalogue(self, workspace_id: str) -> None:
        try:
            key = _catalogue_key(workspace_id)
            raw = await self._cache.get(key)
            merged: dict[str, Any] = orjson.loads(raw) if raw else {}
            merged.update(self._catalogue.get(workspace_id, {}))
            await self._cache.set(key, orjson.dumps(merged), ttl_seconds=CATALOGUE_TTL_SECONDS)
        except Exception:
            logger.exception("could not share tool definitions")

    async def tool_definition(self, workspace_id: str, tool_name: str) -> dict[str, Any] | None:
        """A tool's definition from the last tools/list any instance saw for the workspace."""
        known = self._catalogue.get(workspace_id, {})
        if tool_name in known:
            return known[tool_name]
        now = time.monotonic()
        if now - self._catalogue_read_at.get(workspace_id, -CATALOGUE_RECHECK_SECONDS) < (
            CATALOGUE_RECHECK_SECONDS
        ):
            return None
        self._catalogue_read_at[workspace_id] = now
        raw = await self._cache.get(_catalogue_key(workspace_id))
        if raw is None:
            return None
        shared: dict[str, dict[str, Any]] = orjson.loads(raw)
        self._catalogue.setdefault(workspace_id, {}).update(shared)
        return shared.get(tool_name)

    async def output_schema(self, workspace_id: str, tool_name: str) -> dict[str, Any] | None:
        definition = await self.tool_definition(workspace_id, tool_name)
        schema = (definition or {}).get("outputSchema")
        return schema if isinstance(schema, dict) else None


def _catalogue_key(workspace_id: str) -> str:
    return f"cerberus:tools:{workspace_id}"
