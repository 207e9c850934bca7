from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.audit import service
from cerberus.audit.schemas import AuditFilters
from cerberus.errors import NotFound, Unprocessable
from tests.audit.events import add_event
from tests.factories import create_agent, create_organisation, create_workspace

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def make_agent(session: AsyncSession, organisation=None, workspace=None):  # type: ignore[no-untyped-def]
    organisation = organisation or await create_organisation(session)
    workspace = workspace or await create_workspace(session, organisation)
    agent, _key = await create_agent(session, workspace)
    return agent


async def test_events_are_listed_newest_first_with_the_total(session: AsyncSession) -> None:
    agent = await make_agent(session)
    for minute in (5, 1, 3):
        await add_event(session, agent, at=T0 + timedelta(minutes=minute), tool_name=f"t{minute}")

    page = await service.list_events(session, agent.organisation_id, AuditFilters())

    assert [item.tool_name for item in page.items] == ["t5", "t3", "t1"]
    assert (page.total, page.page, page.per_page) == (3, 1, 50)


async def test_pages_split_the_list_without_overlap(session: AsyncSession) -> None:
    agent = await make_agent(session)
    for second in range(7):
        await add_event(session, agent, at=T0 + timedelta(seconds=second), tool_name=str(second))
    org = agent.organisation_id

    pages = [
        await service.list_events(session, org, AuditFilters(), page=n, per_page=3)
        for n in (1, 2, 3, 4)
    ]

    names = [[item.tool_name for item in p.items] for p in pages]
    assert names == [["6", "5", "4"], ["3", "2", "1"], ["0"], []]
    assert {p.total for p in pages} == {7}


async def test_events_with_the_same_timestamp_keep_a_stable_order(session: AsyncSession) -> None:
    agent = await make_agent(session)
    for index in range(5):
        await add_event(session, agent, at=T0, tool_name=str(index))
    org = agent.organisation_id

    pages = [
        await service.list_events(session, org, AuditFilters(), page=n, per_page=2)
        for n in (1, 2, 3)
    ]

    seen = [item.decision_id for p in pages for item in p.items]
    assert len(seen) == len(set(seen)) == 5


async def test_each_filter_narrows_the_list(session: AsyncSession) -> None:
    organisation = await create_organisation(session)
    workspace = await create_workspace(session, organisation)
    other_workspace = await create_workspace(session, organisation)
    agent = await make_agent(session, organisation, workspace)
    other_agent = await make_agent(session, organisation, workspace)
    elsewhere = await make_agent(session, organisation, other_workspace)

    await add_event(session, agent, at=T0, tool_name="read_file")
    await add_event(session, agent, at=T0 + timedelta(minutes=1), action="block")
    await add_event(session, agent, at=T0 + timedelta(minutes=2), direction="response")
    await add_event(session, other_agent, at=T0 + timedelta(minutes=3))
    await add_event(session, elsewhere, at=T0 + timedelta(minutes=4))

    async def count(**filters: object) -> int:
        page = await service.list_events(session, organisation.id, AuditFilters(**filters))  # type: ignore[arg-type]
        return page.total

    assert await count() == 5
    assert await count(workspace_id=workspace.id) == 4
    assert await count(workspace_id=other_workspace.id) == 1
    assert await count(agent_id=agent.id) == 3
    assert await count(action="block") == 1
    assert await count(tool_name="read_file") == 1
    assert await count(direction="response") == 1
    assert await count(direction="request", agent_id=agent.id) == 2
    assert await count(since=T0 + timedelta(minutes=1)) == 4
    assert await count(until=T0 + timedelta(minutes=1)) == 1
    assert await count(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == 2


async def test_another_organisations_events_are_never_listed(session: AsyncSession) -> None:
    mine = await make_agent(session)
    theirs = await make_agent(session)
    await add_event(session, mine)
    await add_event(session, theirs)

    page = await service.list_events(session, mine.organisation_id, AuditFilters())

    assert [item.agent_id for item in page.items] == [mine.id]
    filtered = AuditFilters(workspace_id=theirs.workspace_id)
    assert (await service.list_events(session, mine.organisation_id, filtered)).total == 0


async def test_a_timestamp_without_offset_is_read_as_utc(session: AsyncSession) -> None:
    agent = await make_agent(session)
    await add_event(session, agent, at=T0)

    naive = AuditFilters(since=datetime(2026, 3, 10, 11, 59), until=datetime(2026, 3, 10, 12, 1))

    assert naive.since == T0 - timedelta(minutes=1)
    assert (await service.list_events(session, agent.organisation_id, naive)).total == 1


async def test_an_empty_window_is_refused(session: AsyncSession) -> None:
    with pytest.raises(Unprocessable, match="since must be before until"):
        await service.list_events(session, "org", AuditFilters(since=T0, until=T0))


async def test_an_event_is_found_by_its_decision_id(session: AsyncSession) -> None:
    agent = await make_agent(session)
    event = await add_event(session, agent)

    found = await service.get_by_decision_id(session, event.decision_id)

    assert found.id == event.id
    with pytest.raises(NotFound):
        await service.get_by_decision_id(session, "no-such-decision")


async def test_a_deleted_organisation_is_not_found(session: AsyncSession) -> None:
    organisation = await create_organisation(session, deleted_at=T0)

    with pytest.raises(NotFound):
        await service.ensure_organisation(session, organisation.id)
