"""Stops bulk data leaving or entering in one message: tables, CSV and JSON arrays over
`max_rows` rows, in texts, decoded resources and structured JSON alike."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cerberus import mcp
from cerberus.guardrails import ALLOW, CheckContext, Family, Finding, Outcome, Verdict
from cerberus.guardrails.text_checks import TextGuardrail, TextPass
from cerberus.scanning.shape import json_rows, table_rows


class ContentStructuredData(TextGuardrail):
    type = "content_structured_data"
    family = Family.CONTENT
    description = "Blocks (or logs) tables, CSV or JSON arrays with more than max_rows rows."

    action: Literal["block", "log_only"] = "block"
    max_rows: int = Field(1_000, ge=1)

    def review(self, text: TextPass, context: CheckContext) -> Verdict:
        over = (
            [
                slot.where
                for slot in text.slots()
                if slot.kind in mcp.READABLE_KINDS
                and self._may_hold_rows(slot.data)
                and table_rows(slot.text, self.max_rows) > self.max_rows
            ]
            # No text holds max_rows rows in fewer bytes (see _may_hold_rows).
            if text.size >= self.max_rows
            else []
        )
        if not self._fits(text):
            over += [
                mcp.where(path)
                for path, value in text.data_roots()
                if json_rows(value) > self.max_rows
            ]
        if not over:
            return ALLOW
        outcome = Outcome.BLOCK if self.action == "block" else Outcome.LOG_ONLY
        reason = f"{self.type}: data with more than {self.max_rows} rows"
        return self.verdict(outcome, [Finding("structured_data", len(over), tuple(over))], reason)

    def _fits(self, text: TextPass) -> bool:
        """True when no array in the message can hold more than `max_rows` items (then its
        user data is not walked): n items take at least 2n + 1 bytes of JSON (each item a
        byte, a comma between two, the brackets), and no array serialises longer than the
        message that holds it."""
        # The texts' bytes are about a lower bound of the JSON's: don't serialise a message
        # that will not fit (only a shortcut; the serialisation decides).
        if text.size > 2 * self.max_rows:
            return False
        size = text.json_size()
        return size is not None and size <= 2 * self.max_rows + 2

    def _may_hold_rows(self, data: bytes) -> bool:
        """A cheap bound first: rows are lines, `<tr` tags, or items of a JSON array."""
        rows = self.max_rows
        # More than `rows` rows take at least `rows` bytes: line breaks, `<tr` tags, or array
        # items and their commas. Most texts are shorter, and redaction markers start with "[".
        return len(data) >= rows and (
            max(data.count(b"\n"), data.count(b"\r")) >= rows
            or data.count(b"<tr") > rows
            or data.lstrip()[:1] in (b"[", b"{")
        )
