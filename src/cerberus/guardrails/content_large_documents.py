"""Stops documents too large to send through: any one text in a message over `max_chars`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cerberus import mcp
from cerberus.guardrails import ALLOW, CheckContext, Family, Finding, Outcome, Verdict
from cerberus.guardrails.text_checks import TextGuardrail


class ContentLargeDocuments(TextGuardrail):
    type = "content_large_documents"
    family = Family.CONTENT
    description = "Blocks (or logs) a message carrying any single text longer than max_chars."

    action: Literal["block", "log_only"] = "block"
    max_chars: int = Field(100_000, ge=1)

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if not self.applies(context):
            return ALLOW
        large = [slot.where for slot in mcp.texts(message) if len(slot.text) > self.max_chars]
        if not large:
            return ALLOW
        outcome = Outcome.BLOCK if self.action == "block" else Outcome.LOG_ONLY
        reason = f"{self.type}: {len(large)} text(s) longer than {self.max_chars} characters"
        return self.verdict(outcome, [Finding("large_document", len(large), tuple(large))], reason)
