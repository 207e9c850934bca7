from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.agents.models import Agent
from cerberus.pagination import MAX_PAGE, MAX_PER_PAGE
from cerberus.tenancy.models import Organisation, User
from tests.audit.events import add_event, blocked_by
from tests.factories import create_agent, create_organisation, create_user, create_workspace

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def tenant(session: AsyncSession) -> tuple[Organisation, Agent]:
    organisation = await create_organisation(session)
    agent, _key = await create_agent(session, await create_workspace(session, organisation))
    return organisation, agent


async def test_a_viewer_reads_the_events_of_their_organisation(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, agent = await tenant(session)
    viewer = await create_user(session, organisation, role="org_viewer")
    await add_event(session, agent, at=T0, tool_name="older")
    blocked = await add_event(
        session, agent, at=T0 + timedelta(seconds=1), action="block", triggered=blocked_by("rbac")
    )

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/audit-events", headers=headers_for(viewer)
    )

    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["page"], body["per_page"]) == (2, 1, 50)
    first = body["items"][0]
    assert first["decision_id"] == blocked.decision_id
    assert first["guardrails_triggered"][0]["guardrail"] == "rbac"
    assert first["created_at"].startswith("2026-03-10T12:00:01")


async def test_filters_and_paging_pass_through_the_query_string(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, agent = await tenant(session)
    admin = await create_user(session, organisation)
    for minute in range(5):
        await add_event(session, agent, at=T0 + timedelta(minutes=minute), action="block")
    await add_event(session, agent, at=T0, action="allow")

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/audit-events",
        params={
            "action": "block",
            "agent_id": agent.id,
            "since": "2026-03-10T12:01:00Z",
            "until": "2026-03-10T12:04:00",
            "per_page": 2,
            "page": 2,
        },
        headers=headers_for(admin),
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 3
    assert [item["created_at"][11:16] for item in body["items"]] == ["12:01"]


async def test_another_organisations_trail_answers_404(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    mine, _agent = await tenant(session)
    theirs, their_agent = await tenant(session)
    admin = await create_user(session, mine)
    event = await add_event(session, their_agent)
    headers = headers_for(admin)

    paths = [
        f"/organisations/{theirs.id}/audit-events",
        f"/organisations/{theirs.id}/audit-events/export",
        f"/organisations/{theirs.id}/analytics",
        f"/audit-events/{event.decision_id}",
    ]
    for path in paths:
        answer = await client.get(API + path, headers=headers)
        assert answer.status_code == 404, path
        assert event.decision_id not in answer.text


async def test_a_super_admin_reads_any_organisation_but_not_a_missing_one(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, agent = await tenant(session)
    root = await create_user(session, None, role="super_admin")
    event = await add_event(session, agent)
    headers = headers_for(root)

    url = f"{API}/organisations/{organisation.id}/audit-events"
    listed = await client.get(url, headers=headers)
    one = await client.get(f"{API}/audit-events/{event.decision_id}", headers=headers)
    missing = await client.get(f"{API}/organisations/nope/audit-events", headers=headers)

    assert listed.json()["total"] == 1
    assert one.json()["id"] == event.id
    assert missing.status_code == 404
    assert missing.json() == {"detail": "organisation not found"}


async def test_an_event_is_read_by_its_decision_id(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, agent = await tenant(session)
    viewer = await create_user(session, organisation, role="org_viewer")
    event = await add_event(session, agent, upstream_status=200, upstream_latency_ms=12.5)

    url = f"{API}/audit-events/{event.decision_id}"
    answer = await client.get(url, headers=headers_for(viewer))
    unknown = await client.get(f"{API}/audit-events/unknown", headers=headers_for(viewer))

    assert answer.status_code == 200
    assert answer.json()["upstream_latency_ms"] == 12.5
    assert unknown.status_code == 404


async def test_the_trail_needs_a_token(client: httpx.AsyncClient, session: AsyncSession) -> None:
    organisation, _agent = await tenant(session)

    answer = await client.get(f"{API}/organisations/{organisation.id}/audit-events")

    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("path", "query", "reason"),
    [
        ("audit-events", "action=nope", "action: "),
        ("audit-events", "direction=sideways", "direction: "),
        ("audit-events", "since=yesterday", "since: "),
        ("audit-events", "since=2026-01-02T00:00Z&until=2026-01-01T00:00Z", "since must be"),
        ("audit-events", "per_page=0", "per_page: "),
        ("audit-events", "per_page=1000", "per_page: "),
        # An offset past what the databases' integers hold was a 500 (found by schemathesis).
        ("audit-events", "page=191952224764295692754191655108608", "page: "),
        ("audit-events/export", "format=xml", "format: "),
        ("audit-events/export", "since=2026-01-02T00:00Z&until=2026-01-01T00:00Z", "since must"),
        # Times that exist with their offset but not in UTC were a 500 (OverflowError).
        ("audit-events", "since=9999-12-31T23:59:59-01:00", "since: "),
        ("audit-events", "until=0001-01-01T00:00:00%2B01:00", "until: "),
        ("audit-events/export", "since=9999-12-31T23:59:59-01:00", "since: "),
        ("audit-events/export", "until=0001-01-01T00:00:00%2B01:00", "until: "),
        ("analytics", "period=year", "period: "),
    ],
)
async def test_bad_query_values_answer_422_with_a_reason(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Headers,
    path: str,
    query: str,
    reason: str,
) -> None:
    organisation, _agent = await tenant(session)
    admin = await create_user(session, organisation)

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/{path}?{query}", headers=headers_for(admin)
    )

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(reason)
    assert "\n" not in answer.json()["detail"]


@pytest.mark.parametrize("path", ["audit-events", "audit-events/export"])
async def test_the_widest_window_utc_can_hold_is_accepted(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers, path: str
) -> None:
    organisation, agent = await tenant(session)
    admin = await create_user(session, organisation)
    await add_event(session, agent, at=T0)

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/{path}",
        params={"since": "0001-01-01T00:00:00-01:00", "until": "9999-12-31T23:59:59+01:00"},
        headers=headers_for(admin),
    )

    assert answer.status_code == 200
    assert T0.isoformat()[:19] in answer.text


async def test_the_last_page_that_can_be_asked_for_is_an_empty_page(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, _agent = await tenant(session)
    admin = await create_user(session, organisation)

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/audit-events?page={MAX_PAGE}&per_page={MAX_PER_PAGE}",
        headers=headers_for(admin),
    )

    assert answer.status_code == 200
    assert answer.json()["items"] == []


async def test_analytics_answer_for_the_requested_workspace_and_period(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation, agent = await tenant(session)
    viewer = await create_user(session, organisation, role="org_viewer")
    await add_event(session, agent, tool_name="search", processing_ms=2.0, upstream_latency_ms=30)
    await add_event(session, agent, action="block", triggered=blocked_by("rbac"), tool_name="rm")

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/analytics",
        params={"workspace_id": agent.workspace_id, "period": "week"},
        headers=headers_for(viewer),
    )

    assert answer.status_code == 200
    body = answer.json()
    assert (body["period"], body["bucket"], len(body["time_series"])) == ("week", "day", 7)
    assert (body["total_requests"], body["allowed"], body["blocked"]) == (2, 1, 1)
    assert body["block_rate"] == 0.5
    assert body["top_blocked_guardrails"] == [{"guardrail": "rbac", "count": 1}]
    assert body["latency"]["upstream_latency_ms"]["p99"] == 30.0
    assert {t["tool_name"] for t in body["requests_by_tool"]} == {"search", "rm"}


@pytest.mark.parametrize("path", ["audit-events", "audit-events/export"])
async def test_a_nul_in_a_filter_finds_what_the_writer_stored_for_it(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers, path: str
) -> None:
    # The writer stores U+0000 as U+FFFD. Sent as it was, the filter failed the query on
    # PostgreSQL: a 500, and an export broke off after its 200.
    organisation, agent = await tenant(session)
    viewer = await create_user(session, organisation, role="org_viewer")
    await add_event(session, agent, at=T0, tool_name="read\ufffdfile")
    await add_event(session, agent, at=T0, tool_name="readfile")

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/{path}",
        params={"tool_name": "read\x00file", "agent_id": agent.id},
        headers=headers_for(viewer),
    )

    assert answer.status_code == 200
    assert answer.text.count("read\ufffdfile") == 1
    assert "readfile" not in answer.text
