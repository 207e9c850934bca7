"""Redaction refuses, and the guardrail blocks, where a rewrite would break the message:
an outputSchema, keys and numbers, fields that 2026-07-28 headers mirror."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from cerberus import mcp
from cerberus.guardrails import CheckContext, Direction, Outcome
from cerberus.guardrails.pii_credit_card import PiiCreditCard
from cerberus.guardrails.pii_email import PiiEmail
from tests.test_mcp import EMAIL, REDACTED, request, result


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_redaction_that_breaks_the_output_schema_blocks_the_result() -> None:
    structured = {"contact": EMAIL}
    message = result({"content": [], "structuredContent": structured})
    schema = {
        "type": "object",
        "properties": {"contact": {"type": "string", "format": "email"}},
        "required": ["contact"],
    }
    context = CheckContext("o", "w", "a", Direction.RESPONSE, output_schema=schema)
    verdict = PiiEmail(action="redact").check(message, context)
    assert verdict.outcome is Outcome.BLOCK
    assert "outputSchema" in verdict.reason
    plain = {"type": "object", "properties": {"contact": {"type": "string"}}}
    context = CheckContext("o", "w", "a", Direction.RESPONSE, output_schema=plain)
    assert PiiEmail(action="redact").check(message, context).outcome is Outcome.MODIFY


def test_numbers_and_keys_are_scanned_but_redacting_them_blocks() -> None:
    message = result({"content": [], "structuredContent": {EMAIL: 1}})
    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert verdict.outcome is Outcome.BLOCK
    assert "object key" in verdict.reason


@pytest.mark.parametrize(
    "written",
    [
        b"4111111111111111.0",
        b"4.111111111111111e15",
        b"41111111111111110e-1",
        b"-4111111111111111e0",
    ],
)
def test_a_card_number_written_as_a_whole_float_is_found(written: bytes) -> None:
    # Every spelling is the number 4111111111111111 to the tool that reads it.
    arguments = orjson.loads(b'{"card": ' + written + b', "big": 1e308}')
    message = request("tools/call", {"name": "pay", "arguments": arguments})
    verdict = PiiCreditCard(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.REQUEST)
    )
    assert verdict.outcome is Outcome.BLOCK
    assert "a number" in verdict.reason
    numbers = [slot.text for slot in mcp.texts(message) if slot.kind is mcp.SlotKind.NUMBER]
    sign = "-" if written.startswith(b"-") else ""
    assert numbers == [f"{sign}4111111111111111", "1e+308"]


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("tools/call", {"name": f"send-{EMAIL}", "arguments": {}}, "name"),
        ("prompts/get", {"name": EMAIL}, "name"),
        ("resources/read", {"uri": f"mailto:{EMAIL}"}, "uri"),
    ],
)
def test_redacting_a_field_mirrored_by_mcp_name_is_refused(
    method: str, params: dict[str, Any], field: str
) -> None:
    context = CheckContext("o", "w", "a", Direction.REQUEST)
    verdict = PiiEmail(action="redact").check(request(method, params), context)
    assert verdict.outcome is Outcome.BLOCK
    assert f"$.params.{field}" in verdict.reason


def modern_call(arguments: dict[str, Any]) -> dict[str, Any]:
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    return request("tools/call", {"name": "send", "arguments": arguments, "_meta": meta})


def test_redacting_an_argument_an_mcp_param_header_mirrors_is_refused() -> None:
    headers = {"Mcp-Method": "tools/call", "Mcp-Name": "send", "Mcp-Param-To": EMAIL}
    context = CheckContext("o", "w", "a", Direction.REQUEST, request_headers=headers)
    verdict = PiiEmail(action="redact").check(modern_call({"to": EMAIL}), context)
    assert verdict.outcome is Outcome.BLOCK
    assert "Mcp-Param" in verdict.reason


def test_redacting_an_unmirrored_argument_of_a_modern_request_is_allowed() -> None:
    headers = {"Mcp-Method": "tools/call", "Mcp-Name": "send", "Mcp-Param-Region": "eu"}
    context = CheckContext("o", "w", "a", Direction.REQUEST, request_headers=headers)
    verdict = PiiEmail(action="redact").check(modern_call({"body": EMAIL, "region": "eu"}), context)
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    assert verdict.message["params"]["arguments"] == {"body": REDACTED, "region": "eu"}


def test_modern_argument_redaction_without_headers_is_refused() -> None:
    context = CheckContext("o", "w", "a", Direction.REQUEST)
    verdict = PiiEmail(action="redact").check(modern_call({"body": EMAIL}), context)
    assert verdict.outcome is Outcome.BLOCK


def test_base64_header_values_are_decoded_before_comparing() -> None:
    encoded = f"=?base64?{b64(EMAIL)}?="
    context = CheckContext(
        "o", "w", "a", Direction.REQUEST, request_headers={"mcp-param-to": encoded}
    )
    verdict = PiiEmail(action="redact").check(modern_call({"to": EMAIL}), context)
    assert verdict.outcome is Outcome.BLOCK


def test_a_text_that_mirrors_structured_content_but_repeats_a_name_is_read_itself() -> None:
    # Parsed, the text equals structuredContent: it was taken for its serialisation and not
    # scanned, yet the model reads it as written, the first "note" with the address in it.
    text = f'{{"note": "{EMAIL}", "note": "hi"}}'
    message = result(
        {"content": [{"type": "text", "text": text}], "structuredContent": {"note": "hi"}}
    )
    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    assert EMAIL not in orjson.dumps(verdict.message).decode()
    assert verdict.message["result"]["structuredContent"] == {"note": "hi"}
