"""Guardrails: the Guardrail base class, the Verdict it returns, and the registry of types.

A guardrail is one module with one class; its pydantic fields are its config (validated,
and served as JSON Schema by the control plane). Subclasses register themselves by `type`.
Only `proxy/pipeline.py` calls guardrails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict

from cerberus.cache import Cache


class Direction(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


class Outcome(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    MODIFY = "modify"
    LOG_ONLY = "log_only"
    THROTTLE = "throttle"


class Family(StrEnum):
    """Where a guardrail runs in the pipeline (product spec §4 gives the order per direction)."""

    RBAC = "rbac"
    RATE_LIMIT = "rate_limit"
    CONTENT = "content"
    PII = "pii"
    SECRETS = "secrets"
    INJECTION = "injection"
    PINNING = "pinning"


# Policy actions an admin can choose; each guardrail type says which of these it supports.
POLICY_ACTIONS = ("block", "redact", "log_only", "throttle")


class Finding(NamedTuple):
    """What was found and where (JSON paths into the message), never the matched value.

    Named tuples, this and Verdict: immutable like the frozen dataclasses they were, and
    three times cheaper to build (a pipeline builds several per message)."""

    type: str
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, as meant
    where: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "count": self.count, "where": list(self.where)}


class Verdict(NamedTuple):
    outcome: Outcome
    guardrail: str = ""
    findings: tuple[Finding, ...] = ()
    reason: str = ""
    # The rewritten JSON-RPC message, when outcome is MODIFY.
    message: dict[str, Any] | None = None
    retry_after_seconds: float | None = None


ALLOW = Verdict(Outcome.ALLOW)


@dataclass
class CheckContext:
    """Who sent the message and what it answers; guardrails read this, never the database."""

    organisation_id: str
    workspace_id: str
    agent_id: str
    direction: Direction
    method: str | None = None
    tool_name: str | None = None
    # For a response: the request it answers (method, params), when the proxy knows it; for
    # an answer that came on another HTTP request (a resumed stream), as the session store
    # kept it: the method and the params that name the tool, prompt or resource.
    request: Mapping[str, Any] | None = None
    # The called tool's declared outputSchema, when known (redaction must keep results valid).
    output_schema: Mapping[str, Any] | None = None
    # The shared cache, for guardrails that count or remember across instances.
    cache: Cache | None = None
    # The HTTP request's headers (any case), when the proxy has them: redaction must not
    # change a body field that a 2026-07-28 Mcp-Name / Mcp-Param-* header mirrors.
    request_headers: Mapping[str, str] | None = None
    # Bytes of the body (or stream event) the message came in, when the proxy knows it: the
    # pipeline walks a large message's texts off the event loop (0 when unknown: small).
    message_bytes: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


class Guardrail(BaseModel):
    """Base of every guardrail type; a subclass's fields are its config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    family: ClassVar[Family]
    directions: ClassVar[frozenset[Direction]]
    actions: ClassVar[tuple[str, ...]] = ("block", "log_only")
    description: ClassVar[str] = ""

    action: str = "block"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            REGISTRY[cls.type] = cls

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        """Pure checks override this; it must not do I/O."""
        raise NotImplementedError(f"{self.type} has no synchronous check")

    async def check_async(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        """Checks that need I/O (rate limits) override this; the pipeline awaits it when it
        is overridden, and calls `check` itself when it is not (no coroutine per message)."""
        return self.check(message, context)

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        schema = cls.model_json_schema()
        schema.get("properties", {}).pop("action", None)
        return schema


REGISTRY: dict[str, type[Guardrail]] = {}


def guardrail_types() -> list[type[Guardrail]]:
    _load_builtin_guardrails()
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def get_guardrail_type(name: str) -> type[Guardrail] | None:
    _load_builtin_guardrails()
    return REGISTRY.get(name)


def _load_builtin_guardrails() -> None:
    """Importing the modules registers their classes; the list lives in builtin.py."""
    import cerberus.guardrails.builtin  # noqa: F401
