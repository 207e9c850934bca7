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
        globs: list[tuple[str, tuple[str, ...], str, int]] = []
        for pattern in patterns:
            if "*" in pattern:
                first, *middle, last = pattern.split("*")
                size = len(first) + len(last)
                globs.append((first, tuple(piece for piece in middle if piece), last, size))
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._globs = tuple(globs)

    def __bool__(self) -> bool:
        return bool(self._exact or self._globs)

    def matches(self, name: str) -> bool:
        if name in self._exact:
            return True
        for first, middle, last, size in self._globs:
            if (
                size <= len(name)
                and name.startswith(first)
                and name.endswith(last)
                and (not middle or _middle_matches(middle, name, len(first), len(name) - len(last)))
            ):
                return True
        return False


def _middle_matches(middle: tuple[str, ...], name: str, position: int, end: int) -> bool:
    """Whether the pieces between the first and last star occur in order in name[position:end]."""
    for piece in middle:
        # Taking the leftmost occurrence is always safe for `*`-only patterns.
        found = name.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True
