"""Stops source code leaving or entering in bulk: more than `max_chars` characters of text that
looks like code (fenced blocks, runs of code-like lines) in one message."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cerberus import mcp
from cerberus.guardrails import ALLOW, CheckContext, Family, Finding, Outcome, Verdict
from cerberus.guardrails.text_checks import TextGuardrail, TextPass
from cerberus.scanning.shape import code_chars


class ContentSourceCode(TextGuardrail):
    type = "content_source_code"
    family = Family.CONTENT
    description = "Blocks (or logs) a message carrying more than max_chars of code-like text."

    action: Literal["block", "log_only"] = "block"
    max_chars: int = Field(5_000, ge=0)

    def review(self, text: TextPass, context: CheckContext) -> Verdict:
        # code_chars counts each line with its newline, at most one more per chunk read than
        # a text has bytes: never twice its bytes.
        if 2 * text.size <= self.max_chars:
            return ALLOW
        # A list, not a dict by place: two texts can have one place (keys masked in paths
        # read alike), and each text's code counts.
        found = [
            (slot.where, size)
            for slot in text.slots()
            # Code counts in runs of three lines, so a text of fewer lines holds none.
            if slot.kind in mcp.READABLE_KINDS
            and slot.data.count(b"\n") >= 2
            and (size := code_chars(slot.text, self.max_chars)) > 0
        ]
        total = sum(size for _, size in found)
        if total <= self.max_chars:
            return ALLOW
        outcome = Outcome.BLOCK if self.action == "block" else Outcome.LOG_ONLY
        reason = f"{self.type}: {total} characters of source code (limit {self.max_chars})"
        places = tuple(dict.fromkeys(place for place, _ in found))
        return self.verdict(outcome, [Finding("source_code", len(found), places)], reason)
