"""Scanning many short texts in one pass: a message's texts joined into one buffer.

A large structured result holds hundreds of thousands of short strings; calling the engine
once per string costs more in Python than the scan itself. The texts are joined with a
separator no rule can match across in a way that matters (a newline, so classes that stop at
whitespace stop there, and NUL bytes, more than any bounded context window reaches), scanned
once, and each hit is mapped back to its text. A value under an object key is preceded by
`key = "` so that detectors reading context see the key. A text that is not ASCII is
scanned as its folded copy (`fold.py`: Unicode spaces, dashes, fullwidth forms and digits
read as ASCII, invisible characters removed), and its hits are mapped back to the text as
written. The rules that look for invisible characters (`Rule.as_written`) find nothing in a
folded copy: when the fold removed some, they scan the texts as written, joined as well.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from cerberus.scanning.engine import BY_PLACE, Hit, Scanner
from cerberus.scanning.fold import Folded, fold

SEPARATOR = b"\n\x00" * 16
_SEPARATOR_SIZE = len(SEPARATOR)
_QUOTE_SEPARATOR = b'"' + SEPARATOR


class _Joined:
    """Texts joined into one buffer, and where each starts and how long it is."""

    __slots__ = ("data", "sizes", "starts")

    def __init__(self, data: bytes, starts: list[int], sizes: list[int]) -> None:
        self.data, self.starts, self.sizes = data, starts, sizes


class Batch:
    """The joined texts of one message, built once and scanned by every detector in turn."""

    def __init__(self, texts: Sequence[tuple[bytes, str | None]]) -> None:
        self.folds: dict[int, Folded] = {}  # text index -> its folded copy, where it has one
        # The texts as written, joined, when the fold removed invisible characters from one.
        self._as_written: _Joined | None = None
        joined = self._join(texts, folding=False)
        if not joined.data.isascii():  # one C pass over the message instead of one per text
            folded = self._join(texts, folding=True)
            if any(copy.removed for copy in self.folds.values()):
                self._as_written = joined
            joined = folded
        self._joined = joined
        self.data, self.starts, self.sizes = joined.data, joined.starts, joined.sizes

    def _join(self, texts: Sequence[tuple[bytes, str | None]], *, folding: bool) -> _Joined:
        parts: list[bytes] = []
        starts: list[int] = []
        sizes: list[int] = []
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
                if folding and not prefix.isascii() and (folded := fold(prefix)) is not None:
                    prefix = folded.data  # read as its value is; no hit is kept in it
                parts += (prefix, b' = "', data, _QUOTE_SEPARATOR)
                position += len(prefix) + 4
                starts.append(position)
                position += size + 1 + _SEPARATOR_SIZE
            sizes.append(size)
        return _Joined(b"".join(parts), starts, sizes)

    def scan(
        self, scanner: Scanner, candidates_to: list[int] | None = None
    ) -> dict[int, list[Hit]]:
        """Hits per text index, with offsets into that text; a hit is kept by the text it
        starts in and cut at that text's end (`candidates_to`: as `Scanner.scan`'s)."""
        hits = scanner.scan(self.data, candidates_to, as_written=not self.folds)
        found = self._found(self._joined, hits)
        if not self.folds:
            return found
        for index, folded in self.folds.items():
            hits_of_text = found.get(index)
            if hits_of_text:
                at = folded.written([o for hit in hits_of_text for o in (hit.start, hit.end)])
                found[index] = [
                    Hit(hit.detector, at[hit.start], at[hit.end]) for hit in hits_of_text
                ]
        if self._as_written is not None and scanner.as_written is not None:
            self._scan_as_written(self._as_written, scanner, found, candidates_to)
        return found

    def _scan_as_written(
        self,
        joined: _Joined,
        scanner: Scanner,
        found: dict[int, list[Hit]],
        candidates_to: list[int] | None,
    ) -> None:
        """The hits of the rules that read the texts as written, added to those of the texts
        the fold removed characters from (in the others they find the same as in the
        folded copy, which is nothing: every character they look for is removed)."""
        hits = scanner.scan_as_written(joined.data, candidates_to)
        appended = False
        for index, hits_of_text in self._found(joined, hits).items():
            folded = self.folds.get(index)
            if folded is None or not folded.removed:
                continue
            mine = found.get(index)
            if mine:
                found[index] = sorted(mine + hits_of_text, key=BY_PLACE)
            else:
                found[index] = hits_of_text
                appended = True
        if appended:  # texts by index, as the scan gave them
            in_order = sorted(found.items())
            found.clear()
            found.update(in_order)

    def _found(self, joined: _Joined, hits: list[Hit]) -> dict[int, list[Hit]]:
        if len(joined.starts) == 1:
            return self._one_text(joined, hits)
        return self._by_text(joined, hits)

    @staticmethod
    def _by_text(joined: _Joined, hits: list[Hit]) -> dict[int, list[Hit]]:
        found: dict[int, list[Hit]] = {}
        starts, sizes, new = joined.starts, joined.sizes, tuple.__new__
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

    @staticmethod
    def _one_text(joined: _Joined, hits: list[Hit]) -> dict[int, list[Hit]]:
        """`scan` for a batch of one text (a large result is often one): no search for the
        text a hit is in, and a hit that needs no shift or cut is kept as it is."""
        base, size = joined.starts[0], joined.sizes[0]
        kept: list[Hit] = []
        for hit in hits:
            start, end = hit.start - base, hit.end - base
            if start < 0 or start >= size:
                continue  # in the key prefix or the separator
            if base or end > size:
                hit = Hit(hit.detector, start, min(end, size))
            kept.append(hit)
        return {0: kept} if kept else {}
