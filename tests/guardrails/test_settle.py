"""What a redaction uncovers is redacted (or blocked) too: nothing a redacting guardrail
would find is left in the message a pipeline lets through."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cerberus.guardrails import Guardrail, Outcome
from cerberus.guardrails.pii_credit_card import PiiCreditCard
from cerberus.guardrails.pii_email import PiiEmail
from cerberus.guardrails.pii_ip_address import PiiIpAddress
from cerberus.guardrails.pii_phone import PiiPhone
from cerberus.guardrails.pii_ssn import PiiSsn
from cerberus.guardrails.prompt_injection import PromptInjection
from cerberus.guardrails.secrets import Secrets
from cerberus.guardrails.text_checks import RESCAN_ALL_BYTES, SETTLE_REFUSAL
from cerberus.proxy.pipeline import Pipeline
from cerberus.scanning import scanner
from tests.guardrails.messages import REQUEST, RESPONSE, context, tool_call, tool_result

# Two numbers glued together: the second is part of the first's run until the first is a
# marker, then it stands alone.
GLUED_PHONES = "+1 415 555 0100+44 20 7946 0958"
# A card after a phone number and a colon: a number glued to a number, until the phone
# number is redacted (and the card guardrail reads the texts before the phone guardrail).
CARD_AFTER_PHONE = "+44 20 7946 0958:4111 1111 1111 1111"
PADDING = "filler " * (RESCAN_ALL_BYTES // 7 + 1)  # rescanned detector group by group


def text_of(message: dict[str, Any]) -> str:
    text = message["result"]["content"][0]["text"]
    assert isinstance(text, str)
    return text


def test_a_value_freed_by_its_own_guardrails_redaction_is_redacted() -> None:
    verdict = PiiPhone(action="redact").check(tool_result(GLUED_PHONES), context(RESPONSE))
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    assert text_of(verdict.message) == "[REDACTED:PHONE][REDACTED:PHONE]"
    assert [(f.type, f.count) for f in verdict.findings] == [("phone", 2)]


@pytest.mark.parametrize("padding", ["", PADDING], ids=["small", "large"])
async def test_a_pipeline_redacts_what_a_later_guardrails_redaction_freed(padding: str) -> None:
    pipeline = Pipeline([PiiCreditCard(action="redact"), PiiPhone(action="redact")])
    decision = await pipeline.decide(tool_result(padding + CARD_AFTER_PHONE), context(RESPONSE))
    assert decision.outcome is Outcome.MODIFY
    assert text_of(decision.message) == padding + "[REDACTED:PHONE]:[REDACTED:CREDIT_CARD]"
    # One entry per guardrail, as the audit trail counts them.
    assert sorted(decision.guardrails_triggered) == ["pii_credit_card", "pii_phone"]


async def test_a_guardrail_that_redacts_again_keeps_one_entry_with_every_finding() -> None:
    pipeline = Pipeline([PiiPhone(action="redact"), PiiEmail(action="redact")])
    decision = await pipeline.decide(tool_result(GLUED_PHONES), context(RESPONSE))
    assert text_of(decision.message) == "[REDACTED:PHONE][REDACTED:PHONE]"
    assert decision.triggered == [
        {
            "guardrail": "pii_phone",
            "action": "modify",
            "findings": [{"type": "phone", "count": 2, "where": ["$.result.content[0].text"]}],
        }
    ]


async def test_a_value_freed_for_a_blocking_guardrail_blocks_the_message() -> None:
    pipeline = Pipeline([PiiCreditCard(action="block"), PiiPhone(action="redact")])
    decision = await pipeline.decide(tool_result(CARD_AFTER_PHONE), context(RESPONSE))
    assert decision.blocked
    assert decision.guardrails_triggered == ["pii_phone", "pii_credit_card"]
    assert decision.reason.startswith("pii_credit_card: 1 payment card")


async def test_a_secret_redacted_in_a_password_place_is_not_read_as_a_password_again() -> None:
    dsn = "postgresql://svc:Xy7pQ2zLm@db.internal:5432/app"
    pipeline = Pipeline([Secrets(action="redact")])
    decision = await pipeline.decide(tool_call({"dsn": dsn}), context(REQUEST))
    assert decision.outcome is Outcome.MODIFY
    redacted = decision.message["params"]["arguments"]["dsn"]
    assert redacted == "postgresql://svc:[REDACTED:SECRET]@db.internal:5432/app"


async def test_another_guardrails_marker_in_a_password_place_is_still_a_password() -> None:
    # As before the pass was read again: the request side runs PII before secrets.
    pipeline = Pipeline([PiiEmail(action="redact"), Secrets(action="block")])
    message = tool_call({"config": 'password = "ana@example.org"'})
    decision = await pipeline.decide(message, context(REQUEST))
    assert decision.blocked
    assert decision.guardrails_triggered == ["pii_email", "secrets"]


class Revealing(PiiPhone):
    """Each redaction leaves another phone number behind (no detector does this; a subclass
    can): the guardrail gives up and blocks rather than pass a value."""

    def review(self, text: Any, context: Any) -> Any:
        verdict = super().review(text, context)
        if verdict.outcome is Outcome.MODIFY:
            text.redact([(0, text.slot(0).text + " +1 415 555 0100")], context)
        return verdict


def test_a_text_that_never_settles_is_refused() -> None:
    verdict = Revealing(action="redact").check(tool_result("+1 415 555 0100"), context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert SETTLE_REFUSAL in verdict.reason


async def test_a_pass_that_never_settles_is_refused_by_the_pipeline() -> None:
    pipeline = Pipeline([Revealing(action="redact")])
    decision = await pipeline.decide(tool_result("+1 415 555 0100"), context(RESPONSE))
    assert decision.blocked
    assert decision.reason == f"pii_phone: {SETTLE_REFUSAL}"  # as the guardrail alone says
    assert decision.guardrails_triggered == ["pii_phone", "pii_phone"]  # redacted, then refused


REDACTING: list[Guardrail] = [
    PiiCreditCard(action="redact"),
    PiiEmail(action="redact"),
    PiiIpAddress(action="redact"),
    PiiPhone(action="redact"),
    PiiSsn(action="redact"),
    Secrets(action="redact"),
]
PIECES = [
    "ana@example.org",
    "+1 415 555 0100",
    "415-555-0100",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "5500000000000004",
    "078-05-1120",
    "10.0.0.1",
    "192.168.1.20",
    "AKIAZ7QW3ERT5YUI6OPA",
    "x",
    "7",
    ".",
    "-",
    ":",
    "@",
    " ",
    "_",
]


@pytest.mark.parametrize("padding", ["", PADDING], ids=["small", "large"])
async def test_nothing_a_redacting_guardrail_finds_is_left_in_what_passes(padding: str) -> None:
    # Random runs of values glued by the characters that glue them; what the pipeline lets
    # through is scanned afresh with every redacting guardrail's detectors.
    pipeline = Pipeline([*REDACTING, PromptInjection(action="log_only")])
    detectors = scanner(tuple(d for g in REDACTING for d in g.detector_groups()))  # type: ignore[attr-defined]
    rng = random.Random(7)
    for _ in range(300):
        text = padding + "".join(rng.choice(PIECES) for _ in range(rng.randint(2, 6)))
        decision = await pipeline.decide(tool_result(text), context(RESPONSE))
        assert not decision.blocked
        out = text_of(decision.message).encode()
        left = [out[hit.start : hit.end] for hit in detectors.scan(out)]
        assert left == [], (text[len(padding) :], out[len(padding) :])
