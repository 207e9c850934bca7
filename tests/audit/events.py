"""Factories for the audit tests: rows written directly, as the proxy's writer would, agents,
and a database that cannot be reached."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cerberus.agents.models import Agent
from cerberus.audit.models import AuditEvent
from cerberus.db import create_engine, utcnow
from cerberus.settings import Settings
from tests.factories import create_agent, create_organisation, create_workspace


def unreachable_engine(tmp_path: Path) -> AsyncEngine:
    """An engine on a SQLite file in a folder that does not exist: every connection fails."""
    return create_engine(
        Settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    )


async def committed_agent(session: AsyncSession) -> Agent:
    """An agent in a workspace of a new organisation, committed (the writer's sessions see it)."""
    organisation = await create_organisation(session)
    workspace = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)
    await session.commit()
    return agent


def blocked_by(guardrail: str, action: str = "block") -> list[dict[str, Any]]:
    return [{"guardrail": guardrail, "action": action, "findings": [{"type": "x", "count": 1}]}]


async def add_event(
    session: AsyncSession,
    agent: Agent,
    *,
    direction: str = "request",
    action: str = "allow",
    tool_name: str | None = "echo",
    method: str | None = "tools/call",
    at: datetime | None = None,
    processing_ms: float = 1.0,
    upstream_latency_ms: float | None = None,
    upstream_status: int | None = None,
    triggered: list[dict[str, Any]] | None = None,
    flush: bool = True,
) -> AuditEvent:
    event = AuditEvent(
        request_id=uuid.uuid4().hex,
        decision_id=uuid.uuid4().hex,
        organisation_id=agent.organisation_id,
        workspace_id=agent.workspace_id,
        agent_id=agent.id,
        direction=direction,
        method=method,
        tool_name=tool_name,
        action=action,
        guardrails_triggered=triggered or [],
        processing_ms=processing_ms,
        upstream_status=upstream_status,
        upstream_latency_ms=upstream_latency_ms,
        created_at=at or utcnow(),
    )
    session.add(event)
    if flush:
        await session.flush()
    return event
