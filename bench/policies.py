"""The full policy set of the benchmark, built only from guardrail types that exist.

Each wanted type gets the config below, trimmed to the fields its model declares and
validated by that model, so a harness run never seeds a policy the gateway would refuse.
Types that are not registered (yet) are listed in the results instead of silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.payloads import CARD, EMAIL, PHONE
from cerberus.guardrails import get_guardrail_type, guardrail_types

RBAC_ALLOWED = ["echo", "look*", "search/*"]
RBAC_DENIED = ["drop_*", "admin/*"]

# type -> (preferred actions in order, config wished for). PII on both directions, redacting.
WANTED: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "rbac": (
        ("block",),
        {
            "allowed_tools": RBAC_ALLOWED,
            "denied_tools": RBAC_DENIED,
            "default_action": "deny",
            "allowed_resources": ["*"],
            "allowed_prompts": ["*"],
        },
    ),
    "rate_limit_per_minute": (("throttle", "block"), {"limit": 10_000_000}),
    "rate_limit_per_hour": (("throttle", "block"), {"limit": 100_000_000}),
    # Limits an admin would set, well above what the benchmark's calls carry.
    "content_large_documents": (("block",), {"direction": "both", "max_chars": 200_000}),
    "content_structured_data": (("block",), {"direction": "both", "max_rows": 10_000}),
    "content_source_code": (("block",), {"direction": "both", "max_chars": 50_000}),
    "pii_ssn": (("redact",), {"direction": "both"}),
    "pii_credit_card": (("redact",), {"direction": "both"}),
    "pii_email": (("redact",), {"direction": "both"}),
    "pii_phone": (("redact",), {"direction": "both"}),
    "pii_ip_address": (("redact",), {"direction": "both"}),
    "secrets": (("redact", "block"), {"direction": "both"}),
    "prompt_injection": (("block",), {}),
}


@dataclass
class PolicySet:
    policies: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)


def full_policy_set() -> PolicySet:
    result = PolicySet(registered=[kind.type for kind in guardrail_types()])
    for name, (actions, wished) in WANTED.items():
        kind = get_guardrail_type(name)
        if kind is None:
            result.missing.append(name)
            continue
        action = next((a for a in actions if a in kind.actions), kind.actions[0])
        config = {key: value for key, value in wished.items() if key in kind.model_fields}
        kind.model_validate({**config, "action": action})  # a bad config fails the run here
        result.policies.append(
            {"name": f"bench {name}", "guardrail_type": name, "action": action, "config": config}
        )
    return result


REDACTS = {"pii_email": EMAIL, "pii_phone": PHONE, "pii_credit_card": CARD}


def redacted_values(policies: list[dict[str, Any]]) -> tuple[str, ...]:
    """The lookup values a gateway with these policies must never let through."""
    return tuple(
        REDACTS[p["guardrail_type"]]
        for p in policies
        if p["guardrail_type"] in REDACTS and p["action"] == "redact"
    )
