"""Audit export as JSON Lines or CSV, streamed row by row so a large trail never sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.audit import service
from cerberus.audit.models import AuditEvent
from cerberus.audit.schemas import AuditFilters

ExportFormat = Literal["jsonl", "csv"]

MEDIA_TYPES: dict[ExportFormat, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
}

COLUMNS = (
    "decision_id",
    "request_id",
    "created_at",
    "organisation_id",
    "workspace_id",
    "agent_id",
    "direction",
    "method",
    "tool_name",
    "action",
    "guardrails_triggered",
    "processing_ms",
    "upstream_status",
    "upstream_latency_ms",
)

# Rows fetched per round trip; the database cursor holds the rest.
BATCH = 500

# A cell starting with one of these is run as a formula by spreadsheet programs, and tool
# names come from the agent, so such cells get a leading apostrophe (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_record(row: RowMapping) -> dict[str, Any]:
    record = dict(row)
    # The same form the JSON API gives (pydantic writes UTC as "Z").
    record["created_at"] = row["created_at"].isoformat().replace("+00:00", "Z")
    return record


def jsonl_line(row: RowMapping) -> bytes:
    return orjson.dumps(as_record(row)) + b"\n"


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_line(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


def csv_row(row: RowMapping) -> bytes:
    record = as_record(row)
    return csv_line([csv_cell(record[column]) for column in COLUMNS])


def stream_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    organisation_id: str,
    filters: AuditFilters,
    export_format: ExportFormat,
) -> AsyncIterator[bytes]:
    """The matching events, oldest first, one encoded line at a time.

    The query is built (and the filters checked) now, so bad input is a 4xx before the body
    starts. The rows are read later with a session of their own: the request's session is
    closed before a streamed body is sent.
    """
    query = (
        select(*(getattr(AuditEvent, column) for column in COLUMNS))
        .where(*service.conditions(organisation_id, filters))
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .execution_options(yield_per=BATCH)
    )
    encode = jsonl_line if export_format == "jsonl" else csv_row

    async def lines() -> AsyncIterator[bytes]:
        if export_format == "csv":
            yield csv_line(list(COLUMNS))
        async with sessionmaker() as session:
            result = await session.stream(query)
            async for row in result.mappings():
                yield encode(row)

    return lines()
