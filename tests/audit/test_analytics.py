from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.models import Agent
from cerberus.audit import analytics
from tests.audit.events import add_event, blocked_by
from tests.factories import create_agent, create_organisation, create_workspace

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
THIS_HOUR = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
TODAY = datetime(2026, 3, 10, tzinfo=UTC)


async def make_agent(session: AsyncSession) -> Agent:
    workspace = await create_workspace(session, await create_organisation(session))
    agent, _key = await create_agent(session, workspace)
    return agent


def test_a_day_is_24_hourly_buckets_ending_with_the_current_hour() -> None:
    span = analytics.window("day", NOW)

    assert span.bucket == "hour"
    assert len(span.edges) == 25
    assert span.since == THIS_HOUR - timedelta(hours=23)
    assert span.until == THIS_HOUR + timedelta(hours=1)


def test_a_week_and_a_month_are_whole_utc_days() -> None:
    week, month = analytics.window("week", NOW), analytics.window("month", NOW)

    assert (week.bucket, len(week.edges) - 1, week.since) == ("day", 7, TODAY - timedelta(days=6))
    assert (month.bucket, len(month.edges) - 1) == ("day", 30)
    assert month.until == TODAY + timedelta(days=1)


async def test_totals_count_request_events_and_responses_apart(session: AsyncSession) -> None:
    agent = await make_agent(session)
    for action in ("allow", "allow", "modify", "log_only", "block", "throttle"):
        await add_event(session, agent, action=action, at=NOW)
    await add_event(session, agent, direction="response", action="block", at=NOW)
    await add_event(session, agent, direction="response", action="modify", at=NOW)
    await add_event(session, agent, direction="response", action="allow", at=NOW)

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    assert (result.total_requests, result.allowed, result.blocked) == (6, 4, 2)
    assert result.modified == 1
    assert result.block_rate == round(2 / 6, 4)
    assert result.responses.model_dump() == {"total": 3, "blocked": 1, "modified": 1}


async def test_events_outside_the_period_or_scope_are_not_counted(session: AsyncSession) -> None:
    organisation = await create_organisation(session)
    agent, _key = await create_agent(session, await create_workspace(session, organisation))
    neighbour, _key = await create_agent(session, await create_workspace(session, organisation))
    stranger = await make_agent(session)
    await add_event(session, agent, at=NOW)
    await add_event(session, agent, at=THIS_HOUR - timedelta(hours=23))
    await add_event(session, agent, at=THIS_HOUR - timedelta(hours=23, seconds=1))
    await add_event(session, neighbour, at=NOW)
    await add_event(session, stranger, at=NOW)
    org = agent.organisation_id

    whole = await analytics.summarise(session, org, now=NOW)
    one = await analytics.summarise(session, org, workspace_id=agent.workspace_id, now=NOW)
    week = await analytics.summarise(session, org, period="week", now=NOW)

    assert whole.total_requests == 3
    assert one.total_requests == 2
    assert week.total_requests == 4


async def test_an_empty_period_has_zero_rate_and_no_percentiles(session: AsyncSession) -> None:
    agent = await make_agent(session)

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    assert (result.total_requests, result.block_rate) == (0, 0.0)
    assert result.latency.processing_ms.model_dump() == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
    }
    assert result.top_blocked_guardrails == []
    assert result.requests_by_tool == []
    assert [bucket.requests for bucket in result.time_series] == [0] * 24


async def test_latency_percentiles_are_nearest_rank(session: AsyncSession) -> None:
    agent = await make_agent(session)
    # 1..100 in a shuffled order, so the database has to sort.
    for value in [*range(100, 50, -1), *range(1, 51)]:
        upstream = float(value * 10) if value <= 20 else None
        await add_event(
            session,
            agent,
            at=NOW,
            processing_ms=float(value),
            upstream_latency_ms=upstream,
            flush=False,
        )
    # A response event repeats its exchange's upstream latency: not counted twice.
    await add_event(
        session, agent, direction="response", at=NOW, processing_ms=0.0, upstream_latency_ms=1e6
    )

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    processing, upstream = result.latency.processing_ms, result.latency.upstream_latency_ms
    # Every decision counts for processing time, the response's 0.0 included.
    assert (processing.count, processing.p50, processing.p90, processing.p99) == (
        101,
        50.0,
        90.0,
        99.0,
    )
    # Only the 20 events that reached the upstream: 10, 20 ... 200.
    assert (upstream.count, upstream.p50, upstream.p90, upstream.p99) == (20, 100.0, 180.0, 200.0)


async def test_a_single_event_is_every_percentile(session: AsyncSession) -> None:
    agent = await make_agent(session)
    await add_event(session, agent, at=NOW, processing_ms=7.5)

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    latency = result.latency.processing_ms
    assert (latency.p50, latency.p90, latency.p99) == (7.5, 7.5, 7.5)


async def test_top_blocked_guardrails_name_the_guardrail_that_blocked(
    session: AsyncSession,
) -> None:
    agent = await make_agent(session)
    redacted_then_blocked = [
        {"guardrail": "pii_email", "action": "modify", "findings": []},
        {"guardrail": "secrets", "action": "block", "findings": []},
    ]
    for _ in range(3):
        await add_event(session, agent, action="block", at=NOW, triggered=blocked_by("rbac"))
    await add_event(session, agent, action="block", at=NOW, triggered=redacted_then_blocked)
    await add_event(
        session,
        agent,
        direction="response",
        action="block",
        at=NOW,
        triggered=blocked_by("secrets"),
    )
    await add_event(
        session,
        agent,
        action="throttle",
        at=NOW,
        triggered=blocked_by("rate_limit_per_minute", "throttle"),
    )
    # Redacted but passed: not a block.
    await add_event(session, agent, action="modify", at=NOW, triggered=blocked_by("pii_email"))

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    assert [(g.guardrail, g.count) for g in result.top_blocked_guardrails] == [
        ("rbac", 3),
        ("secrets", 2),
        ("rate_limit_per_minute", 1),
    ]


async def test_requests_by_tool_count_request_calls_most_used_first(session: AsyncSession) -> None:
    agent = await make_agent(session)
    for tool, action in [("search", "allow"), ("search", "block"), ("search", "allow")]:
        await add_event(session, agent, tool_name=tool, action=action, at=NOW)
    await add_event(session, agent, tool_name="delete", action="block", at=NOW)
    await add_event(session, agent, tool_name="search", direction="response", at=NOW)
    await add_event(session, agent, tool_name=None, method="tools/list", at=NOW)

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    assert [t.model_dump() for t in result.requests_by_tool] == [
        {"tool_name": "search", "requests": 3, "blocked": 1},
        {"tool_name": "delete", "requests": 1, "blocked": 1},
    ]


async def test_the_time_series_puts_each_request_in_its_hour(session: AsyncSession) -> None:
    agent = await make_agent(session)
    await add_event(session, agent, at=THIS_HOUR - timedelta(hours=23))
    await add_event(session, agent, at=THIS_HOUR - timedelta(minutes=1), action="block")
    await add_event(session, agent, at=THIS_HOUR - timedelta(minutes=59))
    await add_event(session, agent, at=THIS_HOUR)
    await add_event(session, agent, at=NOW, action="throttle")
    await add_event(session, agent, at=NOW, direction="response")

    result = await analytics.summarise(session, agent.organisation_id, now=NOW)

    series = result.time_series
    assert len(series) == 24
    assert series[0].start == THIS_HOUR - timedelta(hours=23)
    assert series[-1].end == THIS_HOUR + timedelta(hours=1)
    counts = {index: (b.requests, b.allowed, b.blocked) for index, b in enumerate(series)}
    assert counts[0] == (1, 1, 0)
    assert counts[22] == (2, 1, 1)
    assert counts[23] == (2, 1, 1)
    assert all(counts[index] == (0, 0, 0) for index in range(1, 22))
    assert sum(b.requests for b in series) == result.total_requests


async def test_the_weekly_series_has_one_bucket_per_day(session: AsyncSession) -> None:
    agent = await make_agent(session)
    await add_event(session, agent, at=TODAY - timedelta(days=6))
    await add_event(session, agent, at=TODAY - timedelta(seconds=1))
    await add_event(session, agent, at=NOW)

    result = await analytics.summarise(session, agent.organisation_id, period="week", now=NOW)

    assert [bucket.requests for bucket in result.time_series] == [1, 0, 0, 0, 0, 1, 1]
    assert [b.start for b in result.time_series][-1] == TODAY
