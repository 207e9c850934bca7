"""The five PII guardrails: block, redact as [REDACTED:TYPE] or log, in the configured direction."""

from __future__ import annotations

import pytest

from cerberus.guardrails import Outcome, get_guardrail_type
from cerberus.guardrails.text_checks import DetectorGuardrail
from tests.guardrails.messages import REQUEST, RESPONSE, context, tool_call, tool_result

# type -> (a value it must find, its redaction label, a look-alike it must leave alone)
PII = {
    "pii_ssn": ("078-05-1120", "SSN", "order 123-00-4567"),
    "pii_credit_card": ("4111 1111 1111 1111", "CREDIT_CARD", "4111 1111 1111 1112"),
    "pii_email": ("ana.lopez@example.org", "EMAIL", "@app.route('/x')"),
    "pii_phone": ("+1 (415) 555-0132", "PHONE", "SKU 1234-5678-9012"),
    "pii_ip_address": ("198.51.100.23", "IP_ADDRESS", "version 1.2.3.4"),
}


def guardrail(type_: str, **config: object) -> DetectorGuardrail:
    kind = get_guardrail_type(type_)
    assert kind is not None
    built = kind.model_validate(config)
    assert isinstance(built, DetectorGuardrail)
    return built


@pytest.mark.parametrize("type_", list(PII))
def test_pii_in_a_tool_result_is_blocked_without_the_value_in_the_verdict(type_: str) -> None:
    value, _, _ = PII[type_]
    verdict = guardrail(type_).check(tool_result(f"record: {value}."), context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.guardrail == type_
    assert [(f.count, f.where) for f in verdict.findings] == [(1, ("$.result.content[0].text",))]
    assert value not in repr(verdict)


@pytest.mark.parametrize("type_", list(PII))
def test_pii_is_redacted_with_its_label(type_: str) -> None:
    value, label, _ = PII[type_]
    verdict = guardrail(type_, action="redact").check(
        tool_call({"note": f"use {value} today"}), context(REQUEST)
    )
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    assert verdict.message["params"]["arguments"]["note"] == f"use [REDACTED:{label}] today"


@pytest.mark.parametrize("type_", list(PII))
def test_log_only_reports_and_changes_nothing(type_: str) -> None:
    value, _, _ = PII[type_]
    verdict = guardrail(type_, action="log_only").check(tool_result(value), context(RESPONSE))
    assert verdict.outcome is Outcome.LOG_ONLY
    assert verdict.message is None
    assert verdict.findings[0].count == 1


@pytest.mark.parametrize("type_", list(PII))
def test_look_alikes_and_clean_messages_are_allowed(type_: str) -> None:
    _, _, look_alike = PII[type_]
    verdict = guardrail(type_).check(tool_result(look_alike, "nothing here"), context(RESPONSE))
    assert verdict.outcome is Outcome.ALLOW


@pytest.mark.parametrize("type_", list(PII))
def test_direction_setting_limits_where_it_runs(type_: str) -> None:
    value, _, _ = PII[type_]
    request_only = guardrail(type_, direction="request")
    assert request_only.check(tool_result(value), context(RESPONSE)).outcome is Outcome.ALLOW
    assert request_only.check(tool_call({"x": value}), context(REQUEST)).outcome is Outcome.BLOCK
    response_only = guardrail(type_, direction="response")
    assert response_only.check(tool_call({"x": value}), context(REQUEST)).outcome is Outcome.ALLOW


def test_every_occurrence_and_place_is_counted() -> None:
    message = tool_result("a@example.com and b@example.com", "c@example.com")
    verdict = guardrail("pii_email").check(message, context(RESPONSE))
    (finding,) = verdict.findings
    assert finding.type == "email"
    assert finding.count == 3
    assert finding.where == ("$.result.content[0].text", "$.result.content[1].text")


@pytest.mark.parametrize("config", [{"action": "throttle"}, {"direction": "sideways"}, {"x": 1}])
def test_bad_config_is_rejected(config: dict[str, object]) -> None:
    kind = get_guardrail_type("pii_email")
    assert kind is not None
    with pytest.raises(ValueError, match="validation error"):
        kind.model_validate(config)


def test_config_schema_offers_action_choice_and_direction() -> None:
    kind = get_guardrail_type("pii_phone")
    assert kind is not None
    assert kind.actions == ("block", "redact", "log_only")
    schema = kind.config_schema()
    assert schema["properties"]["direction"]["enum"] == ["request", "response", "both"]


def test_nine_digits_under_an_ssn_key_are_an_ssn() -> None:
    message = tool_result("ok", structuredContent={"ssn": "536224839", "order": "536224839"})
    verdict = guardrail("pii_ssn").check(message, context(RESPONSE))
    assert [finding.where for finding in verdict.findings] == [("$.result.structuredContent.ssn",)]


def test_an_address_with_accents_is_redacted_whole() -> None:
    # Before, `zoë@…` was not found and `Müller@…` kept `Mü` in front of its marker.
    message = tool_call({"to": "zoë@example.com, Müller@firma.de"})
    verdict = guardrail("pii_email", action="redact").check(message, context(REQUEST))
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    assert verdict.message["params"]["arguments"]["to"] == "[REDACTED:EMAIL], [REDACTED:EMAIL]"


def test_an_address_with_an_apostrophe_is_redacted_whole_and_quotes_around_it_kept() -> None:
    # Before, `john.o'brien@example.com` became `john.o'[REDACTED:EMAIL]`.
    message = tool_call({"to": "john.o'brien@example.com, 'ana@example.org'", "q": "a=b@c.io&d=1"})
    verdict = guardrail("pii_email", action="redact").check(message, context(REQUEST))
    assert verdict.message is not None
    arguments = verdict.message["params"]["arguments"]
    assert arguments == {
        "to": "[REDACTED:EMAIL], '[REDACTED:EMAIL]'",
        "q": "a=[REDACTED:EMAIL]&d=1",
    }
