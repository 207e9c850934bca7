"""Tenant isolation over every control-plane route, discovered from the app itself.

For each route: an admin and a viewer of organisation A get 404 for organisation B's objects,
a viewer's write is 403, every bad-token case is 401, and (as a control, so the 404s mean
something) A's admin reaches A's own objects. A route added later without an entry in
ROUTES fails `test_every_route_has_a_matrix_entry` until someone says how to build its path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cerberus.app import create_app
from cerberus.audit.models import AuditEvent
from cerberus.auth.tokens import issue
from cerberus.policies.models import Policy, ToolPin
from cerberus.settings import Settings
from cerberus.tenancy.models import Organisation, User, Workspace
from tests.conftest import auth_headers
from tests.factories import create_agent, create_tenant, create_user, create_workspace, unique

PREFIX = "/control-plane/api/v1"
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}


@dataclass
class Tenant:
    org: Organisation
    admin: User
    viewer: User
    workspace: Workspace
    agent_id: str
    policy: Policy
    event: AuditEvent
    pin: ToolPin


@dataclass
class World:
    a: Tenant
    b: Tenant
    root: User


# How to fill each path parameter from a tenant, given who is calling.
PATH_PARAMS: dict[str, Callable[[Tenant, User], str]] = {
    "org_id": lambda t, who: t.org.id,
    "workspace_id": lambda t, who: t.workspace.id,
    "agent_id": lambda t, who: t.agent_id,
    # Never the caller: deleting or demoting oneself is refused for its own reason.
    "user_id": lambda t, who: t.admin.id if who.id == t.viewer.id else t.viewer.id,
    "policy_id": lambda t, who: t.policy.id,
    "decision_id": lambda t, who: t.event.decision_id,
    "pin_id": lambda t, who: t.pin.id,
    "guardrail_type": lambda t, who: "rbac",
}


def _workspace_body() -> dict[str, Any]:
    return {"name": "ws", "slug": unique("ws"), "mcp_server_url": "http://127.0.0.1:9/mcp"}


def _policy_body() -> dict[str, Any]:
    return {
        "name": "limit",
        "guardrail_type": "rate_limit_per_minute",
        "action": "throttle",
        "config": {"limit": 5},
    }


@dataclass(frozen=True)
class Case:
    """How a route behaves for its own organisation's people."""

    owner: str = "admin"  # who the positive control calls it as: admin, viewer or root
    status: int = 200  # what that call answers
    body: Callable[[], dict[str, Any]] | None = None
    scoped: bool = True  # the path names one organisation's object
    public: bool = False  # answers without a token (login, refresh)
    json_response: bool = True  # its success answer is a JSON schema (not a file stream)


ROUTES: dict[tuple[str, str], Case] = {
    ("POST", "/auth/login"): Case(public=True, scoped=False),
    ("POST", "/auth/refresh"): Case(public=True, scoped=False),
    ("POST", "/auth/logout"): Case(public=True, scoped=False),
    ("GET", "/auth/me"): Case(owner="viewer", scoped=False),
    ("GET", "/organisations"): Case(owner="viewer", scoped=False),
    ("POST", "/organisations"): Case(
        owner="root",
        status=201,
        scoped=False,
        body=lambda: {"name": "New", "slug": unique("org")},
    ),
    ("GET", "/organisations/{org_id}"): Case(owner="viewer"),
    ("PATCH", "/organisations/{org_id}"): Case(body=lambda: {"name": "Renamed"}),
    ("DELETE", "/organisations/{org_id}"): Case(owner="root", status=204),
    ("GET", "/organisations/{org_id}/workspaces"): Case(owner="viewer"),
    ("POST", "/organisations/{org_id}/workspaces"): Case(status=201, body=_workspace_body),
    ("GET", "/workspaces/{workspace_id}"): Case(owner="viewer"),
    ("PATCH", "/workspaces/{workspace_id}"): Case(body=lambda: {"name": "Renamed"}),
    ("DELETE", "/workspaces/{workspace_id}"): Case(status=204),
    ("GET", "/organisations/{org_id}/users"): Case(owner="viewer"),
    ("POST", "/organisations/{org_id}/users"): Case(
        status=201,
        body=lambda: {"email": f"{unique('u')}@example.com", "password": "long-enough-1"},
    ),
    ("GET", "/users/{user_id}"): Case(owner="viewer"),
    ("PATCH", "/users/{user_id}"): Case(body=lambda: {"full_name": "Renamed"}),
    ("DELETE", "/users/{user_id}"): Case(status=204),
    ("GET", "/workspaces/{workspace_id}/agents"): Case(owner="viewer"),
    ("POST", "/workspaces/{workspace_id}/agents"): Case(status=201, body=lambda: {"name": "a"}),
    ("GET", "/agents/{agent_id}"): Case(owner="viewer"),
    ("PATCH", "/agents/{agent_id}"): Case(body=lambda: {"name": "renamed"}),
    ("DELETE", "/agents/{agent_id}"): Case(status=204),
    ("POST", "/agents/{agent_id}/rotate"): Case(body=lambda: {"grace_period_seconds": 60}),
    ("GET", "/guardrails"): Case(owner="viewer", scoped=False),
    ("GET", "/guardrails/{guardrail_type}"): Case(owner="viewer", scoped=False),
    ("GET", "/organisations/{org_id}/policies"): Case(owner="viewer"),
    ("POST", "/organisations/{org_id}/policies"): Case(status=201, body=_policy_body),
    ("GET", "/policies/{policy_id}"): Case(owner="viewer"),
    ("PATCH", "/policies/{policy_id}"): Case(body=lambda: {"priority": 7}),
    ("DELETE", "/policies/{policy_id}"): Case(status=204),
    ("GET", "/workspaces/{workspace_id}/effective-policy"): Case(owner="viewer"),
    ("GET", "/organisations/{org_id}/changes"): Case(),
    ("GET", "/organisations/{org_id}/audit-events"): Case(owner="viewer"),
    ("GET", "/organisations/{org_id}/audit-events/export"): Case(
        owner="viewer", json_response=False
    ),
    ("GET", "/audit-events/{decision_id}"): Case(owner="viewer"),
    ("GET", "/organisations/{org_id}/analytics"): Case(owner="viewer"),
    ("GET", "/workspaces/{workspace_id}/tool-pins"): Case(owner="viewer"),
    ("GET", "/tool-pins/{pin_id}"): Case(owner="viewer"),
    ("POST", "/tool-pins/{pin_id}/approve"): Case(body=lambda: {}),
    ("DELETE", "/tool-pins/{pin_id}"): Case(status=204),
}


def discovered_routes() -> list[tuple[str, str]]:
    """Every control-plane (method, path) the app serves, relative to the prefix."""
    app = create_app(Settings(APP_ENV="test", RUN_MIGRATIONS_ON_STARTUP=False))
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(PREFIX + "/"):
            for method in operations:
                if method.upper() in {"GET", *WRITE_METHODS}:
                    found.append((method.upper(), path.removeprefix(PREFIX)))
    return sorted(found)


DISCOVERED = discovered_routes()


def _ids(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def _case(route: tuple[str, str]) -> Case:
    case = ROUTES.get(route)
    if case is None:
        pytest.fail(f"{_ids(route)} has no entry in ROUTES of tests/test_isolation.py")
    return case


def _path(route: tuple[str, str], tenant: Tenant, caller: User) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PATH_PARAMS:
            pytest.fail(f"path parameter {{{name}}} of {_ids(route)} has no entry in PATH_PARAMS")
        return PATH_PARAMS[name](tenant, caller)

    return PREFIX + re.sub(r"\{(\w+)\}", fill, route[1])


async def _call(
    client: httpx.AsyncClient,
    route: tuple[str, str],
    tenant: Tenant,
    caller: User,
    headers: dict[str, str],
) -> httpx.Response:
    case = _case(route)
    method, _ = route
    body = case.body() if case.body is not None else None
    return await client.request(method, _path(route, tenant, caller), headers=headers, json=body)


async def _tenant(session: AsyncSession) -> Tenant:
    organisation, admin, viewer = await create_tenant(session)
    workspace = await create_workspace(session, organisation)
    agent, _ = await create_agent(session, workspace)
    policy = Policy(
        organisation_id=organisation.id,
        workspace_id=workspace.id,
        name="rbac",
        guardrail_type="rbac",
        action="block",
        config={"denied_tools": ["drop_*"]},
    )
    event = AuditEvent(
        request_id=unique("req"),
        decision_id=unique("dec"),
        organisation_id=organisation.id,
        workspace_id=workspace.id,
        agent_id=agent.id,
        direction="request",
        method="tools/call",
        tool_name="search",
        action="allow",
    )
    pin = ToolPin(
        workspace_id=workspace.id,
        tool_name="search",
        definition_hash="a" * 64,
        definition={"name": "search"},
        pending_hash="b" * 64,
        pending_definition={"name": "search", "description": "changed"},
    )
    session.add_all([policy, event, pin])
    await session.flush()
    return Tenant(organisation, admin, viewer, workspace, agent.id, policy, event, pin)


@pytest.fixture
async def world(session: AsyncSession) -> World:
    a, b = await _tenant(session), await _tenant(session)
    return World(a=a, b=b, root=await create_user(session, None, role="super_admin"))


def routes_where(applies: Callable[[Case], bool]) -> list[tuple[str, str]]:
    """The discovered routes a check applies to; a route without an entry is kept, to fail."""
    return [r for r in DISCOVERED if r not in ROUTES or applies(ROUTES[r])]


AUTHENTICATED = routes_where(lambda case: not case.public)
SCOPED = routes_where(lambda case: case.scoped)
WRITES = [route for route in AUTHENTICATED if route[0] in WRITE_METHODS]
BAD_TOKEN_CASES = ["none", "expired", "alg_none", "wrong_key", "refresh_token", "tampered"]


def test_every_route_has_a_matrix_entry() -> None:
    missing = [_ids(route) for route in DISCOVERED if route not in ROUTES]
    stale = [_ids(route) for route in ROUTES if route not in DISCOVERED]
    assert not missing, f"add these routes to ROUTES in tests/test_isolation.py: {missing}"
    assert not stale, f"ROUTES names routes the app no longer serves: {stale}"


@pytest.mark.parametrize("route", AUTHENTICATED, ids=_ids)
async def test_own_organisation_people_reach_the_route(
    route: tuple[str, str], client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    case = _case(route)
    caller = {"admin": world.a.admin, "viewer": world.a.viewer, "root": world.root}[case.owner]

    response = await _call(client, route, world.a, caller, auth_headers(settings, caller))

    assert response.status_code == case.status, response.text


@pytest.mark.parametrize("route", SCOPED, ids=_ids)
async def test_another_organisations_objects_answer_404(
    route: tuple[str, str], client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    _case(route)
    for caller in (world.a.admin, world.a.viewer):
        response = await _call(client, route, world.b, caller, auth_headers(settings, caller))

        assert response.status_code == 404, f"{caller.role}: {response.text}"
        assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("route", WRITES, ids=_ids)
async def test_viewers_writing_answer_403(
    route: tuple[str, str], client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    _case(route)
    viewer = world.a.viewer

    response = await _call(client, route, world.a, viewer, auth_headers(settings, viewer))

    assert response.status_code == 403, response.text


def _bad_token(case: str, user: User, settings: Settings) -> str:
    key = settings.SECRET_KEY.get_secret_value()
    now = int(time.time())
    claims = {
        "sub": user.id,
        "org": user.organisation_id,
        "role": user.role,
        "type": "access",
        "jti": "x",
        "iat": now,
        "exp": now + 600,
    }
    if case == "expired":
        return jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, key, "HS256")
    if case == "alg_none":
        return jwt.encode(claims, None, algorithm="none")
    if case == "wrong_key":
        return jwt.encode(claims, "a-different-secret-key-0123456789abcdef", "HS256")
    if case == "refresh_token":
        return issue(user, settings, "refresh").token
    if case == "tampered":
        header, _, signature = jwt.encode(claims, key, "HS256").split(".")
        forged = jwt.encode({**claims, "role": "super_admin"}, key, "HS256").split(".")[1]
        return f"{header}.{forged}.{signature}"
    raise AssertionError(case)


@pytest.mark.parametrize("route", AUTHENTICATED, ids=_ids)
async def test_bad_tokens_answer_401(
    route: tuple[str, str], client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    _case(route)
    admin = world.a.admin
    for token_case in BAD_TOKEN_CASES:
        headers = {}
        if token_case != "none":
            headers = {"Authorization": f"Bearer {_bad_token(token_case, admin, settings)}"}

        response = await _call(client, route, world.a, admin, headers)

        assert response.status_code == 401, f"{token_case}: {response.text}"
        assert response.headers.get("WWW-Authenticate") == "Bearer", token_case


@pytest.fixture(scope="module")
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(APP_ENV="test")).openapi()
    return document


@pytest.mark.parametrize("route", DISCOVERED, ids=_ids)
def test_openapi_describes_request_and_response_schemas(
    route: tuple[str, str], openapi_document: dict[str, Any]
) -> None:
    case = _case(route)
    method, path = route
    operation = openapi_document["paths"][PREFIX + path][method.lower()]
    success = [code for code in operation["responses"] if code.startswith("2")]
    assert success, "no success response documented"
    if case.body is not None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema, "request body has no schema"
    if case.json_response and success[0] != "204":
        content = operation["responses"][success[0]]["content"]["application/json"]
        assert content.get("schema"), "response has no schema"
    if not case.public:
        assert operation.get("security"), "the bearer scheme is not documented"
