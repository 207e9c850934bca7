"""Audit events written back from the gateway's log: what the writer could not store.

A gateway that stops while its database is unreachable logs each event still queued, whole,
as an `audit event not written` line (`AuditWriter.stop`) rather than exit with it in memory.
`cerberus audit restore` reads those lines back, from a file of the gateway's log or from a
log export that puts something (a timestamp, a stream name) before each JSON line, and
inserts the events. An event already stored (the same decision id) is left as it is, so
restoring a log twice, or one that holds the same line twice, writes each event once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from math import isfinite
from typing import Any

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cerberus.audit import chunks
from cerberus.audit.models import AuditEvent
from cerberus.audit.writer import COLUMNS, UNWRITTEN
from cerberus.json_storable import json_problem

# Decision ids looked up per query: well under SQLite's 999 bound parameters.
LOOKUP_CHUNK = 500
# The columns a logged event must hold as text, and those it may hold as null instead.
_COLUMNS = AuditEvent.__table__.columns
_TEXT = tuple(
    n for n in COLUMNS if isinstance(_COLUMNS[n].type, String) and not _COLUMNS[n].nullable
)
_OPTIONAL_TEXT = tuple(
    n for n in COLUMNS if isinstance(_COLUMNS[n].type, String) and _COLUMNS[n].nullable
)
_LENGTHS = {n: int(getattr(_COLUMNS[n].type, "length", 0)) for n in _TEXT + _OPTIONAL_TEXT}


@dataclass
class Restored:
    written: int = 0
    already_stored: int = 0
    unreadable: int = 0  # lines that name an unwritten event but do not hold one


def unwritten_events(lines: Iterable[str]) -> tuple[dict[str, AuditEvent], int]:
    """The events the lines hold, by decision id (a repeated one once), and how many lines
    were an `audit event not written` line without a readable event in them."""
    events: dict[str, AuditEvent] = {}
    unreadable = 0
    for line in lines:
        if UNWRITTEN not in line:
            continue
        start = line.find("{")
        try:
            entry = json.loads(line[start:]) if start >= 0 else None
        except ValueError:
            entry = None
        if entry is None:
            unreadable += 1  # names an unwritten event, but is not the JSON line that holds it
            continue
        if not isinstance(entry, dict) or entry.get("message") != UNWRITTEN:
            continue  # another line that mentions one
        event = _event(entry.get("audit_event"))
        if event is None:
            unreadable += 1
        else:
            events[event.decision_id] = event
    return events, unreadable


async def restore(sessionmaker: async_sessionmaker[AsyncSession], lines: Iterable[str]) -> Restored:
    """Insert the unwritten events the lines hold that the database does not have yet."""
    events, unreadable = unwritten_events(lines)
    result = Restored(unreadable=unreadable)
    async with sessionmaker() as session:
        for chunk in chunks(list(events), LOOKUP_CHUNK):
            query = select(AuditEvent.decision_id).where(AuditEvent.decision_id.in_(chunk))
            stored = set(await session.scalars(query))
            session.add_all(events[decision] for decision in chunk if decision not in stored)
            result.already_stored += len(stored)
            result.written += len(chunk) - len(stored)
        await session.commit()
    return result


def _event(logged: Any) -> AuditEvent | None:
    """The row a logged event would have been; None when a field is missing or of the
    wrong type (a line edited or cut short)."""
    if not isinstance(logged, dict) or not set(COLUMNS) <= logged.keys():
        return None
    fields = {name: logged[name] for name in COLUMNS}
    try:
        fields["guardrails_triggered"] = json.loads(fields["guardrails_triggered"])
        created_at = datetime.fromisoformat(logged["created_at"])
        if created_at.tzinfo is None:
            return None
        # As the database keeps it: an offset that moves it past year 1 or 9999 cannot be.
        created_at = created_at.astimezone(UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    status = fields["upstream_status"]
    if not (
        all(_fits(fields[name], name) for name in _TEXT)
        and all(fields[name] is None or _fits(fields[name], name) for name in _OPTIONAL_TEXT)
        and isinstance(fields["guardrails_triggered"], list)
        and json_problem(fields["guardrails_triggered"]) is None
        and _number(fields["processing_ms"])
        and (status is None or (type(status) is int and -(2**31) <= status < 2**31))
        and (fields["upstream_latency_ms"] is None or _number(fields["upstream_latency_ms"]))
    ):
        return None
    return AuditEvent(**fields, created_at=created_at)


def _fits(value: Any, column: str) -> bool:
    """Text the column takes on both databases: within its length, without U+0000 (which
    PostgreSQL refuses; the writer never logs one) or a lone surrogate (no driver encodes
    it)."""
    return (
        isinstance(value, str)
        and len(value) <= _LENGTHS[column]
        and "\x00" not in value
        and json_problem(value) is None
    )


def _number(value: Any) -> bool:
    if isinstance(value, float):
        return isfinite(value)
    return type(value) is int and abs(value) < 2**53  # a float column keeps it exactly
