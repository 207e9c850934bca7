"""Unicode look-alikes read as the ASCII they stand for, and invisible characters read as
nothing, so that detectors see through them.

The detectors' patterns read ASCII: a card grouped with no-break spaces (`4111 1111 ...` as
a word processor or a web page writes it), a phone number in fullwidth digits (U+FF10-FF19),
an SSN with en dashes or `ignore previous instructions` spaced with U+00A0 was read as no
value at all; so was a value with an invisible character inside it (`4111<U+00AD>1111...`,
`bob@exa<U+200E>mple.com`, `ghp_<U+200B>...`). A text with such characters is scanned as its
folded copy: Unicode spaces become a space, dashes and minus signs `-`, fullwidth ASCII forms
their ASCII, the decimal digits of other scripts ASCII digits, and every default-ignorable or
format character (general category Cf, variation selectors, the combining grapheme joiner,
Hangul fillers: `INVISIBLE`) is removed. Hits are mapped back to the text as written, so a
redaction replaces the characters that were there, the invisible ones inside a value with it.
The rules that look for invisible characters (`Rule.as_written`) read the text as written.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import sub
from re import Match

# Default_Ignorable_Code_Point (Unicode 16 DerivedCoreProperties.txt) and general category
# Cf (format), joined: what a reader does not see, or sees only as a mark on other
# characters. tests/scanning/test_invisible.py checks that every Cf character of this Python's
# Unicode database is here.
INVISIBLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x0600, 0x0605),  # Arabic number signs (prepended concatenation marks)
    (0x061C, 0x061C),  # Arabic letter mark
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space, (non-)joiner, left-to-right and right-to-left marks
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFFB),  # unassigned, interlinear annotation
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),  # Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement, unassigned
)
_ASTRAL = [(low, high) for low, high in INVISIBLE if low > 0xFFFF]


def _class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(low)) + ("-" + re.escape(chr(high)) if high > low else "")
        for low, high in ranges
    )


def _ranges(codes: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def _table() -> dict[int, int]:
    table: dict[int, int] = {}
    spaces = [0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]
    table.update(dict.fromkeys(spaces, ord(" ")))
    table.update(dict.fromkeys([*range(0x2010, 0x2016), 0x2212, 0xFE58, 0xFE63], ord("-")))
    table.update({code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)})  # fullwidth ASCII
    # Arabic-Indic, Eastern Arabic-Indic (Persian, Urdu), Devanagari and Bengali digits.
    for zero in (0x0660, 0x06F0, 0x0966, 0x09E6):
        table.update({zero + value: ord("0") + value for value in range(10)})
    return table


_TABLE = _table()
_CHARACTERS = {chr(code): chr(ascii_) for code, ascii_ in _TABLE.items()}
# One class of the look-alikes and the invisible characters below U+10000: Python's `re`
# tests such a class with one bitmap lookup a character, but a class holding a character
# past U+FFFF with a walk through its ranges (a text read ~3x slower). The invisible
# characters past it are looked for only in a text whose UTF-8 holds their first bytes.
_FOLDABLE = re.compile(
    "["
    + _class(_ranges(_TABLE))
    + _class((low, high) for low, high in INVISIBLE if high <= 0xFFFF)
    + "]"
)
_FOLDABLE_ASTRAL = re.compile("[" + _class(_ASTRAL) + "]")
# Their first UTF-8 bytes (U+110BD, U+110CD, U+13430-1343F, U+1BCA0-1BCA3, U+1D173-1D17A,
# U+E0000-E0FFF): looked for only in a text with a lead byte F3, or F0 other than an emoji's.
_ASTRAL_LEAD = re.compile(rb"\xf3\xa0|\xf0(?:\x91[\x82\x83]|\x93\x90|\x9b\xb2|\x9d\x85)")


def _runs(ranges: Iterable[tuple[int, int]]) -> re.Pattern[str]:
    """A pattern for runs of these characters: `[...][...]*`, as `re` looks for a class it
    starts with by a fast scan (`[...]+` took 3x as long on text holding few)."""
    one = "[" + _class(ranges) + "]"
    return re.compile(one + one + "*")


_RUNS = _runs(INVISIBLE)
_RUNS_BMP = _runs(r for r in INVISIBLE if r[1] <= 0xFFFF)
# Above this many kinds of folded character in one text, one translation beats a
# replacement per kind (a Japanese text in fullwidth forms holds dozens); above this many
# kinds of invisible character, one removal by a regular expression beats one per kind
# (~2.7 ms a MB against ~0.6-1.3).
_REPLACED_KINDS = 4
_REMOVED_KINDS = 2


@dataclass(slots=True)
class Folded:
    """A text's folded bytes and the text as written. Each look-alike is one ASCII byte for
    one character; the invisible characters (`removed` of them, of the kinds `gone`) are not
    in the folded bytes."""

    data: bytes
    text: str
    removed: int = 0
    gone: tuple[str, ...] = ()
    # Where the removed runs were, built on the first mapping (a text with no hit needs none).
    _runs: tuple[array[int], array[int]] | None = field(default=None, repr=False, compare=False)

    def written(self, offsets: Iterable[int]) -> dict[int, int]:
        """Offsets into the folded bytes (on character boundaries, as RE2's matches on UTF-8
        are) -> the same places in the text as written (where invisible characters were
        removed at an offset: before them, so a hit ending there does not take them and one
        starting there does). Taken in order, each stretch between two offsets is decoded
        and encoded once, in C, and the characters removed before a place are found by a
        bisection of the removed runs: linear in the text, however many were folded."""
        data, text = self.data, self.text
        runs, shifts = self._removed_runs()
        mapped: dict[int, int] = {}
        folded_at = characters = written_at = kept = 0
        for offset in sorted(set(offsets)):
            kept += len(data[folded_at:offset].decode("utf-8", "surrogatepass"))
            after = kept + shifts[bisect_left(runs, kept)]
            written_at += len(text[characters:after].encode("utf-8", "surrogatepass"))
            characters = after
            folded_at = offset
            mapped[offset] = written_at
        return mapped

    def _removed_runs(self) -> tuple[array[int], array[int]]:
        """Each removed run's place in the folded text (in characters), and the characters
        removed before each run (one more: all of them); none when none were. Built by C
        loops (`finditer`, `map`, `accumulate`), no Python step per run: a text full of them
        is still cheap."""
        if self._runs is None and not self.removed:
            self._runs = (array("q"), array("q", [0]))
        elif self._runs is None:
            pattern = _RUNS_BMP if max(self.gone) <= "\uffff" else _RUNS
            spans = array("q", chain.from_iterable(map(Match.span, pattern.finditer(self.text))))
            starts, ends = spans[0::2], spans[1::2]
            shifts = array("q", accumulate(map(sub, ends, starts), initial=0))
            self._runs = (array("q", map(sub, starts, shifts)), shifts)
        return self._runs


def _astral_invisible(data: bytes) -> bool:
    """Whether this UTF-8 may hold an invisible character past U+FFFF. Such a character in a
    class makes Python's `re` test every character against its ranges one by one (a text
    read ~3x slower), so they have their own class, read only when the bytes may hold one:
    after a `memchr` each for the lead bytes F3 and F0 (made by the caller first: most
    texts hold neither), for F0 a count of those that start an emoji or symbol
    (U+1F000-1FFFF) before a search for the rest."""
    if 0xF3 in data:
        return _ASTRAL_LEAD.search(data) is not None
    if 0xF0 not in data or data.count(0xF0) == data.count(b"\xf0\x9f"):
        return False
    return _ASTRAL_LEAD.search(data) is not None


def fold(data: bytes) -> Folded | None:
    """The folded copy of a UTF-8 text that is not ASCII (None when nothing in it folds)."""
    text = data.decode("utf-8", "surrogatepass")
    # Found first: most texts that are not ASCII (accented words, CJK) hold none, and a
    # translation reads every character through a dict (~50 us per 1,000 characters here,
    # the search and a replacement per kind ~7-14 us).
    kinds = set(_FOLDABLE.findall(text))
    # Bytes as ints: `0xF3 in data` is a `memchr`, `b"\xf3" in data` a buffer export first
    # (~100 ns each on a short text, as much as the rest of a fold finding nothing).
    if (0xF3 in data or 0xF0 in data) and _astral_invisible(data):
        kinds.update(_FOLDABLE_ASTRAL.findall(text))
    if not kinds:
        return None
    # Told by the pattern, not a set of them all (4,500 strings: ~0.5 MiB in every process).
    gone = {character for character in kinds if _RUNS.match(character)}
    if gone:
        kinds -= gone
    folded = text
    if len(kinds) > _REPLACED_KINDS:
        folded = folded.translate(_TABLE)
    else:
        for character in kinds:
            folded = folded.replace(character, _CHARACTERS[character])
    if len(gone) > _REMOVED_KINDS:
        folded = (_RUNS_BMP if max(gone) <= "\uffff" else _RUNS).sub("", folded)
    else:
        for character in gone:
            folded = folded.replace(character, "")
    return Folded(
        folded.encode("utf-8", "surrogatepass"),
        text,
        len(text) - len(folded),
        tuple(sorted(gone)),
    )
