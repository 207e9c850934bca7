"""The audit event table: one row per proxy decision, never holding the sensitive values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cerberus.db import Base, IdMixin, utcnow


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_time", "organisation_id", "created_at"),
        Index("ix_audit_events_workspace_time", "workspace_id", "created_at"),
        Index("ix_audit_events_agent_time", "agent_id", "created_at"),
        Index("ix_audit_events_decision_id", "decision_id", unique=True),
        Index("ix_audit_events_request_id", "request_id"),
    )

    request_id: Mapped[str] = mapped_column(String(64))
    decision_id: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[str] = mapped_column(String(36))
    workspace_id: Mapped[str] = mapped_column(String(36))
    agent_id: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(10))
    method: Mapped[str | None] = mapped_column(String(128), default=None)
    tool_name: Mapped[str | None] = mapped_column(String(256), default=None)
    action: Mapped[str] = mapped_column(String(20))
    guardrails_triggered: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    processing_ms: Mapped[float] = mapped_column(Float, default=0.0)
    upstream_status: Mapped[int | None] = mapped_column(Integer, default=None)
    upstream_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
