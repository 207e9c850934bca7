"""What the policy, guardrail catalogue and effective-policy routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from cerberus.field_errors import reject_null
from cerberus.guardrails import POLICY_ACTIONS
from cerberus.json_storable import storable_json

PolicyScope = Literal["organisation", "workspace", "agent"]
FreeConfig = Annotated[dict[str, Any], AfterValidator(storable_json)]


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
    config: FreeConfig = Field(
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
    config: FreeConfig | None = None
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
