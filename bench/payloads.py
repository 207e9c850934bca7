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


def _record_schema(title: str, fields: dict[str, str]) -> dict[str, Any]:
    """A JSON Schema object of string fields, as the SDK writes one for a typed signature."""
    return {
        "properties": {name: {"title": label, "type": "string"} for name, label in fields.items()},
        "required": list(fields),
        "title": title,
        "type": "object",
    }


# The tools as the SDK upstream lists them (bench/upstream.py; tests/bench/test_loadgen.py
# compares the two), which the stub lists too: a client lists the tools before it calls them,
# and the gateway then knows each tool's outputSchema and checks redactions against it.
_CUSTOMER_FIELDS = {
    "customer_id": "Customer Id",
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "card": "Card",
    "note": "Note",
}
TOOLS: list[dict[str, Any]] = [
    {
        "name": "echo",
        "description": "Return the text unchanged.",
        "inputSchema": _record_schema("echoArguments", {"text": "Text"}),
        "outputSchema": _record_schema("echoOutput", {"result": "Result"}),
    },
    {
        "name": "lookup",
        "description": (
            "A customer record: the answer carries an email, a phone number and a card number."
        ),
        "inputSchema": _record_schema("lookupArguments", {"customer_id": "Customer Id"}),
        "outputSchema": _record_schema("Customer", _CUSTOMER_FIELDS),
    },
]
