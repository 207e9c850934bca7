"""The shared shape of guardrails that read the texts a message carries (PII, secrets,
injection, content limits): the `direction` setting, large-text offloading, and for
detectors the block / redact / log_only verdicts with findings that never hold a value."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import anyio.to_thread

from cerberus import mcp
from cerberus.guardrails import (
    ALLOW,
    CheckContext,
    Direction,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
)
from cerberus.scanning import Hit, Scanner, replace_spans, scanner
from cerberus.scanning.batch import Batch

# Above this many bytes of text a check runs in a worker thread so the event loop keeps
# serving other requests; RE2 releases the GIL while it scans (docs/guardrails.md).
OFFLOAD_BYTES = 64 * 1024

DirectionSetting = Literal["request", "response", "both"]
# A finding lists at most this many places, so that an audit event stays small when a
# result holds thousands of matches (the count is still exact).
MAX_PLACES = 50


class TextGuardrail(Guardrail):
    """A guardrail over message texts; `direction` narrows where it runs."""

    directions: ClassVar[frozenset[Direction]] = frozenset(Direction)

    direction: DirectionSetting = "both"

    def applies(self, context: CheckContext) -> bool:
        return self.direction == "both" or self.direction == context.direction.value

    async def check_async(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if self.applies(context) and mcp.text_size(message) > OFFLOAD_BYTES:
            return await anyio.to_thread.run_sync(self.check, message, context)
        return self.check(message, context)

    def verdict(self, outcome: Outcome, findings: Sequence[Finding], reason: str) -> Verdict:
        return Verdict(
            outcome, self.type, tuple(findings), reason if outcome is Outcome.BLOCK else ""
        )


class DetectorGuardrail(TextGuardrail):
    """Finds one kind of sensitive text; blocks, redacts it as [REDACTED:LABEL], or logs it."""

    detectors: ClassVar[tuple[str, ...]]
    label: ClassVar[str]
    noun: ClassVar[str]
    actions: ClassVar[tuple[str, ...]] = ("block", "redact", "log_only")

    action: Literal["block", "redact", "log_only"] = "block"

    def model_post_init(self, context: Any, /) -> None:
        # Compiled here, once per process for each detector set, never per message.
        self.scanner()

    def scanner(self) -> Scanner:
        return scanner(self.detectors)

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if not self.applies(context):
            return ALLOW
        slots = mcp.texts(message)
        found = [
            (slots[index], hits) for index, hits in _batch(message).scan(self.scanner()).items()
        ]
        if not found:
            return ALLOW
        findings = _findings(found)
        total = sum(finding.count for finding in findings)
        reason = f"{self.type}: {total} {self.noun} found in the {context.direction.value}"
        if self.action == "log_only":
            return self.verdict(Outcome.LOG_ONLY, findings, reason)
        if self.action == "block":
            return self.verdict(Outcome.BLOCK, findings, reason)
        marker = f"[REDACTED:{self.label}]"
        changes = [
            (slot, replace_spans(slot.data, [(hit.start, hit.end, marker) for hit in hits]))
            for slot, hits in found
        ]
        rewrite = mcp.redact(
            message,
            changes,
            output_schema=context.output_schema,
            request_headers=context.request_headers,
        )
        if rewrite.message is None:
            return self.verdict(Outcome.BLOCK, findings, f"{reason}; {rewrite.refusal}")
        return Verdict(Outcome.MODIFY, self.type, tuple(findings), message=rewrite.message)


# The joined texts of the last message scanned, shared by the detectors that scan it in turn
# (holding the message itself, so a recycled id never returns another message's texts).
_last_batch: tuple[object, Batch] | None = None


def _batch(message: dict[str, Any]) -> Batch:
    global _last_batch
    cached = _last_batch
    if cached is not None and cached[0] is message:
        return cached[1]
    batch = Batch([(slot.data, slot.key) for slot in mcp.texts(message)])
    _last_batch = (message, batch)
    return batch


def _findings(found: Sequence[tuple[mcp.TextSlot, list[Hit]]]) -> list[Finding]:
    counts: dict[str, int] = defaultdict(int)
    places: dict[str, dict[str, None]] = defaultdict(dict)
    for slot, hits in found:
        for hit in hits:
            counts[hit.detector] += 1
            places[hit.detector][slot.where] = None
    return [
        Finding(kind, counts[kind], tuple(places[kind])[:MAX_PLACES]) for kind in sorted(counts)
    ]
