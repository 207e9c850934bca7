"""What the agent routes take and answer; a key appears only in `AgentWithKey`, once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cerberus.field_errors import reject_null
from cerberus.timestamps import UTCTimestamp

Name = Annotated[str, Field(min_length=1, max_length=200)]
AgentStatus = Literal["active", "expired", "revoked"]
MAX_GRACE_SECONDS = 30 * 24 * 3600


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=2000)
    expires_at: UTCTimestamp | None = Field(
        default=None, description="when the key stops working (ISO 8601 with offset)"
    )


class AgentUpdate(BaseModel):
    """Partial; `null` clears `description` and `expires_at`."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    expires_at: UTCTimestamp | None = None

    _not_null = field_validator("name", mode="before")(reject_null)


class AgentRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_period_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="how long the old key keeps working; 0 ends it at once",
    )
    expires_at: UTCTimestamp | None = Field(
        default=None, description="expiry of the new key; the old expiry is kept if omitted"
    )


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str
    workspace_id: str
    name: str
    description: str | None
    key_prefix: str = Field(description="the start of the key, for recognising it")
    status: AgentStatus
    expires_at: datetime | None
    revoked_at: datetime | None
    previous_key_expires_at: datetime | None = Field(
        description="until when the key replaced by the last rotation still works"
    )
    last_used_at: datetime | None
    usage_count: int
    created_at: datetime
    updated_at: datetime


class AgentWithKey(AgentRead):
    key: str = Field(description="the API key; shown only in this answer, store it now")
