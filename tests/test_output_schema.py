"""Checking structuredContent against a tool's outputSchema, and which schemas read strings."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from bench.payloads import TOOLS

from cerberus import output_schema
from cerberus.output_schema import matches_schema, string_blind

RECORD = {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}


def test_a_record_of_typed_fields_is_blind_to_what_its_strings_say() -> None:
    assert string_blind(RECORD)
    assert string_blind({"$defs": {"t": {"type": "string"}}, "items": {"$ref": "#/$defs/t"}})
    assert string_blind({"type": "array", "minItems": 1, "items": {"type": ["string", "null"]}})


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"email": {"type": "string", "format": "email"}}},
        {"properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}},
        {"properties": {"code": {"type": "string", "maxLength": 8}}},
        {"properties": {"code": {"minLength": 8}}},
        {"properties": {"kind": {"enum": ["a", "b"]}}},
        {"anyOf": [{"const": "x"}, {"type": "integer"}]},
        {"type": "array", "uniqueItems": True},
        {"properties": {"blob": {"contentEncoding": "base64"}}},
        # A reference out of the schema may lead anywhere.
        {"properties": {"a": {"$ref": "https://example.com/schemas/a.json"}}},
        {"properties": {"a": {"$ref": "a.json#/x"}}},
        # A property named like such a keyword is taken for one: checked each time, still exact.
        {"properties": {"format": {"type": "string"}}},
    ],
)
def test_a_schema_that_reads_strings_or_leaves_itself_is_not_blind(schema: dict[str, Any]) -> None:
    assert not string_blind(schema)


def test_matches_validates_against_the_schema_with_formats_asserted() -> None:
    assert matches_schema({"email": "[REDACTED:EMAIL]"}, RECORD)
    assert not matches_schema({"email": 3}, RECORD)
    assert not matches_schema({}, RECORD)
    emails = {"properties": {"to": {"type": "string", "format": "email"}}}
    assert matches_schema({"to": "ana@example.org"}, emails)
    assert not matches_schema({"to": "[REDACTED:EMAIL]"}, emails)


def test_a_schema_read_again_after_it_changed_is_judged_as_it_is_now() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert string_blind(schema)
    assert matches_schema({"a": "x"}, schema)
    changed = {**schema, "properties": {"a": {"type": "integer"}}}
    assert not matches_schema({"a": "x"}, changed)


KEYS = ("a", "b", "c")
TYPES = ("string", "object", "array", "null", "boolean", "integer", "number")
KEYWORDS = (
    *("type", "properties", "required", "additionalProperties", "items", "count", "bound"),
    *("anyOf", "allOf", "oneOf", "not", "$ref", "title", "strings", "values"),
)
SCALARS = ("", "x", "ab", "[REDACTED:EMAIL]", 0, 1, 1.0, 2.5, True, False, None)


def random_schema(rng: random.Random, depth: int, refs: list[str]) -> Any:
    """A schema of the keywords checked without jsonschema, nested `depth` levels at most."""
    if depth == 0 or rng.random() < 0.15:
        return rng.choice([True, False, {}, {"type": rng.choice(TYPES)}])
    schema: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        keyword = rng.choice(KEYWORDS)
        if keyword == "type":
            schema["type"] = rng.choice([rng.choice(TYPES), rng.sample(TYPES, rng.randint(1, 3))])
        elif keyword == "properties":
            keys = rng.sample(KEYS, rng.randint(1, 3))
            schema["properties"] = {key: random_schema(rng, depth - 1, refs) for key in keys}
        elif keyword == "required":
            schema["required"] = rng.sample(KEYS, rng.randint(0, 2))
        elif keyword in ("additionalProperties", "items", "not"):
            schema[keyword] = random_schema(rng, depth - 1, refs)
        elif keyword == "count":
            name = rng.choice(["minItems", "maxItems", "minProperties", "maxProperties"])
            schema[name] = rng.randint(0, 3)
        elif keyword == "bound":
            name = rng.choice(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])
            schema[name] = rng.choice([0, 1, 2.5, -1])
        elif keyword in ("anyOf", "allOf", "oneOf"):
            schema[keyword] = [
                random_schema(rng, depth - 1, refs) for _ in range(rng.randint(1, 3))
            ]
        elif keyword == "$ref" and refs:
            schema["$ref"] = rng.choice(refs)
        elif keyword == "title":
            schema["title"] = "T"
        elif keyword == "strings":
            name = rng.choice(["minLength", "maxLength", "pattern"])
            schema[name] = (
                rng.choice(["^x", "b$", "^\\[", "a+"]) if name == "pattern" else (rng.randint(0, 3))
            )
        elif keyword == "values":
            if rng.random() < 0.5:
                schema["const"] = rng.choice(SCALARS)
            else:
                schema["enum"] = rng.sample(SCALARS, rng.randint(1, 4))
    return schema


def random_instance(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth else 6)
    if kind == 0:
        return rng.choice(["", "x", "ab", "xab", "[REDACTED:EMAIL]"])
    if kind == 1:
        return rng.choice([0, 1, 2, -3, 7])
    if kind == 2:
        return rng.choice([0.0, 1.0, 2.5, -0.5])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind == 5:
        return rng.choice([[], {}])
    if kind == 6:
        return [random_instance(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {key: random_instance(rng, depth - 1) for key in rng.sample(KEYS, rng.randint(0, 3))}


@pytest.mark.parametrize("seed", range(60))
def test_plain_schemas_are_judged_as_jsonschema_judges_them(seed: int) -> None:
    rng = random.Random(seed)
    schema = random_schema(rng, 3, ["#", "#/$defs/d", "#/definitions/e"])
    if not isinstance(schema, dict):
        schema = {"anyOf": [schema]}
    schema["$defs"] = {"d": random_schema(rng, 2, ["#"])}
    schema["definitions"] = {"e": random_schema(rng, 2, ["#/$defs/d"])}
    assert output_schema._check(schema).plain
    reference = jsonschema.Draft202012Validator(schema)
    for _ in range(60):
        instance = random_instance(rng, 3)
        expected = outcome(reference.is_valid, instance)
        if expected == "endless":
            # A schema that refers to itself without descending has no answer: jsonschema
            # recurses until Python stops it, where this check may answer from the keywords
            # it read before it came to the loop (anyOf stops at its first match). It answers.
            assert matches_schema(instance, schema) in (True, False)
            continue
        assert matches_schema(instance, schema) is expected, (schema, instance)


def outcome(judge: Callable[..., bool], *args: Any) -> bool | str:
    try:
        return judge(*args)
    except BaseException as exc:  # RecursionError, or a pyo3 panic that one caused in Rust
        if isinstance(exc, RecursionError) or type(exc).__name__ == "PanicException":
            return "endless"
        raise


@pytest.mark.parametrize(
    "schema",
    [
        {"allOf": [{"$ref": "#"}]},
        {"$defs": {"d": {"not": {"$ref": "#/$defs/d"}}}, "$ref": "#/$defs/d"},
        # Not plain (a format): jsonschema itself recurses.
        {"format": "email", "anyOf": [{"$ref": "#"}]},
    ],
)
def test_a_schema_that_refers_to_itself_without_end_matches_nothing(
    schema: dict[str, Any],
) -> None:
    assert matches_schema({"a": "b"}, schema) is False


def test_the_sdks_typed_results_are_plain_and_the_rest_goes_to_jsonschema() -> None:
    for tool in TOOLS:
        assert output_schema._check(tool["outputSchema"]).plain
        assert string_blind(tool["outputSchema"])
    nested = {
        "$defs": {"Item": {"properties": {"n": {"type": "integer"}}, "type": "object"}},
        "properties": {
            "items": {"items": {"$ref": "#/$defs/Item"}, "type": "array"},
            "next": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["items"],
        "type": "object",
    }
    assert output_schema._check(nested).plain
    assert matches_schema({"items": [{"n": 1}], "next": None}, nested)
    assert not matches_schema({"items": [{"n": "1"}]}, nested)
    literal = {"properties": {"kind": {"enum": ["a", "b"]}, "code": {"pattern": "^[A-Z]+$"}}}
    assert output_schema._check(literal).plain
    assert not string_blind(literal)
    assert matches_schema({"kind": "a", "code": "AB"}, literal)
    assert not matches_schema({"kind": "[REDACTED:EMAIL]"}, literal)
    assert not matches_schema({"code": "[REDACTED:EMAIL]"}, literal)
    for other in (
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"enum": [[1], {"a": 1}]},
        {"pattern": "("},
        {"properties": {"to": {"format": "email"}}},
        {"patternProperties": {"^a": {"type": "string"}}},
        {"prefixItems": [{"type": "string"}]},
        {"if": {"type": "string"}, "then": {"type": "string"}},
        {"$ref": "#/properties/a"},
        {"multipleOf": 2},
        {"type": "strings"},
        {"properties": {"a": {"$id": "https://example.com/a"}}},
    ):
        assert not output_schema._check(other).plain, other


def test_an_instance_deeper_than_a_check_can_descend_matches_nothing() -> None:
    tree = {"$defs": {"n": {"type": "object", "properties": {"child": {"$ref": "#/$defs/n"}}}}}
    tree["$ref"] = "#/$defs/n"
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5_000):
        node["child"] = {}
        node = node["child"]
    assert matches_schema({"child": {"child": {}}}, tree)
    assert matches_schema(deep, tree) is False
