"""Legacy MCP sessions as the proxy tracks them: whose they are, and what was asked in them.

A session id is not a credential (mcp-proxy.md 2.5): it is bound to the agent whose request
opened it, and refused for any other. Requests sent in a session are remembered by id so a
response that arrives on another HTTP request (a GET stream, a resumption) is still checked
with the request it answers (mcp-proxy.md 4.3). Both live in the shared cache so every
instance agrees, with a bounded in-process copy in front.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

import orjson

from cerberus.cache import Cache

logger = logging.getLogger("cerberus.proxy.sessions")

SESSION_TTL_SECONDS = 24 * 3600.0
REQUEST_TTL_SECONDS = 15 * 60.0
LOCAL_LIMIT = 10_000
MAX_NAME_CHARS = 4096


class _Bounded(OrderedDict[str, Any]):
    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > LOCAL_LIMIT:
            self.popitem(last=False)


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def id_key(message_id: Any) -> str:
    """1 and "1" are different JSON-RPC ids; the JSON text keeps them apart. 1.0 and 1 are
    one number: the SDKs answer a request sent with id 1.0 with id 1, which matched no
    request, so the answer was decided without knowing what it answers (no tool pins for
    a tools/list, no outputSchema for a tools/call)."""
    if type(message_id) is float and message_id.is_integer() and abs(message_id) < 2**63:
        message_id = int(message_id)
    return orjson.dumps(message_id).decode()


class SessionStore:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._owners = _Bounded()
        self._requests = _Bounded()

    async def _shared(self, operation: Awaitable[Any]) -> Any:
        """Run a shared-cache operation; while the cache is down, this instance's copy serves."""
        try:
            return await operation
        except Exception as exc:
            logger.warning("shared cache unavailable for sessions", extra={"error": repr(exc)})
            return None

    async def bind(self, session_id: str, agent_id: str) -> None:
        key = _session_key(session_id)
        self._owners.put(key, agent_id)
        await self._shared(
            self._cache.set(f"cerberus:mcp-session:{key}", agent_id.encode(), SESSION_TTL_SECONDS)
        )

    async def owner(self, session_id: str) -> str | None:
        key = _session_key(session_id)
        owner = self._owners.get(key)
        if owner is not None:
            return str(owner)
        raw = await self._shared(self._cache.get(f"cerberus:mcp-session:{key}"))
        if not isinstance(raw, bytes):
            return None
        self._owners.put(key, raw.decode())
        return raw.decode()

    async def forget(self, session_id: str) -> None:
        key = _session_key(session_id)
        self._owners.pop(key, None)
        await self._shared(self._cache.delete(f"cerberus:mcp-session:{key}"))

    async def remember(
        self, session_id: str, origin: str, message_id: Any, method: str, params: dict[str, Any]
    ) -> None:
        """Keep what a request asked, as far as its answer is decided with it: the method and
        the tool, prompt or resource it names (not its arguments, which nothing reads again
        and which made each kept request as large as the call); origin is "client" or
        "server" (ids are per sender)."""
        request = {"method": method, "params": _identifying(params)}
        raw = orjson.dumps(request)
        key = f"{_session_key(session_id)}:{origin}:{id_key(message_id)}"
        self._requests.put(key, request)
        await self._shared(self._cache.set(f"cerberus:mcp-request:{key}", raw, REQUEST_TTL_SECONDS))

    async def recall(self, session_id: str, origin: str, message_id: Any) -> dict[str, Any] | None:
        key = f"{_session_key(session_id)}:{origin}:{id_key(message_id)}"
        request = self._requests.get(key)
        if request is not None:
            return dict(request)
        raw = await self._shared(self._cache.get(f"cerberus:mcp-request:{key}"))
        if not isinstance(raw, bytes):
            return None
        request = orjson.loads(raw)
        self._requests.put(key, request)
        return dict(request)


def _identifying(params: dict[str, Any]) -> dict[str, Any]:
    """What an answer is decided with: the tool, prompt or resource the request names (a
    name too long to be one is not kept: no policy names it, and it would be kept 15 min)."""
    return {
        name: value
        for name in ("name", "uri")
        if isinstance(value := params.get(name), str) and len(value) <= MAX_NAME_CHARS
    }
