"""The agent table: an AI client identity in one workspace and the hash of its key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cerberus.db import Base, IdMixin, TimestampMixin


class Agent(IdMixin, TimestampMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (
        Index("ix_agents_key_hash", "key_hash", unique=True),
        Index("ix_agents_previous_key_hash", "previous_key_hash"),
    )

    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # SHA-256 hex of the full key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64))
    key_prefix: Mapped[str] = mapped_column(String(32))
    # Rotation with a grace period keeps the old key valid until previous_key_expires_at.
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    usage_count: Mapped[int] = mapped_column(default=0)
