"""Routes for policies, the guardrail catalogue and the effective-policy preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from cerberus.auth.dependencies import AUTH_RESPONSES, CurrentActor, CurrentUser
from cerberus.errors import NotFound
from cerberus.guardrails import Guardrail, get_guardrail_type, guardrail_types
from cerberus.pagination import Page, PageDep
from cerberus.policies import schemas
from cerberus.policies import service as policies
from cerberus.policies.schemas import EffectivePolicy, GuardrailTypeRead, PolicyRead, PolicyScope
from cerberus.request_session import SessionDep

router = APIRouter(responses=AUTH_RESPONSES)
NO_CONTENT = status.HTTP_204_NO_CONTENT


def _describe(cls: type[Guardrail]) -> GuardrailTypeRead:
    return GuardrailTypeRead(
        type=cls.type,
        family=str(cls.family),
        directions=sorted(str(direction) for direction in cls.directions),
        actions=list(cls.actions),
        description=cls.description or (cls.__doc__ or "").strip(),
        config_schema=cls.config_schema(),
    )


@router.get("/guardrails", tags=["guardrails"])
async def list_guardrails(user: CurrentUser, page: PageDep) -> Page[GuardrailTypeRead]:
    """Every guardrail type this build knows, with the JSON Schema of its policy config."""
    types = guardrail_types()
    items = [_describe(cls) for cls in types[page.offset : page.offset + page.per_page]]
    return Page(items=items, total=len(types), page=page.page, per_page=page.per_page)


@router.get("/guardrails/{guardrail_type}", tags=["guardrails"])
async def get_guardrail(guardrail_type: str, user: CurrentUser) -> GuardrailTypeRead:
    cls = get_guardrail_type(guardrail_type)
    if cls is None:
        raise NotFound(f"no guardrail type {guardrail_type!r}")
    return _describe(cls)


@router.get("/organisations/{org_id}/policies", tags=["policies"])
async def list_policies(
    org_id: str,
    user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    workspace_id: Annotated[str | None, Query()] = None,
    agent_id: Annotated[str | None, Query()] = None,
    guardrail_type: Annotated[str | None, Query()] = None,
    enabled: Annotated[bool | None, Query()] = None,
    scope: Annotated[PolicyScope | None, Query()] = None,
) -> Page[PolicyRead]:
    rows, total = await policies.list_policies(
        session,
        user,
        org_id,
        page,
        workspace_id=workspace_id,
        agent_id=agent_id,
        guardrail_type=guardrail_type,
        enabled=enabled,
        scope=scope,
    )
    items = [policies.to_read(row) for row in rows]
    return Page(items=items, total=total, page=page.page, per_page=page.per_page)


@router.post("/organisations/{org_id}/policies", status_code=201, tags=["policies"])
async def create_policy(
    org_id: str, body: schemas.PolicyCreate, actor: CurrentActor, session: SessionDep
) -> PolicyRead:
    """Scope: neither id (organisation-wide), `workspace_id`, or `agent_id` (in that workspace)."""
    return policies.to_read(await policies.create_policy(session, actor, org_id, body))


@router.get("/policies/{policy_id}", tags=["policies"])
async def get_policy(policy_id: str, user: CurrentUser, session: SessionDep) -> PolicyRead:
    return policies.to_read(await policies.get_policy(session, user, policy_id))


@router.patch("/policies/{policy_id}", tags=["policies"])
async def update_policy(
    policy_id: str, body: schemas.PolicyUpdate, actor: CurrentActor, session: SessionDep
) -> PolicyRead:
    return policies.to_read(await policies.update_policy(session, actor, policy_id, body))


@router.delete("/policies/{policy_id}", status_code=NO_CONTENT, tags=["policies"])
async def delete_policy(policy_id: str, actor: CurrentActor, session: SessionDep) -> Response:
    await policies.delete_policy(session, actor, policy_id)
    return Response(status_code=NO_CONTENT)


@router.get("/workspaces/{workspace_id}/effective-policy", tags=["policies"])
async def effective_policy(
    workspace_id: str,
    user: CurrentUser,
    session: SessionDep,
    agent_id: Annotated[str | None, Query()] = None,
) -> EffectivePolicy:
    """For each guardrail type, the policy that applies: agent over workspace over organisation."""
    return await policies.effective_policy(session, user, workspace_id, agent_id)
