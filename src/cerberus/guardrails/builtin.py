"""The guardrail modules shipped with Cerberus; importing this module registers each of them."""

from cerberus.guardrails import (  # noqa: F401  # noqa: F401
    content_large_documents,
    content_source_code,
    content_structured_data,
    pii_credit_card,
    pii_email,
    pii_ip_address,
    pii_phone,
    pii_ssn,
    prompt_injection,
    rate_limit_per_hour,
    rate_limit_per_minute,
    rbac,
    secrets,
    tool_pinning,
)
