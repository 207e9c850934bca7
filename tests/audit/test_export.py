import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.audit import export
from cerberus.tenancy.models import User
from tests.audit.events import add_event, blocked_by
from tests.factories import create_agent, create_organisation, create_user, create_workspace

API = "/control-plane/api/v1"
Headers = Callable[[User], dict[str, str]]
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def test_jsonl_export_streams_every_matching_event_oldest_first(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation = await create_organisation(session)
    agent, _key = await create_agent(session, await create_workspace(session, organisation))
    viewer = await create_user(session, organisation, role="org_viewer")
    # More rows than one fetch batch, so the cursor is read in several round trips.
    count = export.BATCH * 2 + 7
    for index in range(count):
        await add_event(
            session, agent, at=T0 + timedelta(seconds=index), tool_name=str(index), flush=False
        )
    await add_event(session, agent, at=T0, direction="response", tool_name="skip-me")
    url = f"{API}/organisations/{organisation.id}/audit-events/export"

    async with client.stream(
        "GET", url, params={"format": "jsonl", "direction": "request"}, headers=headers_for(viewer)
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-ndjson"
        assert "attachment" in answer.headers["content-disposition"]
        lines = [line async for line in answer.aiter_lines() if line]

    records = [orjson.loads(line) for line in lines]
    assert [record["tool_name"] for record in records] == [str(i) for i in range(count)]
    assert set(records[0]) == set(export.COLUMNS)
    assert records[0]["created_at"] == "2026-03-10T12:00:00Z"


async def test_csv_export_has_a_header_json_findings_and_defused_formulas(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation = await create_organisation(session)
    agent, _key = await create_agent(session, await create_workspace(session, organisation))
    admin = await create_user(session, organisation)
    await add_event(
        session,
        agent,
        at=T0,
        action="block",
        tool_name='=HYPERLINK("http://evil")',
        triggered=blocked_by("rbac"),
        upstream_status=None,
    )
    await add_event(session, agent, at=T0 + timedelta(seconds=1), upstream_status=200)

    answer = await client.get(
        f"{API}/organisations/{organisation.id}/audit-events/export",
        params={"format": "csv"},
        headers=headers_for(admin),
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == list(export.COLUMNS)
    assert rows[0]["tool_name"] == '\'=HYPERLINK("http://evil")'
    assert orjson.loads(rows[0]["guardrails_triggered"])[0]["guardrail"] == "rbac"
    assert rows[0]["upstream_status"] == ""
    assert rows[1]["upstream_status"] == "200"
    assert rows[1]["action"] == "allow"


async def test_an_export_with_no_match_is_empty_but_well_formed(
    client: httpx.AsyncClient, session: AsyncSession, headers_for: Headers
) -> None:
    organisation = await create_organisation(session)
    admin = await create_user(session, organisation)
    url = f"{API}/organisations/{organisation.id}/audit-events/export"

    jsonl = await client.get(url, headers=headers_for(admin))
    as_csv = await client.get(url, params={"format": "csv"}, headers=headers_for(admin))

    assert (jsonl.status_code, jsonl.text) == (200, "")
    assert as_csv.text == ",".join(export.COLUMNS) + "\r\n"


def test_only_text_cells_that_look_like_formulas_are_prefixed() -> None:
    assert export.csv_cell("-1+2") == "'-1+2"
    assert export.csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert export.csv_cell("read_file") == "read_file"
    assert export.csv_cell(-1.5) == "-1.5"
    assert export.csv_cell(None) == ""
    assert export.csv_cell([{"a": 1}]) == '[{"a":1}]'
