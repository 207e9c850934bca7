"""What the upstreams answer and what the load generator checks: one definition for all three."""

from __future__ import annotations

from typing import Any

# A lookup answer carries one of each of these; through the full policy set each must be gone.
EMAIL = "jane.doe@example.com"
PHONE = "+1 415-555-0134"
CARD = "4111 1111 1111 1111"  # passes the Luhn check
SENSITIVE = (EMAIL, PHONE, CARD)
REDACTION_MARKER = "[REDACTED"

# An ordinary argument, free of anything a guardrail looks for, about the size of a real one.
ECHO_TEXT = (
    "Summarise the quarterly report for the northern region and list the three largest "
    "changes in spending compared with the previous quarter, in plain words."
)


def lookup_record(customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "name": "Jane Doe",
        "email": EMAIL,
        "phone": PHONE,
        "card": CARD,
        "note": f"Customer {customer_id} can be reached at {EMAIL} or {PHONE}.",
    }
