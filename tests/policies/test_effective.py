from datetime import UTC, datetime, timedelta

from cerberus.policies.effective import effective_policies
from cerberus.policies.models import Policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def policy(
    name: str,
    *,
    workspace_id: str | None = None,
    agent_id: str | None = None,
    priority: int = 0,
    enabled: bool = True,
    guardrail_type: str = "pii_email",
    age: int = 0,
) -> Policy:
    return Policy(
        id=name,
        organisation_id="org",
        workspace_id=workspace_id,
        agent_id=agent_id,
        name=name,
        guardrail_type=guardrail_type,
        action="block",
        config={},
        priority=priority,
        enabled=enabled,
        deleted_at=None,
        updated_at=NOW - timedelta(seconds=age),
    )


def test_agent_scope_beats_workspace_beats_organisation() -> None:
    rows = [
        policy("org"),
        policy("ws", workspace_id="w1"),
        policy("agent", workspace_id="w1", agent_id="a1"),
    ]
    assert effective_policies(rows, "w1", "a1")["pii_email"].name == "agent"
    assert effective_policies(rows, "w1", "a2")["pii_email"].name == "ws"
    assert effective_policies(rows, "w2", "a3")["pii_email"].name == "org"


def test_highest_priority_wins_at_the_same_scope() -> None:
    rows = [policy("low", priority=1), policy("high", priority=9), policy("mid", priority=5)]
    assert effective_policies(rows, "w1", None)["pii_email"].name == "high"


def test_disabled_and_deleted_policies_do_not_apply() -> None:
    deleted = policy("deleted", workspace_id="w1", priority=10)
    deleted.deleted_at = NOW
    rows = [policy("org"), policy("off", workspace_id="w1", enabled=False), deleted]
    assert effective_policies(rows, "w1", None)["pii_email"].name == "org"


def test_each_guardrail_type_is_resolved_on_its_own() -> None:
    rows = [policy("email", workspace_id="w1"), policy("rbac", guardrail_type="rbac")]
    chosen = effective_policies(rows, "w1", None)
    assert {t: p.name for t, p in chosen.items()} == {"pii_email": "email", "rbac": "rbac"}


def test_other_workspaces_policies_are_ignored() -> None:
    assert effective_policies([policy("elsewhere", workspace_id="w2")], "w1", None) == {}
