"""The numbers a peer's SDK reads a JSON-RPC id as, so that an answer is matched to its
request the way the client matches it.

The Python SDK matches `int(id)` of a string id ("+3", " 3 ", "0_3", "٣" answer request 3);
the TypeScript SDK `Number(id)` ("3.0", "0x3", "3e0", "" for 0). An answer matched by its
spelling alone was decided without its request: a tools/list's tools unpinned, a
prompts/list unfiltered (proxy/exchange.py).
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any


def numbers_of(message_id: Any) -> tuple[int, ...]:
    """The integers a peer's SDK may read this id as: the Python SDK's `int(id)` of a
    string, the TypeScript SDK's `Number(id)` of a string or a number (they differ only
    above 2**53, where a double rounds); none for what neither reads as an integer."""
    if type(message_id) is int:
        return (message_id,)
    if type(message_id) is float:
        whole = message_id.is_integer()  # False for inf and nan
        return (int(message_id),) if whole else ()
    if type(message_id) is not str:
        return ()  # true, null, an object: no SDK takes them for an id
    numbers: list[int] = []
    with suppress(ValueError):
        numbers.append(int(message_id))  # mcp.shared.dispatcher.coerce_request_id
    number = _js_number(message_id)
    if number is not None and number not in numbers:
        numbers.append(number)
    return tuple(numbers)


def aliases(message_id: str) -> tuple[int, ...]:
    """The numbers an SDK reads this string id as, other than one it spells ("3" is found
    by spelling 3, "+3" only by this). Asked of every request with a string id, most of
    them no number (a UUID, a name): those are known by their first character at once."""
    first = message_id[:1]
    if first and not (first.isdigit() or first in _NUMBER_STARTS or first.isspace()):
        return ()
    return tuple(number for number in numbers_of(message_id) if str(number) != message_id)


# What else a string either SDK reads as a number may start with: a sign, a decimal point,
# JavaScript's white space that Python's isspace() does not count.
_NUMBER_STARTS = frozenset("+-.\ufeff")


# ECMAScript StringToNumber: StrWhiteSpaceChar (WhiteSpace and LineTerminator) around a
# decimal literal (sign, digits, fraction, exponent) or a 0x/0o/0b integer (no sign); no
# separators, only ASCII digits; nothing (all white space) is 0. "Infinity" is no integer.
_JS_SPACE = "\t\n\v\f\r \xa0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JS_PREFIXED = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def _js_number(text: str) -> int | None:
    """`Number(text)` in JavaScript, when it is an integer."""
    text = text.strip(_JS_SPACE)
    if not text:
        return 0
    try:
        if _JS_DECIMAL.fullmatch(text):
            value = float(text)
        elif _JS_PREFIXED.fullmatch(text):
            value = float(int(text, 0))
        else:
            return None
    except OverflowError:
        return None  # Infinity
    return int(value) if value.is_integer() else None
