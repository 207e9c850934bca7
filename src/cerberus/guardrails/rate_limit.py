"""What both rate limits share: an exact sliding window per agent, and per tool if configured.

The count lives in the shared cache (`Cache.hit_sliding_windows`, one atomic script in
Valkey/Redis), so every gateway instance counts against the same window. A request is counted
in all its windows (the tool's and the agent's; with the pipeline's help, those of every rate
limit of the message) in one round trip, or, when one of them refuses it, in none; its verdict
carries how long until the oldest counted request leaves the full window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, NamedTuple

from pydantic import Field, PrivateAttr

from cerberus.cache import Cache, Window, WindowResult
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

# Set by the pipeline in CheckContext.extras: this message's rate-limit guardrails, in order.
# The first to run then counts the message in every window of those from itself on in one
# atomic cache call, and leaves the others their verdicts under _DECIDED.
RATE_LIMITS = "rate_limits"
_DECIDED = "rate_limit_verdicts"


class _Compiled(NamedTuple):
    """What a limit's config compiles to once, read on every message."""

    counted: WildcardSet
    tool_limits: tuple[tuple[WildcardSet, int], ...]
    enforced: bool
    # agent id -> the agent's own window, built on its first request (bounded: cleared
    # when full).
    agent_windows: dict[str, tuple[Window, None]]


_AGENT_WINDOWS_KEPT = 4096


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

    _compiled: _Compiled = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = _Compiled(
            WildcardSet(self.methods),
            tuple((WildcardSet([pattern]), limit) for pattern, limit in self.per_tool.items()),
            self.action == "throttle",
            {},
        )

    async def check_async(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        extras = context.extras
        decided = extras.get(_DECIDED)
        if decided is not None and decided[0] is message:
            verdict: Verdict | None = decided[1].pop(id(self), None)
            if verdict is not None:
                return verdict
        siblings = extras.get(RATE_LIMITS)
        group = [self] if siblings is None else _group(self, siblings)
        agent_id = context.agent_id
        planned: list[tuple[SlidingWindowLimit, list[tuple[Window, str | None]]]] = []
        windows: list[Window] = []
        for limit in group:  # loops, not comprehensions: two fewer frames per request
            own = limit._windows(message, agent_id)
            planned.append((limit, own))
            for window, _tool in own:
                windows.append(window)
        if not windows:
            return ALLOW  # notifications and the client's answers are not requests
        results = await _cache(context).hit_sliding_windows(windows)
        for result in results:
            if not result.allowed:
                break
        else:
            # Every window had room (nearly every request): every limit of the group allows.
            if len(group) > 1:
                extras[_DECIDED] = (message, {id(limit): ALLOW for limit in group[1:]})
            return ALLOW
        verdicts: dict[int, Verdict] = {}
        at = 0
        for limit, own in planned:
            verdicts[id(limit)] = limit._verdict(own, results[at : at + len(own)])
            at += len(own)
        mine = verdicts.pop(id(self))
        if verdicts:
            extras[_DECIDED] = (message, verdicts)
        return mine

    def _windows(self, message: dict[str, Any], agent_id: str) -> list[tuple[Window, str | None]]:
        """The windows this message counts in, each with the tool it limits (None: the agent's).

        The tool's window (if one is limited) comes first, then the agent's.
        """
        # Pydantic's __getattr__ for a private attribute costs ~3 µs a read; its store does not.
        compiled: _Compiled = self.__pydantic_private__["_compiled"]  # type: ignore[index]
        method = message.get("method")
        if (
            not isinstance(method, str)
            or "id" not in message
            or not compiled.counted.matches(method)
        ):
            return []
        windows: list[tuple[Window, str | None]] = []
        if compiled.tool_limits and method == "tools/call":
            tool = _tool_name(message)
            if tool is not None:
                for matcher, limit in compiled.tool_limits:
                    if matcher.matches(tool):
                        key = f"{self._key(agent_id)}:tool:{tool}"
                        window = Window(key, limit, self.window_seconds, compiled.enforced)
                        windows.append((window, tool))
                        break
        own = compiled.agent_windows.get(agent_id)
        if own is None:
            if len(compiled.agent_windows) >= _AGENT_WINDOWS_KEPT:
                compiled.agent_windows.clear()
            window = Window(self._key(agent_id), self.limit, self.window_seconds, compiled.enforced)
            own = compiled.agent_windows[agent_id] = (window, None)
        windows.append(own)
        return windows

    def _key(self, agent_id: str) -> str:
        """The cache key of the agent's window (a limited tool's adds `:tool:<name>`)."""
        return f"cerberus:rate:{self.type}:{agent_id}"

    def _verdict(
        self, windows: list[tuple[Window, str | None]], results: list[WindowResult]
    ) -> Verdict:
        """The verdict of the first full window, in the order `_windows` gives them."""
        for (window, tool), result in zip(windows, results, strict=True):
            if result.allowed:
                continue
            scope = f"tool {tool!r}" if tool is not None else "this agent"
            return Verdict(
                Outcome.THROTTLE if self.action == "throttle" else Outcome.LOG_ONLY,
                self.type,
                (Finding("rate_limited", 1, ("params.name",) if tool is not None else ()),),
                f"rate limit exceeded for {scope}: {window.limit} requests per {self.window_name}",
                retry_after_seconds=result.retry_after_seconds,
            )
        return ALLOW


def _cache(context: CheckContext) -> Cache:
    if context.cache is None:
        raise RuntimeError("rate limits need the shared cache in the check context")
    return context.cache


def _group(limit: SlidingWindowLimit, siblings: Any) -> list[SlidingWindowLimit]:
    """This limit and those the pipeline runs after it for the same message."""
    for index, sibling in enumerate(siblings):
        if sibling is limit:
            return [g for g in siblings[index:] if isinstance(g, SlidingWindowLimit)]
    return [limit]


def _tool_name(message: Mapping[str, Any]) -> str | None:
    params = message.get("params")
    name = params.get("name") if isinstance(params, Mapping) else None
    return name if isinstance(name, str) else None
