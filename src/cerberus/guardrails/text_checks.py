"""The shared shape of guardrails that read the texts a message carries (PII, secrets,
injection, content limits): the `direction` setting, large-text offloading, and for
detectors the block / redact / log_only verdicts with findings that never hold a value.

A text guardrail reviews a `TextPass`: the message walked once and scanned once with one
scanner for every detector the pipeline runs, plus the redactions earlier guardrails chose.
The pipeline hands one pass to all of them in turn (docs/guardrails.md, "One text pass"); a
guardrail checked on its own builds a pass of its own, so both give the same verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar

import anyio.to_thread
import orjson

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
from cerberus.output_schema import SCHEMA_REFUSAL, matches_schema, string_blind
from cerberus.scanning import RULES, Hit, Scanner, replace_spans, scanner
from cerberus.scanning.batch import Batch
from cerberus.scanning.engine import BY_PLACE

# Above this many bytes of text a check runs in a worker thread so the event loop keeps
# serving other requests; RE2 releases the GIL while it scans (docs/guardrails.md).
OFFLOAD_BYTES = 64 * 1024
# Redacted texts up to this many bytes are rescanned for every detector of the pass at once
# (one call, whatever asks next); larger ones only for the detectors of the guardrail that
# asks, each in turn: in a megabyte dense with PII, every rescan with every detector
# validated all the other kinds' values again.
RESCAN_ALL_BYTES = 16 * 1024

T = TypeVar("T")


async def run_sized(size: int, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)`, in a worker thread when `size` (bytes of text) is over OFFLOAD_BYTES."""
    if size > OFFLOAD_BYTES:
        return await anyio.to_thread.run_sync(call, *args)
    return call(*args)


DirectionSetting = Literal["request", "response", "both"]
# A finding lists at most this many places, so that an audit event stays small when a
# result holds thousands of matches (the count is still exact).
MAX_PLACES = 50
# A redaction can free a value glued to the one it replaced ("+1 415 555 0100+44 20 7946
# 0958": the second number stands alone once the first is a marker), so redacted texts are
# read again until nothing more is found; each round replaces at least one value with a
# marker, and a text still yielding values after this many is refused rather than passed.
SETTLE_ROUNDS = 8
SETTLE_REFUSAL = "redactions kept uncovering values"


# (path, slot kind) -> its JSONPath: the messages of one tool put their findings in the same
# few places, and formatting a path costs more than looking it up. Bounded: cleared when full.
_PLACES: dict[tuple[mcp.Path, mcp.SlotKind], str] = {}
_PLACES_KEPT = 4096


class TextPass:
    """One message's texts, walked once and scanned once, and the redactions made so far.

    Each guardrail sees the texts as the guardrails before it left them: a text an earlier
    guardrail redacted is read (and rescanned, with the others it redacted, in one batch) in
    its redacted form, exactly as if the message had been copied between the two; the copy
    itself is made once, when `message()` is first read after a redaction.
    """

    # One pass per message in each direction: slots make it cheaper to build and to read.
    __slots__ = (
        "_asks",
        "_candidates",
        "_first_finds",
        "_hits",
        "_json_size",
        "_kinds",
        "_message",
        "_mirrors",
        "_ordered",
        "_paths",
        "_rewritten",
        "_roots",
        "_scanner",
        "_schema_valid",
        "_slots",
        "_waiting",
        "_walked",
        "_wheres",
        "base",
        "size",
    )

    def __init__(
        self,
        message: dict[str, Any],
        scanner: Scanner | None,
        asks: tuple[tuple[str, ...], ...] = (),
    ) -> None:
        """`asks`: the detector groups of the guardrails that will review the pass, in the
        order they ask (the pipeline's), so that a large redacted text is rescanned for some
        of those that ask later in the same pass over it (`_riders`)."""
        self.base = message
        # The size: bytes of text the message carries as redacted so far (decides offloading).
        self._walked, self.size, self._mirrors = mcp.walk(message)
        self._scanner = scanner
        self._asks = asks
        # The rules of the pass's scanner with candidates in the first scan, validated or not
        # (only kept when the texts are large enough to be rescanned for some detectors
        # alone); then (detectors with candidates, detectors with hits), when first needed.
        self._candidates: list[int] | None = None
        self._first_finds: tuple[set[str], set[str]] | None = None
        self._hits: dict[int, list[Hit]] | None = None
        self._ordered: list[tuple[int, list[Hit]]] | None = None
        self._kinds: set[str] = set()  # the detectors `_ordered` holds hits of
        # Slot index -> the hit kinds rescanned since an earlier guardrail redacted it, while
        # some are not: its hits of the others were found in the text before (stale), and
        # are not read until it is rescanned for them.
        self._waiting: dict[int, frozenset[str]] = {}
        # Slot index -> the slot as earlier guardrails rewrote it.
        self._rewritten: dict[int, mcp.TextSlot] = {}
        self._slots: list[mcp.TextSlot] | None = self._walked
        self._message: dict[str, Any] | None = message
        self._roots: list[tuple[mcp.Path, Any]] | None = None
        self._json_size: int | None = None  # -1: the message does not serialise as it is
        # Whether the result's structuredContent matches the tool's outputSchema, once known
        # for a schema that reads no string (then every redaction of it gets that answer).
        self._schema_valid: bool | None = None
        # Slot index -> its path, built once for every finding and redaction naming it (a
        # rewritten slot keeps the walked slot's place).
        self._paths: dict[int, mcp.Path] = {}
        self._wheres: dict[int, str] = {}

    @property
    def changed(self) -> bool:
        return bool(self._rewritten)

    def slots(self) -> list[mcp.TextSlot]:
        """Every text of the message, as redacted so far, in document order."""
        slots = self._slots
        if slots is None:
            slots = list(self._walked)
            for index, slot in self._rewritten.items():
                slots[index] = slot
            self._slots = slots
        return slots

    def slot(self, index: int) -> mcp.TextSlot:
        """One text of the message, as redacted so far (`slots()[index]` without the list)."""
        return self._rewritten.get(index) or self._walked[index]

    def path(self, index: int) -> mcp.Path:
        """The path of a slot, by index."""
        path = self._paths.get(index)
        if path is None:
            path = self._paths[index] = self._walked[index].path
        return path

    def where(self, index: int) -> str:
        """`TextSlot.where` of a slot, by index, built once per pass."""
        place = self._wheres.get(index)
        if place is None:
            key = (self.path(index), self._walked[index].kind)
            place = _PLACES.get(key)
            if place is None:
                if len(_PLACES) >= _PLACES_KEPT:
                    _PLACES.clear()
                place = mcp.where(key[0]) + mcp.WHERE_SUFFIX.get(key[1], "")
                _PLACES[key] = place
            self._wheres[index] = place
        return place

    def hits(self) -> list[tuple[int, list[Hit]]]:
        """(slot index, hits of every detector of the pass's scanner), by slot index."""
        return self._current(self._pass_scanner().kinds, ())

    def finds_none_of(self, kinds: frozenset[str]) -> bool:
        """True when the texts as they stand are scanned and hold no hit of these detectors
        (False also when that is not known yet: the scan runs on the first `hits()`)."""
        if self._ordered is None or not self._kinds.isdisjoint(kinds):
            return False
        waiting = self._waiting
        return not waiting or all(kinds <= done for done in waiting.values())

    def found(
        self, kinds: frozenset[str], groups: tuple[str, ...] = ()
    ) -> list[tuple[int, list[Hit]]]:
        """(slot index, hits) of these detectors only, by slot index (`groups`: the detector
        groups whose hits they are, to rescan a large redacted text for them alone)."""
        ordered = self._current(kinds, groups)
        if self._kinds.isdisjoint(kinds):
            return []
        found: list[tuple[int, list[Hit]]] = []
        for index, hits in ordered:
            # Most texts hold one hit: no list to filter (the lists are only read).
            if len(hits) == 1:
                if hits[0].detector in kinds:
                    found.append((index, hits))
                continue
            mine = [hit for hit in hits if hit.detector in kinds]
            if mine:
                found.append((index, mine))
        return found

    def _pass_scanner(self) -> Scanner:
        if self._scanner is None:
            raise RuntimeError("this text pass was built without a scanner")
        return self._scanner

    def _current(
        self, kinds: frozenset[str], groups: tuple[str, ...]
    ) -> list[tuple[int, list[Hit]]]:
        """Every slot's known hits, those of `kinds` as the texts stand: a text redacted
        since it was scanned is rescanned first, with every detector of the pass while
        small, else for the detector `groups` of `kinds` alone (when given)."""
        if self._hits is None:
            # A text redacted before this first scan is scanned as it was, then rescanned.
            batch = Batch([(slot.data, slot.key) for slot in self._walked])
            if self._asks and len(batch.data) > RESCAN_ALL_BYTES:
                self._candidates = []
            self._hits = batch.scan(self._pass_scanner(), self._candidates)
        if self._waiting:
            self._rescan_for(kinds, groups)
        ordered = self._ordered
        if ordered is None:
            ordered = self._ordered = list(self._hits.items())  # texts in order, by index
            self._kinds = {hit.detector for _, found in ordered for hit in found}
        return ordered

    def _rescan_for(self, kinds: frozenset[str], groups: tuple[str, ...]) -> None:
        waiting, rewritten = self._waiting, self._rewritten
        if not groups or sum(len(rewritten[i].data) for i in waiting) <= RESCAN_ALL_BYTES:
            # Every text still waiting for some kind, with every detector: one call serves
            # whatever guardrail comes next.
            self._rescan(list(waiting), None)
            return
        stale = [index for index, done in waiting.items() if not kinds <= done]
        if stale:
            self._rescan(stale, scanner(groups + self._riders(groups)))

    def _riders(self, groups: tuple[str, ...]) -> tuple[str, ...]:
        """The groups asking after `groups` that a rescan for `groups` takes along: each is a
        pass over a large text, which one pass serves as well. Those with no candidate in the
        first scan (a rule with none costs nothing beside the pass it rides on) and, when
        `groups` found nothing to redact, the next one that had candidates: no redaction is
        expected before it asks, so its candidates are validated once, here. A guardrail that
        redacts after all makes them rescanned again when they ask; no verdict changes."""
        asks, candidates = self._asks, self._candidates
        if candidates is None or groups not in asks:
            return ()
        if self._first_finds is None:
            # Before any rescan for some detectors only (which drops the others' hits).
            assert self._hits is not None
            rules = self._pass_scanner().rules
            seen = {rules[index].detector for index in candidates}
            found = {hit.detector for hits in self._hits.values() for hit in hits}
            self._first_finds = (seen, found)
        seen, found = self._first_finds
        redacting = not _hit_types(groups).isdisjoint(found)
        riders: list[str] = []
        for later in asks[asks.index(groups) + 1 :]:
            if _hit_types(later).isdisjoint(seen):
                riders.extend(later)
            elif not redacting:
                riders.extend(later)
                redacting = True  # as far as this rescan goes: none after the next
        return tuple(riders)

    def _rescan(self, indices: list[int], narrow: Scanner | None) -> None:
        """Rescan these redacted texts with `narrow`'s detectors (their hits of the kinds
        rescanned before kept), or with every detector of the pass (None)."""
        hits, rewritten, waiting = self._hits, self._rewritten, self._waiting
        assert hits is not None
        batch = Batch([(rewritten[index].data, rewritten[index].key) for index in indices])
        fresh = batch.scan(narrow or self._pass_scanner())
        kinds = narrow.kinds if narrow is not None else None
        appended = False
        for position, index in enumerate(indices):
            found = fresh.get(position)
            if kinds is None:
                del waiting[index]
            else:
                done = waiting[index]
                waiting[index] = done | kinds
                kept = [
                    hit
                    for hit in hits.get(index, ())
                    if hit.detector in done and hit.detector not in kinds
                ]
                if kept:
                    found = sorted(kept + (found or []), key=BY_PLACE)
            if found is None:
                hits.pop(index, None)
            else:
                # A text that keeps hits keeps its place in the dict (by index); only one
                # that had none is appended, and then the order is restored.
                appended = appended or index not in hits
                hits[index] = found
        if appended:
            self._hits = dict(sorted(hits.items()))  # indices are distinct
        self._ordered = None

    def data_roots(self) -> list[tuple[mcp.Path, Any]]:
        """The user-data JSON values of the message as redacted so far."""
        if self._roots is None:
            self._roots = mcp.data_roots(self.message())
        return self._roots

    def json_size(self) -> int | None:
        """Bytes of the message as redacted so far, serialised as compact JSON (None when it
        does not serialise as it is: keys that are not strings, integers over 64 bits...).

        A bound for the content guardrails: a user-data value inside the message is no
        longer than the message, so one C-speed serialisation can rule out their walks."""
        size = self._json_size
        if size is None:
            try:
                size = len(orjson.dumps(self.message()))
            except orjson.JSONEncodeError:
                size = -1
            self._json_size = size
        return None if size < 0 else size

    def message(self) -> dict[str, Any]:
        """The message with every redaction made so far, copied once."""
        message = self._message
        if message is None:
            changes = [(self._walked[i], slot.text) for i, slot in self._rewritten.items()]
            paths = [self.path(i) for i in self._rewritten]
            rewrite = mcp.rewrite(self.base, changes, mirrors=self._mirrors, paths=paths)
            if rewrite.message is None:  # only an outputSchema refuses, checked in redact()
                raise RuntimeError(f"redaction refused late: {rewrite.refusal}")
            message = self._message = rewrite.message
        return message

    def redact(self, changes: Sequence[tuple[int, str]], context: CheckContext) -> str | None:
        """Rewrite these slots (index, new text); or, when the rewritten message would not
        be valid, change nothing and return why (the guardrail then blocks)."""
        rewritten, walked = self._rewritten, self._walked
        proposed: list[tuple[mcp.TextSlot, str]] = []
        for index, text in changes:
            proposed.append((rewritten.get(index) or walked[index], text))
        refused = mcp.refusal(self.base, proposed, context.request_headers)
        if refused is not None:
            return refused
        message: dict[str, Any] | None = None
        schema = context.output_schema
        if schema is not None and any(
            self.path(index)[:2] == ("result", "structuredContent") for index, _ in changes
        ):
            valid = self._schema_valid
            if valid is None and string_blind(schema):
                # Strings replaced with strings: the answer is the one the result as the
                # upstream sent it gets, so it is checked once per pass, not per redaction.
                structured = self.base["result"]["structuredContent"]
                valid = self._schema_valid = matches_schema(structured, schema)
            if valid is False:
                return SCHEMA_REFUSAL
            if valid is None:
                rewrite = self._checked_copy(changes, schema)
                if rewrite.message is None:
                    return rewrite.refusal
                message = rewrite.message
        new, waiting = tuple.__new__, self._waiting
        for (index, text), (slot, _) in zip(changes, proposed, strict=True):
            data = text.encode("utf-8", "surrogatepass")
            self.size += len(data) - len(slot.data)
            # tuple.__new__ skips the named tuple's Python-level __new__.
            rewritten[index] = new(
                mcp.TextSlot, (slot.link, text, slot.kind, slot.locked, data, slot.key)
            )
            # None of its hits is known of the new text.
            waiting[index] = _NONE
        self._slots = None
        self._ordered = None
        self._message = message
        self._roots = None
        self._json_size = None
        return None

    def _checked_copy(
        self, changes: Sequence[tuple[int, str]], schema: Mapping[str, Any]
    ) -> mcp.Rewrite:
        """The message with the redactions so far and these, checked against `schema`."""
        merged = {index: slot.text for index, slot in self._rewritten.items()}
        merged.update(changes)
        return mcp.rewrite(
            self.base,
            [(self._walked[index], text) for index, text in merged.items()],
            output_schema=schema,
            mirrors=self._mirrors,
            paths=[self.path(index) for index in merged],
        )


class TextGuardrail(Guardrail):
    """A guardrail over message texts; `direction` narrows where it runs."""

    directions: ClassVar[frozenset[Direction]] = frozenset(Direction)

    direction: DirectionSetting = "both"

    def applies(self, context: CheckContext) -> bool:
        return self.applies_to(context.direction)

    def applies_to(self, direction: Direction) -> bool:
        return self.direction == "both" or self.direction == direction

    def detector_groups(self) -> tuple[str, ...]:
        """The detector groups this guardrail reads hits of (none: it reads texts only)."""
        return ()

    def review(self, text: TextPass, context: CheckContext) -> Verdict:
        """The verdict on a pass's texts, for a direction the guardrail applies to (`check`
        and the pipeline ask only then); a MODIFY verdict's redactions are recorded in the
        pass (its message is the pass's to build), so it carries no message itself."""
        raise NotImplementedError(f"{self.type} does not review texts")

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if not self.applies(context):
            return ALLOW
        groups = self.detector_groups()
        text = TextPass(message, scanner(groups) if groups else None)
        verdict = self.review(text, context)
        for _ in range(SETTLE_ROUNDS):
            if verdict.outcome is not Outcome.MODIFY or not text.changed:
                return verdict
            again = self.review(text, context)  # what the redaction uncovered, if anything
            if again.outcome is Outcome.ALLOW:
                return verdict._replace(message=text.message())
            findings = merge_findings(verdict.findings, again.findings)
            verdict = again._replace(findings=findings)
        return self.verdict(Outcome.BLOCK, verdict.findings, f"{self.type}: {SETTLE_REFUSAL}")

    async def check_async(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        size = mcp.text_size(message) if self.applies(context) else 0
        return await run_sized(size, self.check, message, context)

    def reviews_passes(self) -> bool:
        """True unless a subclass replaced how the message is checked: then the pipeline
        calls its check on the message as it stands instead of handing it the pass."""
        kind = type(self)
        return kind.check is TextGuardrail.check and kind.check_async is TextGuardrail.check_async

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

    def scanner(self) -> Scanner:
        """This guardrail's own scanner, for `check` on its own: compiled on first use, once
        per process (in a pipeline its detectors are part of the pipeline's one scanner)."""
        return scanner(self.detectors)

    def detector_groups(self) -> tuple[str, ...]:
        return self.detectors

    def hit_kinds(self) -> frozenset[str]:
        """The detector names this guardrail's hits carry (`secrets` -> `aws_access_key`...)."""
        return _hit_types(self.detectors)

    def review(self, text: TextPass, context: CheckContext) -> Verdict:
        found = text.found(self.hit_kinds(), self.detectors)
        if not found:
            return ALLOW
        findings = _findings(text, found)
        if self.action == "log_only":
            return Verdict(Outcome.LOG_ONLY, self.type, findings)
        refused: str | None = None
        if self.action == "redact":
            marker = f"[REDACTED:{self.label}]"
            slot = text.slot
            changes: list[tuple[int, str]] = []
            for index, hits in found:
                changes.append((index, _replaced(slot(index).data, hits, marker)))
            refused = text.redact(changes, context)
            if refused is None:
                return Verdict(Outcome.MODIFY, self.type, findings)
        total = sum(finding.count for finding in findings)
        reason = f"{self.type}: {total} {self.noun} found in the {context.direction.value}"
        if refused is not None:
            reason = f"{reason}; {refused}"
        return Verdict(Outcome.BLOCK, self.type, findings, reason)


def _replaced(data: bytes, hits: list[Hit], marker: str) -> str:
    """`data` with each hit replaced by the marker (hits of one text never overlap: a scan
    merges a detector's overlapping hits)."""
    if len(hits) == 1:
        ((_, start, end),) = hits
        return (data[:start] + marker.encode() + data[end:]).decode("utf-8", "surrogatepass")
    return replace_spans(data, [(h.start, h.end, marker) for h in hits])


_NONE: frozenset[str] = frozenset()


@cache
def _hit_types(groups: tuple[str, ...]) -> frozenset[str]:
    """The detector names a group's hits carry (`secrets` -> `aws_access_key`, ...)."""
    return frozenset(rule.detector for group in groups for rule in RULES[group])


def merge_findings(first: Sequence[Finding], more: Sequence[Finding]) -> tuple[Finding, ...]:
    """One guardrail's findings over two reviews of a pass: counts added, places joined."""
    merged = {finding.type: finding for finding in first}
    for finding in more:
        known = merged.get(finding.type)
        if known is not None:
            places = tuple(dict.fromkeys(known.where + finding.where))[:MAX_PLACES]
            finding = Finding(finding.type, known.count + finding.count, places)
        merged[finding.type] = finding
    return tuple(merged[kind] for kind in sorted(merged))


def _findings(text: TextPass, found: Sequence[tuple[int, list[Hit]]]) -> tuple[Finding, ...]:
    if len(found) == 1 and len(found[0][1]) == 1:  # the common case: one hit in one text
        index, (hit,) = found[0]
        return (Finding(hit.detector, 1, (text.where(index),)),)
    counts: dict[str, int] = {}
    places: dict[str, dict[str, None]] = {}
    for index, hits in found:
        place = text.where(index)
        for hit in hits:
            kind = hit.detector
            seen = places.get(kind)
            if seen is None:
                places[kind] = {place: None}
                counts[kind] = 1
            else:
                seen[place] = None
                counts[kind] += 1
    if len(counts) == 1:
        ((kind, count),) = counts.items()
        return (Finding(kind, count, tuple(places[kind])[:MAX_PLACES]),)
    return tuple(
        Finding(kind, counts[kind], tuple(places[kind])[:MAX_PLACES]) for kind in sorted(counts)
    )
