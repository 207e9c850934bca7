"""What a text is shaped like: how many rows of tabular data it holds, how much of it is code."""

from __future__ import annotations

from typing import Any

import orjson
import re2

from cerberus.scanning.engine import _options

# Line-level signals of source code; one compiled set answers them all in one pass per line.
_CODE_LINE = re2.compile(
    r"^\s*(?:def |class |import |from \S+ import |#include|#define |package |func |fn |pub fn "
    r"|public |private |protected |static |const |let |var |function |return\b|if\s*\(|for\s*\("
    r"|while\s*\(|else\b|elif |try:|except\b|catch\s*\(|switch\s*\(|case .*:|@\w+)"
    r"|[;{}]\s*$|=>|->|::|\)\s*\{|^\s*}\s*$|^\s*(?://|/\*|\*/|# )",
    _options(),
)
_FENCE = "```"


def code_chars(text: str) -> int:
    """Characters of `text` that look like source code: fenced blocks and code-like lines.

    Prose with the odd semicolon is not code, so lines count only when they sit in a run of
    at least three code-like lines (or inside a fence).
    """
    total = 0
    run: list[int] = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(_FENCE):
            in_fence = not in_fence
            total += _flush(run)
            continue
        if in_fence:
            total += len(line) + 1
            continue
        if line.strip() and _CODE_LINE.search(line.encode()) is not None:
            run.append(len(line) + 1)
        elif line.strip() and run:
            total += _flush(run)
    return total + _flush(run)


def _flush(run: list[int]) -> int:
    size = sum(run) if len(run) >= 3 else 0
    run.clear()
    return size


def table_rows(text: str) -> int:
    """Rows of the largest table in `text`: markdown/HTML tables, CSV/TSV, or a JSON array."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            parsed = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            parsed = None
        if parsed is not None:
            return json_rows(parsed)
    html_rows = text.count("<tr")
    return max(html_rows, _delimited_rows(text))


def _delimited_rows(text: str) -> int:
    """The longest run of consecutive lines that split into the same number (>= 2) of cells."""
    best = run = 0
    previous: tuple[str, int] | None = None
    for line in text.splitlines():
        shape = _line_shape(line)
        if shape is not None and shape == previous:
            run += 1
        else:
            run = 1 if shape is not None else 0
        previous = shape
        best = max(best, run)
    return best


def _line_shape(line: str) -> tuple[str, int] | None:
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and stripped.count("|") >= 3:
        return ("|", stripped.count("|"))
    for delimiter in ("\t", ",", ";"):
        cells = stripped.count(delimiter) + 1
        if cells >= 2:
            return (delimiter, cells)
    return None


def json_rows(value: Any) -> int:
    """Length of the longest array anywhere in a JSON value (rows of a record set)."""
    best = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            best = max(best, len(node))
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
    return best
