"""The guardrail modules shipped with Cerberus; importing this module registers each of them."""

from cerberus.guardrails import (  # noqa: F401
    rate_limit_per_hour,
    rate_limit_per_minute,
    rbac,
    tool_pinning,
)
