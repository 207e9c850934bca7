"""Effective policy: for each guardrail type, the most specific enabled policy wins.

Agent scope beats workspace scope beats organisation scope; at the same scope the highest
priority wins (ties go to the most recently updated). Pure: the caller loads the rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from cerberus.policies.models import Policy


def scope_rank(policy: Policy) -> int:
    if policy.agent_id is not None:
        return 2
    if policy.workspace_id is not None:
        return 1
    return 0


def applies_to(policy: Policy, workspace_id: str, agent_id: str | None) -> bool:
    if not policy.enabled or policy.deleted_at is not None:
        return False
    if policy.agent_id is not None:
        return policy.agent_id == agent_id and policy.workspace_id in (None, workspace_id)
    if policy.workspace_id is not None:
        return policy.workspace_id == workspace_id
    return True


def effective_policies(
    policies: Iterable[Policy], workspace_id: str, agent_id: str | None
) -> dict[str, Policy]:
    """guardrail_type -> the one policy that applies to this agent in this workspace."""
    chosen: dict[str, Policy] = {}
    for policy in policies:
        if not applies_to(policy, workspace_id, agent_id):
            continue
        current = chosen.get(policy.guardrail_type)
        if current is None or _beats(policy, current):
            chosen[policy.guardrail_type] = policy
    return dict(sorted(chosen.items()))


def _beats(candidate: Policy, current: Policy) -> bool:
    return (scope_rank(candidate), candidate.priority, candidate.updated_at) > (
        scope_rank(current),
        current.priority,
        current.updated_at,
    )
