"""Policy rows (one guardrail type at one scope) and the pinned tool definitions they guard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cerberus.db import Base, IdMixin, TimestampMixin, utcnow


class Policy(IdMixin, TimestampMixin, Base):
    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_scope", "organisation_id", "workspace_id", "agent_id"),)

    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id"), default=None)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"), default=None)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    guardrail_type: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class ToolPin(IdMixin, Base):
    """A tool definition's hash as first seen (or last approved) in a workspace."""

    __tablename__ = "tool_pins"
    __table_args__ = (
        UniqueConstraint("workspace_id", "tool_name", name="uq_tool_pins_workspace_tool"),
    )

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    tool_name: Mapped[str] = mapped_column(String(256))
    definition_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A changed definition waits here until an admin approves it.
    pending_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    pending_definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    approved_by: Mapped[str | None] = mapped_column(String(36), default=None)
