"""Name patterns with `*` wildcards (`filesystem/*`, `drop_*`), matched in linear time.

Patterns come from admins and names from agents and servers, so matching must not backtrack:
a pattern is split at its stars once, and a name is matched by finding each piece in turn.
"""

from __future__ import annotations

from collections.abc import Iterable


class WildcardSet:
    """A compiled set of patterns; `matches(name)` is true if any pattern matches all of name."""

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        globs: list[tuple[str, ...]] = []
        for pattern in patterns:
            if "*" in pattern:
                globs.append(tuple(pattern.split("*")))
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._globs = tuple(globs)

    def __bool__(self) -> bool:
        return bool(self._exact or self._globs)

    def matches(self, name: str) -> bool:
        if name in self._exact:
            return True
        return any(_glob_matches(pieces, name) for pieces in self._globs)


def _glob_matches(pieces: tuple[str, ...], name: str) -> bool:
    # pieces has at least two parts (the pattern has at least one star).
    first, *middle, last = pieces
    if len(first) + len(last) > len(name):
        return False
    if not name.startswith(first) or not name.endswith(last):
        return False
    position, end = len(first), len(name) - len(last)
    for piece in middle:
        # Taking the leftmost occurrence is always safe for `*`-only patterns.
        found = name.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True
