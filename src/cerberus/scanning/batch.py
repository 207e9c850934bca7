"""Scanning many short texts in one pass: a message's texts joined into one buffer.

A large structured result holds hundreds of thousands of short strings; calling the engine
once per string costs more in Python than the scan itself. The texts are joined with a
separator no rule can match across in a way that matters (a newline, so classes that stop at
whitespace stop there, and NUL bytes, more than any bounded context window reaches), scanned
once, and each hit is mapped back to its text. A value under an object key is preceded by
`key = "` so that detectors reading context see the key. A text that is not ASCII is
scanned as its folded copy (`fold.py`: Unicode spaces, dashes, fullwidth forms and digits
read as ASCII), and its hits are mapped back to the text as written.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from cerberus.scanning.engine import Hit, Scanner
from cerberus.scanning.fold import Folded, fold

SEPARATOR = b"\n\x00" * 16
_SEPARATOR_SIZE = len(SEPARATOR)
_QUOTE_SEPARATOR = b'"' + SEPARATOR


class Batch:
    """The joined texts of one message, built once and scanned by every detector in turn."""

    def __init__(self, texts: Sequence[tuple[bytes, str | None]]) -> None:
        self.folds: dict[int, Folded] = {}  # text index -> its folded copy, where it has one
        self._join(texts, folding=False)
        if not self.data.isascii():  # one C pass over the message instead of one per text
            self._join(texts, folding=True)

    def _join(self, texts: Sequence[tuple[bytes, str | None]], *, folding: bool) -> None:
        parts: list[bytes] = []
        self.starts: list[int] = []
        self.sizes: list[int] = []
        starts, sizes = self.starts, self.sizes
        position = 0
        for data, key in texts:
            if folding and not data.isascii() and (folded := fold(data)) is not None:
                self.folds[len(sizes)] = folded
                data = folded.data
            size = len(data)
            if key is None:
                parts += (data, SEPARATOR)
                starts.append(position)
                position += size + _SEPARATOR_SIZE
            else:
                prefix = key.encode("utf-8", "surrogatepass")
                parts += (prefix, b' = "', data, _QUOTE_SEPARATOR)
                position += len(prefix) + 4
                starts.append(position)
                position += size + 1 + _SEPARATOR_SIZE
            sizes.append(size)
        self.data = b"".join(parts)

    def scan(
        self, scanner: Scanner, candidates_to: list[int] | None = None
    ) -> dict[int, list[Hit]]:
        """Hits per text index, with offsets into that text; a hit is kept by the text it
        starts in and cut at that text's end (`candidates_to`: as `Scanner.scan`'s)."""
        hits = scanner.scan(self.data, candidates_to)
        found = self._one_text(hits) if len(self.starts) == 1 else self._by_text(hits)
        if not self.folds:
            return found
        for index, folded in self.folds.items():
            hits_of_text = found.get(index)
            if hits_of_text:
                at = folded.written([o for hit in hits_of_text for o in (hit.start, hit.end)])
                found[index] = [
                    Hit(hit.detector, at[hit.start], at[hit.end]) for hit in hits_of_text
                ]
        return found

    def _by_text(self, hits: list[Hit]) -> dict[int, list[Hit]]:
        found: dict[int, list[Hit]] = {}
        starts, sizes, new = self.starts, self.sizes, tuple.__new__
        for detector, hit_start, hit_end in hits:
            index = bisect_right(starts, hit_start) - 1
            if index < 0:
                continue
            start = hit_start - starts[index]
            size = sizes[index]
            if start >= size:
                continue  # in a key prefix or a separator
            end = min(hit_end - starts[index], size)
            # tuple.__new__ skips the named tuple's Python-level __new__.
            found.setdefault(index, []).append(new(Hit, (detector, start, end)))
        return found

    def _one_text(self, hits: list[Hit]) -> dict[int, list[Hit]]:
        """`scan` for a batch of one text (a large result is often one): no search for the
        text a hit is in, and a hit that needs no shift or cut is kept as it is."""
        base, size = self.starts[0], self.sizes[0]
        kept: list[Hit] = []
        for hit in hits:
            start, end = hit.start - base, hit.end - base
            if start < 0 or start >= size:
                continue  # in the key prefix or the separator
            if base or end > size:
                hit = Hit(hit.detector, start, min(end, size))
            kept.append(hit)
        return {0: kept} if kept else {}
