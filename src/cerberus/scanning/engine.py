"""The scanning engine: detector rules compiled once into RE2 (linear time, no backtracking).

Every rule is an RE2 pattern plus an optional validator in Python that sees one candidate
match at a time (Luhn, octet ranges, entropy). A rule set is compiled into one `re2.Set`,
which answers "which rules can match here?" in a single pass, and one RE2 regexp per rule,
which is run only when the set says it matches. Texts are scanned as UTF-8 bytes, so the
offsets in a `Hit` are byte offsets; `replace_spans` rewrites on the same bytes.
docs/guardrails.md records the measurements behind this choice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple

import re2

# A validator sees the whole text and one candidate match (it may read the match's `span(group)`,
# `start()` and `end()`); it returns the span to report (possibly narrowed, e.g. to a capture
# group) or None to reject the candidate.
Validator = Callable[[bytes, Any], "tuple[int, int] | None"]

# RE2 refuses programs above max_mem rather than degrading; 64 MiB leaves room for the
# larger alternations (counted repetitions expand) while bounding memory per process.
_MAX_MEM = 64 << 20


@dataclass(frozen=True)
class Rule:
    """One way a detector recognises its type. `as_written`: the rule looks for characters
    the fold removes (invisible ones), so a batch runs it on the texts as written."""

    detector: str
    pattern: str
    validate: Validator | None = None
    as_written: bool = False


class Hit(NamedTuple):
    """A tuple, not a dataclass: a scan makes one per match, and a frozen dataclass costs
    several times as much to build."""

    detector: str
    start: int
    end: int


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _MAX_MEM
    options.log_errors = False
    return options


@cache
def _regexp(pattern: str) -> Any:
    """One compiled regexp per pattern, shared by every scanner holding the rule (a pipeline's
    union scanner and a guardrail's own): RE2 programs and their DFA caches cost memory."""
    return re2.compile(pattern, _options())


_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


def _native(regexp: Any) -> Any:
    """google-re2's extension object behind a compiled regexp, when this version has one with
    `Match(anchor, text, pos, endpos) -> spans` (None: scan through the public API)."""
    native = getattr(regexp, "_regexp", None)
    if _UNANCHORED is None or not callable(getattr(native, "Match", None)):
        return None
    return native


class _Spans:
    """What a validator reads of a candidate match: `span(group)`, `start()`, `end()`."""

    __slots__ = ("_spans",)

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self._spans = spans

    def span(self, group: int = 0) -> tuple[int, int]:
        return self._spans[group]

    def start(self, group: int = 0) -> int:
        return self._spans[group][0]

    def end(self, group: int = 0) -> int:
        return self._spans[group][1]


class Scanner:
    """A compiled rule set; build it once (guardrail construction), use it for every message."""

    def __init__(self, rules: Sequence[Rule], *, native: bool = True) -> None:
        """`native=False` searches through google-re2's public API only (slower; the same
        hits), as it does anyway on a version whose extension object differs."""
        self.rules = tuple(rules)
        self.detectors = tuple(dict.fromkeys(rule.detector for rule in self.rules))
        self.kinds = frozenset(self.detectors)
        # The rules a batch runs on the texts as written, and their indices in this set.
        # They find nothing in a folded copy (every character they look for is removed) nor
        # in ASCII, so they are kept out of this set's automaton: their classes of invisible
        # characters, looked for after every letter, made it larger and slower on every text
        # (`bench.scan`: +1.1 MiB and -8 % on varied ASCII text). `scan` runs them apart, on
        # a text that is not ASCII.
        self.as_written_indices = [i for i, rule in enumerate(self.rules) if rule.as_written]
        self.as_written: Scanner | None = None
        searched = list(range(len(self.rules)))
        if len(self.as_written_indices) == len(self.rules):
            self.as_written = self
        elif self.as_written_indices:
            rules_as_written = [self.rules[index] for index in self.as_written_indices]
            self.as_written = Scanner(rules_as_written, native=native)
            searched = [i for i, rule in enumerate(self.rules) if not rule.as_written]
        # The rule index of each of the set's patterns (None: the same, all rules are there).
        self._searched = None if len(searched) == len(self.rules) else searched
        options = _options()
        self._set = re2.Set.SearchSet(options)
        for index in searched:
            self._set.Add(self.rules[index].pattern)
        self._set.Compile()
        # The extension's set, called directly when there is one (the wrapper's Match is one
        # more Python call per scan; a pipeline scans a message and each redacted batch).
        native_set: Any = getattr(self._set, "_set", None)
        self._match_set = (
            native_set.Match
            if native and callable(getattr(native_set, "Match", None))
            else self._set.Match
        )
        self._regexps = [_regexp(rule.pattern) for rule in self.rules]
        self._native = [_native(regexp) if native else None for regexp in self._regexps]

    def scan(
        self, data: bytes, candidates_to: list[int] | None = None, *, as_written: bool = True
    ) -> list[Hit]:
        """Every validated hit in `data`, ordered by position; overlaps of one detector merged.

        `candidates_to`: when given, the index of every rule with candidates in `data` is
        added to it, validated or not (what it would cost to scan such a text again).
        `as_written=False`: `data` is a folded copy, where the `as_written` rules find
        nothing (a batch runs them on the texts as written)."""
        if not data:
            return []
        hits = self._scan_searched(data, candidates_to)
        if as_written and self.as_written not in (None, self) and not data.isascii():
            more = self.scan_as_written(data, candidates_to)
            if more:
                hits = sorted(hits + more, key=BY_PLACE) if hits else more
        return hits

    def scan_as_written(self, data: bytes, candidates_to: list[int] | None = None) -> list[Hit]:
        """The hits of the `as_written` rules alone (`candidates_to`: as `scan`'s, indices
        into this set)."""
        written = self.as_written
        if written is None:
            return []
        if written is self:
            return self._scan_searched(data, candidates_to)
        found: list[int] | None = None if candidates_to is None else []
        hits = written.scan(data, found)
        if candidates_to is not None and found:
            candidates_to.extend(self.as_written_indices[index] for index in found)
        return hits

    def _scan_searched(self, data: bytes, candidates_to: list[int] | None) -> list[Hit]:
        candidates = self._match_set(data)
        if self._searched is not None and candidates:
            candidates = [self._searched[index] for index in candidates]
        if candidates_to is not None:
            candidates_to.extend(candidates)
        if not candidates:
            return []
        hits: list[Hit] = []
        # The end of each detector's last hit: a rule's hits come in order and apart, so
        # only a detector whose hits come back to an earlier place (two of its rules
        # matched) needs merging.
        ends: dict[str, int] = {}
        overlapping: set[str] = set()
        new = tuple.__new__  # skips the named tuple's Python-level __new__
        for index in candidates:
            rule = self.rules[index]
            detector, validate = rule.detector, rule.validate
            native = self._native[index]
            if native is None:
                first = len(hits)
                self._scan_rule(data, self._regexps[index], detector, validate, hits)
                _note_order(hits, first, detector, ends, overlapping)
                continue
            # As `_note_order` does after the fact: the end of the detector's last hit so
            # far, and whether a hit starts before it.
            last = ends.get(detector, -1)
            # The same search as `finditer`, on the extension's RE2 object: the wrapper's
            # generator and match object cost more than the search itself on short texts.
            end, position = len(data), 0
            while position <= end:
                spans = native.Match(_UNANCHORED, data, position, end)
                found_start, found_end = spans[0]
                if found_start < 0:
                    break
                position = found_end if found_end > found_start else found_start + 1
                if validate is None:
                    span = (found_start, found_end)
                else:
                    span = validate(data, _Spans(spans))
                    if span is None or span[1] <= span[0]:
                        continue
                    # A validator may narrow a candidate ("card" + trailing digits): resume
                    # after what it kept, so an adjacent value is not swallowed.
                    if span[1] < found_end:
                        position = max(span[1], found_start + 1)
                hits.append(new(Hit, (detector, *span)))
                if span[0] < last:
                    overlapping.add(detector)
                if span[1] > last:
                    last = span[1]
            ends[detector] = last
        return _merge(hits, overlapping)

    @staticmethod
    def _scan_rule(
        data: bytes, regexp: Any, detector: str, validate: Validator | None, hits: list[Hit]
    ) -> None:
        """One rule through the wrapper's public API (when its extension object is not there)."""
        if validate is None:
            hits.extend(Hit(detector, *match.span()) for match in regexp.finditer(data))
            return
        position: int | None = 0
        while position is not None:
            resume, position = position, None
            for match in regexp.finditer(data, resume):
                span = validate(data, match)
                if span is None or span[1] <= span[0]:
                    continue
                hits.append(Hit(detector, span[0], span[1]))
                if span[1] < match.end():
                    position = max(span[1], match.start() + 1)
                    break

    def scan_text(self, text: str) -> list[Hit]:
        return self.scan(text.encode("utf-8", "surrogatepass"))


# A hit's place in its text: the sort key of every list of hits.
BY_PLACE = itemgetter(1, 2)


def _note_order(
    hits: list[Hit], first: int, detector: str, ends: dict[str, int], overlapping: set[str]
) -> None:
    """Mark the detector when the hits one rule added from `first` on start before the end
    of one already found (by its other rules), or do not come in order and apart."""
    end = ends.get(detector, -1)
    for at in range(first, len(hits)):
        hit = hits[at]
        if hit.start < end:
            overlapping.add(detector)
        if hit.end > end:
            end = hit.end
    ends[detector] = end


def _merge(hits: list[Hit], overlapping: set[str]) -> list[Hit]:
    """The hits by place, each detector's overlapping ones joined (only the detectors in
    `overlapping` can have any)."""
    if len(hits) < 2:
        return hits
    if not overlapping:
        hits.sort(key=BY_PLACE)
        return hits
    merged = [hit for hit in hits if hit.detector not in overlapping]
    joined = sorted(
        (hit for hit in hits if hit.detector in overlapping),
        key=lambda hit: (hit.detector, hit.start, -hit.end),
    )
    last: Hit | None = None
    for hit in joined:
        if last is not None and last.detector == hit.detector and hit.start < last.end:
            if hit.end > last.end:
                last = merged[-1] = Hit(hit.detector, last.start, hit.end)
            continue
        merged.append(hit)
        last = hit
    merged.sort(key=BY_PLACE)
    return merged


def replace_spans(data: bytes, spans: Iterable[tuple[int, int, str]]) -> str:
    """`data` with each (start, end) replaced by its label; overlapping spans are joined."""
    ordered = sorted(spans)
    pieces: list[bytes] = []
    cursor = 0
    pending: tuple[int, int, str] | None = None
    for start, end, label in ordered:
        if pending is not None and start < pending[1]:
            pending = (pending[0], max(pending[1], end), pending[2])
            continue
        if pending is not None:
            pieces.append(data[cursor : pending[0]])
            pieces.append(pending[2].encode())
            cursor = pending[1]
        pending = (start, end, label)
    if pending is not None:
        pieces.append(data[cursor : pending[0]])
        pieces.append(pending[2].encode())
        cursor = pending[1]
    pieces.append(data[cursor:])
    return b"".join(pieces).decode("utf-8", "surrogatepass")
