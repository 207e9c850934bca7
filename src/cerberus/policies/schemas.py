"""What the policy, guardrail catalogue and effective-policy routes take and answer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cerberus.field_errors import reject_null
from cerberus.guardrails import POLICY_ACTIONS

PolicyScope = Literal["organisation", "workspace", "agent"]

# The integers the gateway's JSON encoder (orjson) can write: a policy's config goes through
# it into the shared cache, so a policy with any other integer could never be evaluated.
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


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    guardrail_type: str = Field(min_length=1, max_length=64, examples=["rate_limit_per_minute"])
    action: str = Field(
        min_length=1,
        max_length=20,
        description=f"one of the guardrail type's actions ({', '.join(POLICY_ACTIONS)})",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="validated against the guardrail type's JSON Schema"
    )
    priority: int = Field(default=0, ge=-1000, le=1000)
    enabled: bool = True
    workspace_id: str | None = Field(
        default=None, description="workspace scope; omit both ids for organisation-wide"
    )
    agent_id: str | None = Field(
        default=None, description="agent scope; the agent must be in the policy's workspace"
    )


class PolicyUpdate(BaseModel):
    """Partial; `workspace_id` and `agent_id` may be set to null to widen the scope."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    action: str | None = Field(default=None, min_length=1, max_length=20)
    config: dict[str, Any] | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    enabled: bool | None = None
    workspace_id: str | None = None
    agent_id: str | None = None

    _not_null = field_validator("name", "action", "config", "priority", "enabled", mode="before")(
        reject_null
    )


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    workspace_id: str | None
    agent_id: str | None
    scope: PolicyScope
    name: str
    description: str | None
    guardrail_type: str
    action: str
    config: dict[str, Any]
    priority: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


class GuardrailTypeRead(BaseModel):
    type: str
    family: str
    directions: list[str]
    actions: list[str]
    description: str
    config_schema: dict[str, Any] = Field(description="JSON Schema of the policy `config`")


class EffectivePolicyEntry(BaseModel):
    guardrail_type: str
    scope: PolicyScope
    policy: PolicyRead


class EffectivePolicy(BaseModel):
    """For each guardrail type, the one policy that applies (agent over workspace over org)."""

    organisation_id: str
    workspace_id: str
    agent_id: str | None
    policies: list[EffectivePolicyEntry]
