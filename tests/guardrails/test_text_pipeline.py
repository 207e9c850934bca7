"""Scanning guardrails in the real decision pipeline, and large texts scanned off the event loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cerberus.guardrails import CheckContext, Outcome, Verdict
from cerberus.guardrails.pii_email import PiiEmail
from cerberus.guardrails.pii_phone import PiiPhone
from cerberus.guardrails.prompt_injection import PromptInjection
from cerberus.guardrails.secrets import Secrets
from cerberus.guardrails.text_checks import OFFLOAD_BYTES
from cerberus.proxy.pipeline import Pipeline
from tests.guardrails.messages import RESPONSE, context, tool_result


class ThreadRecordingEmail(PiiEmail):
    """PiiEmail that notes which thread ran its check (inherits `type`, so not registered)."""

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        THREADS.append(threading.get_ident())
        return super().check(message, context)


THREADS: list[int] = []


async def test_redactions_carry_down_the_pipeline_and_audit_lists_findings() -> None:
    pipeline = Pipeline(
        [PromptInjection(), PiiPhone(action="redact"), PiiEmail(action="redact"), Secrets()]
    )
    message = tool_result("call 415-555-0132 or mail ana@example.org")
    decision = await pipeline.decide(message, context(RESPONSE))
    assert decision.outcome is Outcome.MODIFY
    assert decision.message["result"]["content"][0]["text"] == (
        "call [REDACTED:PHONE] or mail [REDACTED:EMAIL]"
    )
    assert decision.guardrails_triggered == ["pii_phone", "pii_email"]
    assert "ana@example.org" not in repr(decision.triggered)


async def test_a_block_stops_the_pipeline_with_a_reason() -> None:
    pipeline = Pipeline([PiiEmail(action="redact"), Secrets()])
    message = tool_result("token ghp_" + "Zx81QmPa0L" * 3 + "kW92nB for ana@example.org")
    decision = await pipeline.decide(message, context(RESPONSE))
    assert decision.blocked
    assert decision.guardrails_triggered == ["secrets"]  # secrets run before PII on responses
    assert decision.reason.startswith("secrets: 1 secrets found")


async def test_large_texts_are_scanned_in_a_worker_thread() -> None:
    guard = ThreadRecordingEmail(action="redact")
    THREADS.clear()
    small = await guard.check_async(tool_result("ana@example.org"), context(RESPONSE))
    big_text = "filler " * (OFFLOAD_BYTES // 7 + 1) + "ana@example.org"
    big = await guard.check_async(tool_result(big_text), context(RESPONSE))
    assert THREADS[0] == threading.get_ident()
    assert THREADS[1] != threading.get_ident()
    assert small.outcome is Outcome.MODIFY
    assert big.outcome is Outcome.MODIFY
    assert big.message is not None
    assert big.message["result"]["content"][0]["text"].endswith("[REDACTED:EMAIL]")


class ThreadNotingText(str):
    """A text that notes which thread encodes it: the pipeline's walk of the message does."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        THREADS.append(threading.get_ident())
        return super().encode(encoding, errors)


async def test_a_large_message_is_walked_in_a_worker_thread() -> None:
    # A 4 MB structured result is ~80,000 texts: walking it on the event loop held every
    # other request of the process for 0.1-0.3 s. The proxy passes the body's size.
    pipeline = Pipeline([PiiEmail(action="redact")])
    big = ThreadNotingText("filler " * (OFFLOAD_BYTES // 7 + 1) + "ana@example.org")
    small = ThreadNotingText("mail ana@example.org")
    THREADS.clear()
    await pipeline.decide(tool_result(small), context(RESPONSE, message_bytes=len(small)))
    decision = await pipeline.decide(tool_result(big), context(RESPONSE, message_bytes=len(big)))
    assert THREADS[0] == threading.get_ident()
    assert THREADS[1] != threading.get_ident()
    assert decision.message["result"]["content"][0]["text"].endswith("[REDACTED:EMAIL]")


async def test_a_megabyte_tool_result_of_digits_passes_the_whole_pipeline() -> None:
    pipeline = Pipeline(
        [
            PiiEmail(action="redact"),
            PiiPhone(action="redact"),
            Secrets(action="redact"),
            PromptInjection(action="log_only"),
        ]
    )
    decision = await pipeline.decide(tool_result("1" * (1 << 20)), context(RESPONSE))
    assert decision.outcome is Outcome.ALLOW


async def test_a_large_record_set_is_scanned_and_the_one_email_in_it_redacted() -> None:
    rows: list[dict[str, Any]] = [
        {"id": i, "name": f"user {i}", "note": "ok"} for i in range(20_000)
    ]
    rows[12_345]["note"] = "write to ana@example.org"
    message = tool_result("20000 rows", structuredContent={"rows": rows})
    pipeline = Pipeline([PiiEmail(action="redact"), Secrets(), PromptInjection()])
    decision = await pipeline.decide(message, context(RESPONSE))
    assert decision.outcome is Outcome.MODIFY
    redacted_rows = decision.message["result"]["structuredContent"]["rows"]
    assert redacted_rows[12_345]["note"] == "write to [REDACTED:EMAIL]"
    assert redacted_rows[12_344] is rows[12_344]  # untouched rows are shared, not copied
    assert decision.triggered[0]["findings"][0]["where"] == [
        "$.result.structuredContent.rows[12345].note"
    ]


def test_verdicts_and_findings_cannot_be_changed_once_made() -> None:
    # Shared constants (ALLOW, the fail-closed verdict) are handed to every message.
    from cerberus.guardrails import ALLOW, Finding

    finding = Finding("email", 1, ("$.result.content[0].text",))
    verdict = Verdict(Outcome.BLOCK, "pii_email", (finding,), "pii_email: 1 email found")
    for target, field in ((ALLOW, "outcome"), (verdict, "reason"), (finding, "count")):
        with pytest.raises(AttributeError):
            setattr(target, field, None)
    assert verdict._replace(message={}).message == {}
    assert verdict.message is None
    assert finding.as_dict() == {"type": "email", "count": 1, "where": list(finding.where)}
