"""Every table, imported in one place so Alembic and tests see the whole schema."""

from cerberus.agents.models import Agent
from cerberus.audit.models import AuditEvent
from cerberus.changes.models import ChangeRecord
from cerberus.policies.models import Policy, ToolPin
from cerberus.tenancy.models import Organisation, RefreshToken, User, Workspace

__all__ = [
    "Agent",
    "AuditEvent",
    "ChangeRecord",
    "Organisation",
    "Policy",
    "RefreshToken",
    "ToolPin",
    "User",
    "Workspace",
]
