"""What both rate limits share: an exact sliding window per agent, and per tool if configured.

The count lives in the shared cache (`Cache.hit_sliding_window`, one atomic script in
Valkey/Redis), so every gateway instance counts against the same window. A refused request is
not counted; its verdict carries how long until the oldest counted request leaves the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import Field, PrivateAttr

from cerberus.cache import Cache
from cerberus.guardrails import (
    ALLOW,
    CheckContext,
    Direction,
    Family,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
)
from cerberus.guardrails.wildcards import WildcardSet

DEFAULT_COUNTED_METHODS = ["tools/call", "resources/read", "prompts/get"]


class SlidingWindowLimit(Guardrail):
    """Not registered itself (it has no `type`); the per-minute and per-hour types extend it."""

    family = Family.RATE_LIMIT
    directions = frozenset({Direction.REQUEST})
    actions = ("throttle", "log_only")
    window_seconds: ClassVar[float]
    window_name: ClassVar[str]

    action: str = "throttle"
    limit: int = Field(ge=1, description="Requests each agent may make in the window.")
    per_tool: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="Tighter limits for some tools (name or `*` pattern -> limit), per agent.",
    )
    methods: list[str] = Field(
        default_factory=lambda: list(DEFAULT_COUNTED_METHODS),
        description='Request methods that count (`*` patterns); `["*"]` counts every request.',
    )

    _counted: WildcardSet = PrivateAttr()
    _tool_limits: list[tuple[WildcardSet, int]] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        self._counted = WildcardSet(self.methods)
        for pattern, limit in self.per_tool.items():
            self._tool_limits.append((WildcardSet([pattern]), limit))

    async def check_async(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        method = message.get("method")
        if not isinstance(method, str) or "id" not in message or not self._counted.matches(method):
            return ALLOW  # notifications and the client's answers are not requests
        if context.cache is None:
            raise RuntimeError("rate limits need the shared cache in the check context")
        prefix = f"cerberus:rate:{self.type}:{context.agent_id}"
        tool = _tool_name(message) if method == "tools/call" else None
        if tool is not None:
            for matcher, limit in self._tool_limits:
                if matcher.matches(tool):
                    verdict = await self._hit(context.cache, f"{prefix}:tool:{tool}", limit, tool)
                    if verdict is not None:
                        return verdict
                    break
        return await self._hit(context.cache, prefix, self.limit, None) or ALLOW

    async def _hit(self, cache: Cache, key: str, limit: int, tool: str | None) -> Verdict | None:
        result = await cache.hit_sliding_window(key, limit, self.window_seconds)
        if result.allowed:
            return None
        scope = f"tool {tool!r}" if tool is not None else "this agent"
        return Verdict(
            Outcome.THROTTLE if self.action == "throttle" else Outcome.LOG_ONLY,
            self.type,
            (Finding("rate_limited", 1, ("params.name",) if tool is not None else ()),),
            f"rate limit exceeded for {scope}: {limit} requests per {self.window_name}",
            retry_after_seconds=result.retry_after_seconds,
        )


def _tool_name(message: Mapping[str, Any]) -> str | None:
    params = message.get("params")
    name = params.get("name") if isinstance(params, Mapping) else None
    return name if isinstance(name, str) else None
