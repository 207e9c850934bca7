"""The guardrail catalogue is served from the code's registry, whatever is registered."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.guardrails import guardrail_types
from cerberus.tenancy.models import User
from tests.factories import create_tenant

API = "/control-plane/api/v1"


async def test_catalogue_lists_every_registered_type_with_its_config_schema(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Callable[[User], dict[str, str]],
) -> None:
    _, _, viewer = await create_tenant(session)
    registered = guardrail_types()

    response = await client.get(
        f"{API}/guardrails", headers=headers_for(viewer), params={"per_page": 200}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(registered)
    assert [item["type"] for item in body["items"]] == [cls.type for cls in registered]
    for item, cls in zip(body["items"], registered, strict=True):
        assert item["actions"] == list(cls.actions)
        assert item["directions"] == sorted(str(d) for d in cls.directions)
        assert item["family"] == str(cls.family)
        assert item["config_schema"] == cls.config_schema()
        assert "action" not in item["config_schema"].get("properties", {})


async def test_one_type_is_served_and_an_unknown_one_is_404(
    client: httpx.AsyncClient,
    session: AsyncSession,
    headers_for: Callable[[User], dict[str, str]],
) -> None:
    _, admin, _ = await create_tenant(session)

    known = await client.get(f"{API}/guardrails/rate_limit_per_minute", headers=headers_for(admin))
    unknown = await client.get(f"{API}/guardrails/no_such_guardrail", headers=headers_for(admin))
    anonymous = await client.get(f"{API}/guardrails")

    assert known.status_code == 200
    assert "limit" in known.json()["config_schema"]["properties"]
    assert "throttle" in known.json()["actions"]
    assert unknown.status_code == 404
    assert anonymous.status_code == 401
