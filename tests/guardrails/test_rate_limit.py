"""Rate limits: exactly `limit` requests per window and agent, on both cache backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from cerberus.cache import Cache, create_cache
from cerberus.guardrails import CheckContext, Direction, Outcome, get_guardrail_type, rate_limit
from cerberus.guardrails.rate_limit import RATE_LIMITS, SlidingWindowLimit
from cerberus.guardrails.rate_limit_per_hour import RateLimitPerHour
from cerberus.guardrails.rate_limit_per_minute import RateLimitPerMinute
from cerberus.proxy.pipeline import Pipeline
from cerberus.settings import Settings
from tests.conftest import flush_test_cache


@pytest.fixture
async def cache(settings: Settings) -> AsyncIterator[Cache]:
    await flush_test_cache(settings)
    instance = create_cache(settings)
    yield instance
    await instance.close()


def context(cache: Cache, agent: str = "agent-1") -> CheckContext:
    return CheckContext("org", "ws", agent, Direction.REQUEST, cache=cache)


def call(tool: str = "search", request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool}}


async def outcomes(limit: RateLimitPerMinute, ctx: CheckContext, count: int) -> list[Outcome]:
    return [(await limit.check_async(call(), ctx)).outcome for _ in range(count)]


async def test_the_limit_admits_exactly_n_then_throttles_with_retry_after(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=3)
    ctx = context(cache)
    assert await outcomes(limit, ctx, 3) == [Outcome.ALLOW] * 3
    verdict = await limit.check_async(call(), ctx)
    assert verdict.outcome is Outcome.THROTTLE
    assert verdict.retry_after_seconds is not None
    assert 0 < verdict.retry_after_seconds <= 60
    assert "3 requests per minute" in verdict.reason
    assert verdict.findings[0].type == "rate_limited"


async def test_each_agent_has_its_own_window(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=1)
    assert await outcomes(limit, context(cache, "a"), 2) == [Outcome.ALLOW, Outcome.THROTTLE]
    assert await outcomes(limit, context(cache, "b"), 1) == [Outcome.ALLOW]


async def test_per_minute_and_per_hour_count_separately(cache: Cache) -> None:
    ctx = context(cache)
    minute = RateLimitPerMinute(limit=2)
    hour = RateLimitPerHour(limit=3)
    results = []
    for _ in range(4):
        results.append(
            (
                (await minute.check_async(call(), ctx)).outcome,
                (await hour.check_async(call(), ctx)).outcome,
            )
        )
    assert [m for m, _ in results] == [
        Outcome.ALLOW,
        Outcome.ALLOW,
        Outcome.THROTTLE,
        Outcome.THROTTLE,
    ]
    assert [h for _, h in results] == [
        Outcome.ALLOW,
        Outcome.ALLOW,
        Outcome.ALLOW,
        Outcome.THROTTLE,
    ]
    verdict = await hour.check_async(call(), ctx)
    assert verdict.retry_after_seconds is not None
    assert verdict.retry_after_seconds > 60
    assert "per hour" in verdict.reason


async def test_concurrent_requests_never_exceed_the_limit(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=10)
    ctx = context(cache)
    verdicts = await asyncio.gather(*(limit.check_async(call(), ctx) for _ in range(50)))
    assert sum(v.outcome is Outcome.ALLOW for v in verdicts) == 10
    assert sum(v.outcome is Outcome.THROTTLE for v in verdicts) == 40


async def test_per_tool_limits_are_tighter_and_per_tool(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=10, per_tool={"export_*": 1})
    ctx = context(cache)
    assert (await limit.check_async(call("export_csv"), ctx)).outcome is Outcome.ALLOW
    verdict = await limit.check_async(call("export_csv"), ctx)
    assert verdict.outcome is Outcome.THROTTLE
    assert "export_csv" in verdict.reason
    # Another tool matching the same pattern has its own window; other tools only the agent's.
    assert (await limit.check_async(call("export_pdf"), ctx)).outcome is Outcome.ALLOW
    assert (await limit.check_async(call("search"), ctx)).outcome is Outcome.ALLOW


async def test_only_counted_methods_use_the_window(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=1)
    ctx = context(cache)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    answer = {"jsonrpc": "2.0", "id": "s1", "result": {}}
    for message in (listing, listing, notification, answer):
        assert (await limit.check_async(message, ctx)).outcome is Outcome.ALLOW
    assert await outcomes(limit, ctx, 2) == [Outcome.ALLOW, Outcome.THROTTLE]


async def test_methods_star_counts_every_request(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=2, methods=["*"])
    ctx = context(cache)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    results = [(await limit.check_async(listing, ctx)).outcome for _ in range(3)]
    assert results == [Outcome.ALLOW, Outcome.ALLOW, Outcome.THROTTLE]


async def test_log_only_reports_but_lets_the_request_through(cache: Cache) -> None:
    limit = RateLimitPerMinute(limit=1, action="log_only")
    assert await outcomes(limit, context(cache), 2) == [Outcome.ALLOW, Outcome.LOG_ONLY]


async def test_without_the_shared_cache_the_check_fails_rather_than_passes() -> None:
    limit = RateLimitPerMinute(limit=1)
    with pytest.raises(RuntimeError):
        await limit.check_async(call(), CheckContext("o", "w", "a", Direction.REQUEST))


def test_config_is_validated_and_registered() -> None:
    assert get_guardrail_type("rate_limit_per_minute") is RateLimitPerMinute
    assert get_guardrail_type("rate_limit_per_hour") is RateLimitPerHour
    with pytest.raises(ValidationError):
        RateLimitPerMinute.model_validate({"limit": 0, "action": "throttle"})
    with pytest.raises(ValidationError):
        RateLimitPerMinute.model_validate({"limit": 5, "per_tool": {"x": 0}})
    with pytest.raises(ValidationError):
        RateLimitPerMinute.model_validate({"action": "throttle"})
    assert RateLimitPerMinute(limit=1).action == "throttle"


async def test_a_request_refused_by_the_agent_limit_does_not_use_up_its_tool_limit(
    cache: Cache,
) -> None:
    limit = RateLimitPerMinute(limit=2, per_tool={"export_*": 2})
    ctx = context(cache)
    assert (await limit.check_async(call("search"), ctx)).outcome is Outcome.ALLOW
    assert (await limit.check_async(call("export_csv"), ctx)).outcome is Outcome.ALLOW
    refused = await limit.check_async(call("export_csv"), ctx)
    assert refused.outcome is Outcome.THROTTLE
    assert "this agent" in refused.reason
    # Same type and agent, so the same windows: export_csv's holds one request, not two.
    roomier = RateLimitPerMinute(limit=100, per_tool={"export_*": 2})
    assert (await roomier.check_async(call("export_csv"), ctx)).outcome is Outcome.ALLOW
    assert (await roomier.check_async(call("export_csv"), ctx)).outcome is Outcome.THROTTLE


async def test_a_log_only_tool_limit_still_counts_the_request_for_the_agent(
    cache: Cache,
) -> None:
    limit = RateLimitPerMinute(limit=3, per_tool={"export_*": 1}, action="log_only")
    ctx = context(cache)
    outcomes_seen = [(await limit.check_async(call("export_csv"), ctx)).outcome for _ in range(4)]
    # The tool's window is full after one; the request goes through and the agent's counts it.
    assert outcomes_seen == [Outcome.ALLOW, Outcome.LOG_ONLY, Outcome.LOG_ONLY, Outcome.LOG_ONLY]
    verdict = await limit.check_async(call("search"), ctx)
    assert verdict.outcome is Outcome.LOG_ONLY
    assert "this agent" in verdict.reason


def grouped(cache: Cache, *limits: SlidingWindowLimit) -> CheckContext:
    """A context as the pipeline makes it: it names the message's rate limits in order."""
    ctx = context(cache)
    ctx.extras[RATE_LIMITS] = limits
    return ctx


async def test_the_pipeline_counts_a_call_in_every_limit_at_once_or_in_none(
    cache: Cache,
) -> None:
    minute = RateLimitPerMinute(limit=2)
    hour = RateLimitPerHour(limit=3)
    pipeline = Pipeline([hour, minute])
    results = []
    for index in range(4):
        ctx = grouped(cache, *pipeline.guardrails(Direction.REQUEST))
        decision = await pipeline.decide(call(request_id=index), ctx)
        results.append((decision.outcome, decision.guardrails_triggered))
    assert results == [
        (Outcome.ALLOW, []),
        (Outcome.ALLOW, []),
        (Outcome.THROTTLE, ["rate_limit_per_minute"]),
        (Outcome.THROTTLE, ["rate_limit_per_minute"]),
    ]
    # The hour counted the two admitted calls only: one more fits in it.
    alone = context(cache)
    assert (await hour.check_async(call(), alone)).outcome is Outcome.ALLOW
    assert (await hour.check_async(call(), alone)).outcome is Outcome.THROTTLE


async def test_a_call_refused_by_a_later_limit_is_not_counted_by_an_earlier_one(
    cache: Cache,
) -> None:
    minute = RateLimitPerMinute(limit=5)
    hour = RateLimitPerHour(limit=1)
    pipeline = Pipeline([minute, hour])
    outcomes_seen = []
    for index in range(3):
        ctx = grouped(cache, *pipeline.guardrails(Direction.REQUEST))
        outcomes_seen.append((await pipeline.decide(call(request_id=index), ctx)).outcome)
    assert outcomes_seen == [Outcome.ALLOW, Outcome.THROTTLE, Outcome.THROTTLE]
    # The minute holds the one admitted call: four more fit.
    alone = context(cache)
    assert await outcomes(minute, alone, 5) == [Outcome.ALLOW] * 4 + [Outcome.THROTTLE]


async def test_a_log_only_limit_that_is_full_does_not_stop_the_others_counting(
    cache: Cache,
) -> None:
    minute = RateLimitPerMinute(limit=1, action="log_only")
    hour = RateLimitPerHour(limit=2)
    pipeline = Pipeline([minute, hour])
    outcomes_seen = []
    for index in range(3):
        ctx = grouped(cache, *pipeline.guardrails(Direction.REQUEST))
        outcomes_seen.append((await pipeline.decide(call(request_id=index), ctx)).outcome)
    assert outcomes_seen == [Outcome.ALLOW, Outcome.LOG_ONLY, Outcome.THROTTLE]


async def test_a_verdict_decided_for_one_message_is_not_used_for_the_next(
    cache: Cache,
) -> None:
    minute = RateLimitPerMinute(limit=1)
    hour = RateLimitPerHour(limit=5)
    ctx = grouped(cache, minute, hour)
    assert (await minute.check_async(call(request_id=1), ctx)).outcome is Outcome.ALLOW
    # The pipeline stopped before the hour (say, another guardrail blocked); the next message
    # on a reused context is decided afresh, not with the first message's leftover verdict.
    refused = await minute.check_async(call(request_id=2), ctx)
    assert refused.outcome is Outcome.THROTTLE
    assert (await hour.check_async(call(request_id=3), ctx)).outcome is Outcome.ALLOW
    alone = context(cache)
    assert await outcomes(hour, alone, 4) == [Outcome.ALLOW] * 3 + [Outcome.THROTTLE]


async def test_grouped_limits_stay_exact_across_instances(cache: Cache, settings: Settings) -> None:
    # Three gateway instances share Redis; in process there is only the one memory cache.
    others = [create_cache(settings) for _ in range(2)] if settings.REDIS_URL else []
    caches = [cache, *others] if others else [cache] * 3
    minute = RateLimitPerMinute(limit=12)
    hour = RateLimitPerHour(limit=7, per_tool={"export_*": 5})
    pipelines = [Pipeline([minute, hour]) for _ in caches]

    async def one(index: int) -> Outcome:
        pipeline = pipelines[index % 3]
        ctx = CheckContext("org", "ws", "agent-1", Direction.REQUEST, cache=caches[index % 3])
        ctx.extras[RATE_LIMITS] = pipeline.guardrails(Direction.REQUEST)
        tool = "export_csv" if index % 2 else "search"
        return (await pipeline.decide(call(tool, index), ctx)).outcome

    try:
        results = await asyncio.gather(*(one(index) for index in range(40)))
    finally:
        for other in others:
            await other.close()
    admitted = results.count(Outcome.ALLOW)
    assert admitted == 7
    assert results.count(Outcome.THROTTLE) == 33
    # The minute counted exactly the admitted calls: five more fit in its twelve.
    alone = context(cache)
    assert await outcomes(minute, alone, 6) == [Outcome.ALLOW] * 5 + [Outcome.THROTTLE]


async def test_the_pipeline_itself_groups_its_limits(cache: Cache) -> None:
    # No extras set by the caller: the pipeline names the message's limits, so a call the
    # hour refuses is not counted by the minute (evaluated one by one, it would be).
    minute = RateLimitPerMinute(limit=5)
    hour = RateLimitPerHour(limit=1)
    pipeline = Pipeline([minute, hour])
    outcomes_seen = []
    for index in range(3):
        decision = await pipeline.decide(call(request_id=index), context(cache))
        outcomes_seen.append(decision.outcome)
    assert outcomes_seen == [Outcome.ALLOW, Outcome.THROTTLE, Outcome.THROTTLE]
    alone = context(cache)
    assert await outcomes(minute, alone, 5) == [Outcome.ALLOW] * 4 + [Outcome.THROTTLE]


async def test_an_agent_counts_on_in_its_window_after_the_agents_windows_are_forgotten(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each limit keeps the window it built for an agent, at most so many, forgetting them all
    # when full: what it forgets is only how to name the window, never the count in it.
    monkeypatch.setattr(rate_limit, "_AGENT_WINDOWS_KEPT", 2)
    limit = RateLimitPerMinute(limit=2)
    assert await outcomes(limit, context(cache, "a"), 1) == [Outcome.ALLOW]
    for other in ("b", "c", "d"):
        assert await outcomes(limit, context(cache, other), 1) == [Outcome.ALLOW]
    assert await outcomes(limit, context(cache, "a"), 2) == [Outcome.ALLOW, Outcome.THROTTLE]


async def test_a_limit_in_two_pipelines_is_grouped_with_each_pipelines_own_limits(
    cache: Cache,
) -> None:
    # One limit object can serve several pipelines: in each it must be grouped with that
    # pipeline's limits, whichever pipeline ran last.
    minute = RateLimitPerMinute(limit=100)
    strict, lenient = RateLimitPerHour(limit=3), RateLimitPerHour(limit=100)
    first, second = Pipeline([minute, strict]), Pipeline([minute, lenient])
    seen = []
    for index, pipeline in enumerate([first, second, first, second, second, first]):
        decision = await pipeline.decide(call(request_id=index), context(cache))
        seen.append((decision.outcome, decision.guardrails_triggered))
    # Both hour limits count in the agent's one hourly window: the lenient one lets the
    # second pipeline's calls through however full it is; the strict one refuses the first
    # pipeline's last call (five are counted by then).
    assert seen == [(Outcome.ALLOW, [])] * 5 + [(Outcome.THROTTLE, ["rate_limit_per_hour"])]
