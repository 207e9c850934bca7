"""What the audit routes take and answer: event filters, pages of events, analytics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cerberus.timestamps import UTCTimestampOrNaive

Action = Literal["allow", "block", "modify", "log_only", "throttle"]
DirectionName = Literal["request", "response"]
Period = Literal["day", "week", "month"]

# Outcomes where the message did not reach the other side.
BLOCKED_ACTIONS: tuple[str, ...] = ("block", "throttle")
# Outcomes where it did, possibly rewritten (modify) or only recorded (log_only).
PASSED_ACTIONS: tuple[str, ...] = ("allow", "modify", "log_only")


class AuditFilters(BaseModel):
    """The filters every audit query (list, export) accepts; all are optional and combine.

    `since` is inclusive and `until` exclusive, so consecutive windows never count an event twice.
    A timestamp without an offset is read as UTC, so `since=2026-01-01T00:00` just works.
    """

    model_config = ConfigDict(frozen=True)

    workspace_id: str | None = None
    agent_id: str | None = None
    action: Action | None = None
    tool_name: str | None = None
    direction: DirectionName | None = None
    since: UTCTimestampOrNaive | None = None
    until: UTCTimestampOrNaive | None = None

    @field_validator("workspace_id", "agent_id", "tool_name")
    @classmethod
    def _as_stored(cls, value: str | None) -> str | None:
        # The audit writer stores U+0000 as U+FFFD (PostgreSQL's text refuses it), so the
        # filter asks for what is stored; sent as it is, it failed the query (an export
        # then broke off after its 200).
        return value.replace("\x00", "\ufffd") if value else value


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    decision_id: str
    request_id: str
    organisation_id: str
    workspace_id: str
    agent_id: str
    direction: str
    method: str | None
    tool_name: str | None
    action: str
    guardrails_triggered: list[dict[str, Any]]
    processing_ms: float
    upstream_status: int | None
    upstream_latency_ms: float | None
    created_at: datetime


class AuditEventPage(BaseModel):
    items: list[AuditEventRead]
    total: int
    page: int
    per_page: int


class Percentiles(BaseModel):
    """Nearest-rank percentiles in milliseconds; null when no event carries the value."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class LatencySummary(BaseModel):
    processing_ms: Percentiles = Field(description="time the gateway spent deciding")
    upstream_latency_ms: Percentiles = Field(description="time the upstream took to answer")


class ResponseSummary(BaseModel):
    total: int
    blocked: int
    modified: int


class GuardrailCount(BaseModel):
    guardrail: str
    count: int


class ToolCount(BaseModel):
    tool_name: str
    requests: int
    blocked: int


class TimeBucket(BaseModel):
    start: datetime
    end: datetime
    requests: int
    allowed: int
    blocked: int


class Analytics(BaseModel):
    organisation_id: str
    workspace_id: str | None
    period: Period
    since: datetime
    until: datetime
    bucket: Literal["hour", "day"]
    total_requests: int
    allowed: int
    blocked: int
    modified: int
    block_rate: float
    responses: ResponseSummary
    latency: LatencySummary
    top_blocked_guardrails: list[GuardrailCount]
    requests_by_tool: list[ToolCount]
    time_series: list[TimeBucket]
