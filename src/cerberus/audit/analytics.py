"""Analytics over the audit trail: totals, block rate, latency percentiles, top lists, series.

Every figure is computed in portable SQL (no date_trunc, percentile_cont or JSON operators),
so PostgreSQL and SQLite give the same answer. Request figures count request-direction
events, one per client message; response-direction events are summarised on their own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from cerberus.audit.models import AuditEvent
from cerberus.audit.schemas import (
    BLOCKED_ACTIONS,
    PASSED_ACTIONS,
    Analytics,
    GuardrailCount,
    LatencySummary,
    Percentiles,
    Period,
    ResponseSummary,
    TimeBucket,
    ToolCount,
)
from cerberus.db import utcnow

PERCENTILES = (50, 90, 99)
TOP_GUARDRAILS = 10
TOP_TOOLS = 20
_BUCKETS: dict[str, tuple[Literal["hour", "day"], timedelta, int]] = {
    "day": ("hour", timedelta(hours=1), 24),
    "week": ("day", timedelta(days=1), 7),
    "month": ("day", timedelta(days=1), 30),
}


@dataclass(frozen=True)
class Window:
    """The period as whole UTC hours or days; the last bucket holds `now`."""

    bucket: Literal["hour", "day"]
    edges: list[datetime]

    @property
    def since(self) -> datetime:
        return self.edges[0]

    @property
    def until(self) -> datetime:
        return self.edges[-1]


def window(period: Period, now: datetime) -> Window:
    bucket, size, count = _BUCKETS[period]
    anchor = now.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        anchor = anchor.replace(hour=0)
    first = anchor - size * (count - 1)
    return Window(bucket, [first + size * index for index in range(count + 1)])


async def summarise(
    session: AsyncSession,
    organisation_id: str,
    *,
    workspace_id: str | None = None,
    period: Period = "day",
    now: datetime | None = None,
) -> Analytics:
    span = window(period, now or utcnow())
    scope: list[ColumnElement[bool]] = [
        AuditEvent.organisation_id == organisation_id,
        AuditEvent.created_at >= span.since,
        AuditEvent.created_at < span.until,
    ]
    if workspace_id is not None:
        scope.append(AuditEvent.workspace_id == workspace_id)

    counts = await _counts_by_direction_and_action(session, scope)
    requests, responses = counts.get("request", Counter()), counts.get("response", Counter())
    total = sum(requests.values())
    blocked = sum(requests[action] for action in BLOCKED_ACTIONS)
    return Analytics(
        organisation_id=organisation_id,
        workspace_id=workspace_id,
        period=period,
        since=span.since,
        until=span.until,
        bucket=span.bucket,
        total_requests=total,
        allowed=sum(requests[action] for action in PASSED_ACTIONS),
        blocked=blocked,
        modified=requests["modify"],
        block_rate=round(blocked / total, 4) if total else 0.0,
        responses=ResponseSummary(
            total=sum(responses.values()),
            blocked=sum(responses[action] for action in BLOCKED_ACTIONS),
            modified=responses["modify"],
        ),
        latency=LatencySummary(
            processing_ms=await _percentiles(session, AuditEvent.processing_ms, scope),
            # The proxy copies an exchange's upstream latency onto its response events too;
            # counting only request events gives each upstream call its weight once.
            upstream_latency_ms=await _percentiles(
                session, AuditEvent.upstream_latency_ms, [*scope, _requests()]
            ),
        ),
        top_blocked_guardrails=await _top_blocked_guardrails(session, scope),
        requests_by_tool=await _requests_by_tool(session, scope),
        time_series=await _time_series(session, scope, span),
    )


def _requests() -> ColumnElement[bool]:
    return AuditEvent.direction == "request"


def _is_blocked() -> ColumnElement[int]:
    return case((AuditEvent.action.in_(BLOCKED_ACTIONS), 1), else_=0)


async def _counts_by_direction_and_action(
    session: AsyncSession, scope: list[ColumnElement[bool]]
) -> dict[str, Counter[str]]:
    rows = await session.execute(
        select(AuditEvent.direction, AuditEvent.action, func.count())
        .where(*scope)
        .group_by(AuditEvent.direction, AuditEvent.action)
    )
    counts: dict[str, Counter[str]] = {}
    for direction, action, count in rows:
        counts.setdefault(direction, Counter())[action] = count
    return counts


async def _percentiles(
    session: AsyncSession,
    column: InstrumentedAttribute[Any],
    scope: list[ColumnElement[bool]],
) -> Percentiles:
    """Nearest-rank percentiles over the events in scope that carry a value.

    One count, then one ranked query picking the three ranks: the database sorts, and
    only three rows come back, whatever the number of events.
    """
    where = [*scope, column.is_not(None)]
    count = await session.scalar(select(func.count()).select_from(AuditEvent).where(*where)) or 0
    if count == 0:
        return Percentiles(count=0, p50=None, p90=None, p99=None)
    ranks = {p: max(1, -(-p * count // 100)) for p in PERCENTILES}
    ranked = (
        select(
            column.label("value"),
            func.row_number().over(order_by=(column, AuditEvent.id)).label("rank"),
        )
        .where(*where)
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.rank, ranked.c.value).where(ranked.c.rank.in_(set(ranks.values())))
    )
    by_rank = {rank: float(value) for rank, value in rows}
    return Percentiles(
        count=count,
        p50=by_rank.get(ranks[50]),
        p90=by_rank.get(ranks[90]),
        p99=by_rank.get(ranks[99]),
    )


async def _top_blocked_guardrails(
    session: AsyncSession, scope: list[ColumnElement[bool]]
) -> list[GuardrailCount]:
    """Which guardrail blocked each blocked decision (either direction), most frequent first.

    JSON functions differ between the two databases, so the (small) `guardrails_triggered`
    lists of blocked events are streamed and counted here.
    """
    counter: Counter[str] = Counter()
    result = await session.stream_scalars(
        select(AuditEvent.guardrails_triggered)
        .where(*scope, AuditEvent.action.in_(BLOCKED_ACTIONS))
        .execution_options(yield_per=1000)
    )
    async for triggered in result:
        counter[_blocking_guardrail(triggered)] += 1
    ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [GuardrailCount(guardrail=name, count=n) for name, n in ordered[:TOP_GUARDRAILS]]


def _blocking_guardrail(triggered: list[dict[str, Any]] | None) -> str:
    """The entry that blocked; the pipeline stops there, so it is the last blocking entry."""
    entries = [entry for entry in triggered or [] if isinstance(entry, dict)]
    for entry in reversed(entries):
        if entry.get("action") in BLOCKED_ACTIONS:
            return str(entry.get("guardrail") or "unknown")
    return str(entries[-1].get("guardrail") or "unknown") if entries else "unknown"


async def _requests_by_tool(
    session: AsyncSession, scope: list[ColumnElement[bool]]
) -> list[ToolCount]:
    count = func.count().label("requests")
    rows = await session.execute(
        select(AuditEvent.tool_name, count, func.sum(_is_blocked()))
        .where(*scope, _requests(), AuditEvent.tool_name.is_not(None))
        .group_by(AuditEvent.tool_name)
        .order_by(count.desc(), AuditEvent.tool_name)
        .limit(TOP_TOOLS)
    )
    return [
        ToolCount(tool_name=name, requests=requests, blocked=int(blocked or 0))
        for name, requests, blocked in rows
    ]


async def _time_series(
    session: AsyncSession, scope: list[ColumnElement[bool]], span: Window
) -> list[TimeBucket]:
    """Request events per bucket, every bucket present (zeros included)."""
    # A CASE over the bucket edges numbers each event's bucket portably. It is computed in
    # a subquery because PostgreSQL cannot match a GROUP BY expression with bound parameters.
    upper_edges = span.edges[1:]
    bucket_index = case(
        *((AuditEvent.created_at < edge, index) for index, edge in enumerate(upper_edges)),
        else_=len(upper_edges) - 1,
    )
    numbered = (
        select(bucket_index.label("bucket"), _is_blocked().label("blocked"))
        .where(*scope, _requests())
        .subquery()
    )
    rows = await session.execute(
        select(numbered.c.bucket, func.count(), func.sum(numbered.c.blocked)).group_by(
            numbered.c.bucket
        )
    )
    found = {int(index): (int(total), int(blocked or 0)) for index, total, blocked in rows}
    series = []
    for index, (start, end) in enumerate(zip(span.edges[:-1], upper_edges, strict=True)):
        total, blocked = found.get(index, (0, 0))
        series.append(
            TimeBucket(
                start=start, end=end, requests=total, allowed=total - blocked, blocked=blocked
            )
        )
    return series
