"""Guardrails the proxy tests install through app.state.pipelines, to see every hook work.

They are real Guardrail subclasses run by the real Pipeline; their `type` is set after the
class is made so they stay out of the product's guardrail registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from cerberus.app import CerberusApp
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
from cerberus.proxy.pipeline import Pipeline

SEEN: list[tuple[str, CheckContext]] = []


class BlockTool(Guardrail):
    family: ClassVar[Family] = Family.RBAC
    directions: ClassVar[frozenset[Direction]] = frozenset({Direction.REQUEST})
    tool: str

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.tool_name == self.tool:
            return Verdict(Outcome.BLOCK, "test_block_tool", (Finding("denied_tool", 1),), "denied")
        return ALLOW


class ThrottleTool(Guardrail):
    family: ClassVar[Family] = Family.RATE_LIMIT
    directions: ClassVar[frozenset[Direction]] = frozenset({Direction.REQUEST})
    tool: str

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.tool_name == self.tool:
            return Verdict(
                Outcome.THROTTLE, "test_throttle", reason="slow down", retry_after_seconds=2.5
            )
        return ALLOW


class RewriteArguments(Guardrail):
    """Replaces one argument's value in tools/call requests."""

    family: ClassVar[Family] = Family.CONTENT
    directions: ClassVar[frozenset[Direction]] = frozenset({Direction.REQUEST})
    argument: str
    value: Any

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.method != "tools/call":
            return ALLOW
        params = dict(message["params"])
        params["arguments"] = {**params.get("arguments", {}), self.argument: self.value}
        return Verdict(Outcome.MODIFY, "test_rewrite", message={**message, "params": params})


class RedactEmail(Guardrail):
    """Replaces one email address in every string of a server->client message."""

    family: ClassVar[Family] = Family.PII
    directions: ClassVar[frozenset[Direction]] = frozenset({Direction.RESPONSE})
    email: str = "jane@example.com"

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        redacted = _replace(message, self.email, "[REDACTED:email]")
        if redacted == message:
            return ALLOW
        return Verdict(Outcome.MODIFY, "test_redact", (Finding("email", 1),), message=redacted)


class BlockServerMethod(Guardrail):
    family: ClassVar[Family] = Family.CONTENT
    directions: ClassVar[frozenset[Direction]] = frozenset({Direction.RESPONSE})
    method: str

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.method == self.method:
            return Verdict(Outcome.BLOCK, "test_block_method", reason="method not allowed")
        return ALLOW


class BlockMethod(Guardrail):
    """Blocks client->server messages by method (for answers: the method they answer)."""

    family: ClassVar[Family] = Family.CONTENT
    directions: ClassVar[frozenset[Direction]] = frozenset({Direction.REQUEST})
    method: str

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.method == self.method:
            return Verdict(Outcome.BLOCK, "test_block_client_method", reason="not allowed")
        return ALLOW


class Record(Guardrail):
    """Remembers every context it sees (both directions), changing nothing."""

    family: ClassVar[Family] = Family.INJECTION
    directions: ClassVar[frozenset[Direction]] = frozenset(Direction)

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        SEEN.append((str(message.get("method") or message.get("id")), context))
        return ALLOW


for _cls, _name in [
    (BlockTool, "test_block_tool"),
    (ThrottleTool, "test_throttle"),
    (RewriteArguments, "test_rewrite"),
    (RedactEmail, "test_redact"),
    (BlockServerMethod, "test_block_method"),
    (BlockMethod, "test_block_client_method"),
    (Record, "test_record"),
]:
    _cls.type = _name


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {key: _replace(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, old, new) for item in value]
    return value


class _Fixed:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def for_agent(self, *args: Any, **kwargs: Any) -> Pipeline:
        return self.pipeline


@asynccontextmanager
async def installed(app: CerberusApp, *guardrails: Guardrail) -> AsyncIterator[None]:
    """Every agent gets a Pipeline of these guardrails while the block runs."""
    original = app.state.pipelines
    SEEN.clear()
    app.state.pipelines = _Fixed(Pipeline(guardrails))
    try:
        yield
    finally:
        app.state.pipelines = original
