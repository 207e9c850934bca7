"""What the change-history route answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organisation_id: str | None
    actor_id: str | None
    actor_email: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client_address: str | None
    created_at: datetime
