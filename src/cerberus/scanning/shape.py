"""What a text is shaped like: how many rows of tabular data it holds, how much of it is code."""

from __future__ import annotations

from typing import Any

import orjson
import re2

from cerberus.scanning.engine import _options

# Line-level signals of source code. Compiled multi-line, so one RE2 pass over the whole text
# marks the code-like lines (a per-line call costs more in Python than the scan itself).
_CODE_LINE = re2.compile(
    r"(?m)^[ \t]*(?:def |class |import |from \S+ import |#include|#define |package |func |fn "
    r"|pub fn |public |private |protected |static |const |let |var |function |return\b"
    r"|if ?\(|for ?\(|while ?\(|else\b|elif |try:|except\b|catch ?\(|switch ?\(|case [^\n]*:"
    r"|@\w+|//|/\*|\*/|# |\}[ \t]*$|pass$|break$|continue$|raise |yield |await "
    r"|[A-Za-z_][\w.]*(?:\[[^\]\n]*\])? ?[-+*/|&]?= )|[;{}][ \t]*$|\):[ \t]*$|=>|->|::"
    r"|\)[ \t]*\{",
    _options(),
)


def code_chars(text: str, limit: int | None = None) -> int:
    """Characters of `text` that look like source code (counted as its UTF-8 bytes): fenced
    blocks and code-like lines.

    Prose with the odd semicolon is not code, so lines count only when they sit in a run of
    at least three code-like lines (or inside a fence). With `limit`, counting stops once the
    total passes it (the caller only asks whether it does), in chunks of about 64 KiB.
    """
    data = text.encode("utf-8", "surrogatepass")
    total = 0
    run: list[int] = []
    in_fence = False
    start = 0
    while start < len(data):
        end = data.find(b"\n", min(start + _CHUNK, len(data)))
        end = len(data) if end == -1 else end + 1
        chunk = data[start:end]
        start = end
        code_lines = _code_lines(chunk)
        for number, content in enumerate(chunk.split(b"\n")):
            if content.lstrip().startswith(b"```"):
                in_fence = not in_fence
                total += _flush(run)
            elif in_fence:
                total += len(content) + 1
            elif number in code_lines and content.strip():
                run.append(len(content) + 1)
            elif content.strip():
                total += _flush(run)
        if limit is not None and total + (sum(run) if len(run) >= 3 else 0) > limit:
            break
    return total + _flush(run)


_CHUNK = 64 * 1024


def _code_lines(chunk: bytes) -> set[int]:
    lines: set[int] = set()
    line, cursor = 0, 0
    for match in _CODE_LINE.finditer(chunk):
        line += chunk.count(b"\n", cursor, match.start())
        cursor = match.start()
        lines.add(line)
    return lines


def _flush(run: list[int]) -> int:
    size = sum(run) if len(run) >= 3 else 0
    run.clear()
    return size


def table_rows(text: str, limit: int | None = None) -> int:
    """Rows of the largest table in `text`: markdown/HTML tables, CSV/TSV, or a JSON array.

    With `limit`, counting may stop as soon as the answer is known to exceed it.
    """
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            parsed = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            parsed = None
        if parsed is not None:
            return json_rows(parsed)
    html_rows = text.count("<tr")
    if limit is not None and html_rows > limit:
        return html_rows
    return max(html_rows, _delimited_rows(text, limit))


def _delimited_rows(text: str, limit: int | None) -> int:
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
        if limit is not None and best > limit:
            break
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
