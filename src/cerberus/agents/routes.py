"""Routes for agents and their keys (thin: parse, call the service, answer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response, status

from cerberus.agents import schemas
from cerberus.agents import service as agents
from cerberus.agents.schemas import AgentRead, AgentStatus, AgentWithKey
from cerberus.auth.dependencies import AUTH_RESPONSES, CurrentActor, CurrentUser
from cerberus.pagination import Page, PageDep
from cerberus.request_session import SessionDep

router = APIRouter(tags=["agents"], responses=AUTH_RESPONSES)
NO_CONTENT = status.HTTP_204_NO_CONTENT


def _key_prefix(request: Request) -> str:
    return str(request.app.state.settings.API_KEY_PREFIX)


@router.get("/workspaces/{workspace_id}/agents")
async def list_agents(
    workspace_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[AgentStatus | None, Query()] = None,
) -> Page[AgentRead]:
    """Agents of the workspace; keys and hashes are never shown."""
    rows, total = await agents.list_agents(session, user, workspace_id, page, status=status)
    return Page(
        items=[agents.to_read(row) for row in rows],
        total=total,
        page=page.page,
        per_page=page.per_page,
    )


@router.post("/workspaces/{workspace_id}/agents", status_code=201)
async def create_agent(
    workspace_id: str,
    body: schemas.AgentCreate,
    request: Request,
    actor: CurrentActor,
    session: SessionDep,
) -> AgentWithKey:
    """Creates the agent and answers its plain `key`, this once only."""
    agent, key = await agents.create_agent(session, actor, workspace_id, body, _key_prefix(request))
    return agents.to_read_with_key(agent, key)


@router.get("/agents/{agent_id}")
async def get_agent(agent_id: str, user: CurrentUser, session: SessionDep) -> AgentRead:
    return agents.to_read(await agents.get_agent(session, user, agent_id))


@router.patch("/agents/{agent_id}")
async def update_agent(
    agent_id: str, body: schemas.AgentUpdate, actor: CurrentActor, session: SessionDep
) -> AgentRead:
    return agents.to_read(await agents.update_agent(session, actor, agent_id, body))


@router.delete("/agents/{agent_id}", status_code=NO_CONTENT)
async def revoke_agent(agent_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    """Revokes the agent: its keys stop working on every instance; its history stays."""
    await agents.revoke_agent(session, actor, agent_id)
    return Response(status_code=NO_CONTENT)


@router.post("/agents/{agent_id}/rotate", responses={409: {"description": "the agent is revoked"}})
async def rotate_key(
    agent_id: str,
    request: Request,
    actor: CurrentActor,
    session: SessionDep,
    body: Annotated[schemas.AgentRotate | None, Body()] = None,
) -> AgentWithKey:
    """A new key for the same agent (policies and audit history stay attached)."""
    agent, key = await agents.rotate_key(
        session, actor, agent_id, body or schemas.AgentRotate(), _key_prefix(request)
    )
    return agents.to_read_with_key(agent, key)
