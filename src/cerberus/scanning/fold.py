"""Unicode look-alikes read as the ASCII they stand for, so that detectors see through them.

The detectors' patterns read ASCII: a card grouped with no-break spaces (`4111 1111 ...` as
a word processor or a web page writes it), a phone number in fullwidth digits (U+FF10-FF19),
an SSN with en dashes or `ignore previous instructions` spaced with U+00A0 was read as no
value at all. A text with such characters is scanned as its folded copy, where each of them
is one ASCII byte: Unicode spaces become a space, dashes and minus signs `-`, fullwidth
ASCII forms their ASCII, and the decimal digits of other scripts ASCII digits. Invisible
characters are kept (the injection detectors look for them). Hits are mapped back to the
text as written, so a redaction replaces the characters that were there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


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
_FOLDABLE = re.compile("[" + "".join(re.escape(character) for character in _CHARACTERS) + "]")
# Above this many kinds of folded character in one text, one translation beats a
# replacement per kind (a Japanese text in fullwidth forms holds dozens).
_REPLACED_KINDS = 4


@dataclass(frozen=True, slots=True)
class Folded:
    """A text's folded bytes and the text as written: each folded character is one ASCII
    byte for one character, so the two hold the same characters one for one."""

    data: bytes
    text: str

    def written(self, offsets: Iterable[int]) -> dict[int, int]:
        """Offsets into the folded bytes (on character boundaries, as RE2's matches on UTF-8
        are) -> the same places in the text as written. Taken in order, each stretch between
        two offsets is decoded and encoded once, in C: linear in the text, however many
        characters were folded."""
        data, text = self.data, self.text
        mapped: dict[int, int] = {}
        folded_at = characters = written_at = 0
        for offset in sorted(set(offsets)):
            count = len(data[folded_at:offset].decode("utf-8", "surrogatepass"))
            written_at += len(
                text[characters : characters + count].encode("utf-8", "surrogatepass")
            )
            characters += count
            folded_at = offset
            mapped[offset] = written_at
        return mapped


def fold(data: bytes) -> Folded | None:
    """The folded copy of a UTF-8 text that is not ASCII (None when nothing in it folds)."""
    text = data.decode("utf-8", "surrogatepass")
    # Found first: most texts that are not ASCII (accented words, CJK) hold none, and a
    # translation reads every character through a dict (~50 us per 1,000 characters here,
    # the search and a replacement per kind ~7-14 us).
    kinds = set(_FOLDABLE.findall(text))
    if not kinds:
        return None
    if len(kinds) > _REPLACED_KINDS:
        folded = text.translate(_TABLE)
    else:
        folded = text
        for character in kinds:
            folded = folded.replace(character, _CHARACTERS[character])
    return Folded(folded.encode("utf-8", "surrogatepass"), text)
