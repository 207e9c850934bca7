"""Stops documents too large to send through: any one text, or one structured JSON value
(structuredContent, tool arguments), in a message over `max_chars` characters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cerberus import mcp
from cerberus.guardrails import ALLOW, CheckContext, Family, Finding, Outcome, Verdict
from cerberus.guardrails.text_checks import TextGuardrail, TextPass


def json_chars(value: Any, limit: int) -> int:
    """About how long `value` is as JSON text (strings, keys, scalars), counting to `limit`."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        node = stack.pop()
        if isinstance(node, dict):
            total += 2 + sum(len(str(key)) + 4 for key in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            total += 2 + len(node)
            stack.extend(node)
        else:
            total += len(node) + 2 if isinstance(node, str) else len(str(node))
    return total


class ContentLargeDocuments(TextGuardrail):
    type = "content_large_documents"
    family = Family.CONTENT
    description = "Blocks (or logs) a message carrying any single text longer than max_chars."

    action: Literal["block", "log_only"] = "block"
    max_chars: int = Field(100_000, ge=1)

    def review(self, text: TextPass, context: CheckContext) -> Verdict:
        large = (
            [slot.where for slot in text.slots() if len(slot.text) > self.max_chars]
            # A text has no more characters than UTF-8 bytes: none is longer than them all.
            if text.size > self.max_chars
            else []
        )
        if not self._fits(text):
            large += [
                mcp.where(path)
                for path, value in text.data_roots()
                if json_chars(value, self.max_chars) > self.max_chars
            ]
        if not large:
            return ALLOW
        outcome = Outcome.BLOCK if self.action == "block" else Outcome.LOG_ONLY
        reason = f"{self.type}: {len(large)} document(s) longer than {self.max_chars} characters"
        return self.verdict(outcome, [Finding("large_document", len(large), tuple(large))], reason)

    def _fits(self, text: TextPass) -> bool:
        """True when no user-data value can count more than `max_chars` (then they are not
        walked): `json_chars` counts at most three times a value's compact JSON bytes (a
        string its characters and quotes, each key four more than its characters where JSON
        writes three and a comma; a container one more than its brackets and commas; a float
        at most two more than its digits, and every value takes a byte), and no value inside
        the message serialises longer than the message."""
        # The texts' bytes are about a lower bound of the JSON's: don't serialise a message
        # that will not fit (only a shortcut; the serialisation decides).
        if 3 * text.size + 2 > self.max_chars:
            return False
        size = text.json_size()
        return size is not None and 3 * size + 2 <= self.max_chars
