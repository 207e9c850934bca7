"""Parsing a message: a JSON object that repeats a name is refused, however it is written."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cerberus import jsonrpc
from cerberus.jsonrpc import AmbiguousJson


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"params":{"name":"drop_tables","name":"echo"}}',
        b'{"n\\u0061me":1,"name":2}',  # the same name, spelled two ways
        b'{"a":"\\u003a\\u003a","a":1}',  # escaped colons in the member dropped
        b'{"a:":1 , "a:" : 2}',
        b'[{"ok":1},{"k":[{"x":1,"x":1}]}]',
        '{"text":"é","text":"e"}',  # SSE event data arrives as text
    ],
)
def test_a_repeated_name_is_ambiguous(data: bytes | str) -> None:
    with pytest.raises(AmbiguousJson) as refused:
        jsonrpc.loads(data)
    assert refused.value.code == jsonrpc.INVALID_REQUEST


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":"x:y","b":{"c":"::"}}',
        b'{"a":"\\u003a","b":"\\u003A"}',  # escaped colons, no repetition
        b'{"a":"\\\\u003a","b":1}',  # the text \u003a, which is no colon
        b'[{"a":1},{"a":1}]',  # the same name in two objects
        b'"just text: no object"',
    ],
)
def test_distinct_names_are_read_as_written(data: bytes) -> None:
    assert jsonrpc.loads(data) == json.loads(data)


def test_the_name_shown_is_cut() -> None:
    name = "n" * 500
    with pytest.raises(AmbiguousJson) as refused:
        jsonrpc.loads(json.dumps({name: 1})[:-1] + f', "{name}": 2}}')
    assert refused.value.message == f"Invalid Request: a JSON object names {'n' * 64!r} twice"


def _has_repeated_name(data: str) -> bool:
    repeated = False

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        repeated = repeated or len({name for name, _ in pairs}) < len(pairs)
        return dict(pairs)

    json.loads(data, object_pairs_hook=members)
    return repeated


def _written(value: Any, rng: random.Random) -> str:
    """`value` as JSON text, names possibly repeated, characters escaped and spaced at random."""
    space = rng.choice(["", " ", "\n "])
    if isinstance(value, list) and value and value[0] == "object":
        members = [f"{_string(name, rng)}{space}:{space}{_written(v, rng)}" for name, v in value[1]]
        return "{" + f",{space}".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_written(item, rng) for item in value) + "]"
    if isinstance(value, str):
        return _string(value, rng)
    return json.dumps(value)


def _string(text: str, rng: random.Random) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char in ":ab" and rng.random() < 0.3:
            out.append(f"\\u{ord(char):04{rng.choice('xX')}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.35:
        names = ["a", "b", "a:", ":", "ab", "\\u003a", 'q"']
        count = rng.randint(0, 4)
        return ["object", [(rng.choice(names), _value(rng, depth + 1)) for _ in range(count)]]
    if depth < 3 and roll < 0.5:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.8:
        return "".join(rng.choice(["a", "b", ":", " ", "é", "\\", '"']) for _ in range(4))
    return rng.choice([1, -2.5, 1e21, 18446744073709551616, True, None])


def test_random_documents_are_refused_exactly_when_a_name_repeats() -> None:
    rng = random.Random(20261129)
    refused = accepted = 0
    for _ in range(3000):
        data = _written(_value(rng), rng)
        expected = _has_repeated_name(data)
        try:
            parsed = jsonrpc.loads(data.encode())
        except AmbiguousJson:
            assert expected, data
            refused += 1
        else:
            assert not expected, data
            assert parsed == json.loads(data)
            accepted += 1
    assert refused > 300
    assert accepted > 300
