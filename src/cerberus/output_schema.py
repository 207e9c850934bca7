"""Whether a tool result's structuredContent still matches the tool's declared outputSchema.

A redaction inside structuredContent is checked against the schema the tool declared: MCP
clients validate structuredContent against it, so a result the redaction broke would fail at
the client (the guardrail blocks it instead, saying why). The official SDKs declare a schema
for every tool with a typed result, and clients list the tools before they call them, so
with a redacting policy this check runs on most structured answers (docs/benchmarks.md):

* a schema that reads no string's value gives one answer for every redaction of a result
  (a redaction replaces strings with strings), so the pass that redacts a result asks once;
* a schema made only of the keywords the SDKs write for typed results (types, properties,
  required, items, combinators, local references, bounds: `_PLAIN`) is checked here, as
  `jsonschema` would (`tests/test_output_schema.py` compares the two on random schemas);
* any other is checked by `jsonschema` (2.3 MiB once imported), formats included, with one
  validator built per schema.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

SCHEMA_REFUSAL = "redacted structuredContent would not match the tool's outputSchema"

# Keywords whose outcome can depend on what a string says (or on two strings being equal).
# A schema holding one of these names anywhere, even as a property name, is checked after
# each redaction: the names are few and the check is only skipped when none appears.
_READ_STRINGS = frozenset(
    {
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "enum",
        "const",
        "uniqueItems",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)
_REFERENCES = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


class _Check:
    """What is known of one schema: kept by the schema's id (see `_checks`)."""

    __slots__ = ("blind", "plain", "schema", "validator")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.blind = _reads_no_string(schema)
        self.plain = _is_plain(schema, schema, top=True)
        self.validator: Any = None  # jsonschema's, built when first needed


# id(schema) -> its check. The schema is kept in it so that its id cannot be reused by
# another while the entry lives; by id, not by content, because a schema is parsed JSON from
# a tools/list answer that nothing modifies in place (a rewrite copies what it changes,
# mcp.rewrite). Tools' schemas are few; bounded all the same (cleared when full).
_checks: dict[int, _Check] = {}
_KEPT = 256


def matches_schema(instance: object, schema: Mapping[str, Any]) -> bool:
    """True when `instance` is valid against `schema`, as `jsonschema` (formats asserted) says;
    False for a schema that refers to itself without descending (it never ends)."""
    check = _check(schema)
    try:
        if check.plain:
            return _valid(instance, schema, schema)
        return _jsonschema_valid(check, instance)
    except BaseException as exc:
        # The upstream declares the schema: one that recurses without end is stopped by
        # Python, or inside jsonschema's Rust registry, which raises that as a pyo3 panic (a
        # BaseException that would escape every guardrail's error handling).
        if isinstance(exc, RecursionError) or type(exc).__name__ == "PanicException":
            return False
        raise


def _jsonschema_valid(check: _Check, instance: object) -> bool:
    # Imported on the first schema that needs it: 2.3 MiB resident, which a gateway whose
    # tools declare no outputSchema, or only plain ones, never needs.
    import jsonschema

    try:
        if check.validator is None:
            validator_class = jsonschema.validators.validator_for(check.schema)
            check.validator = validator_class(
                check.schema, format_checker=validator_class.FORMAT_CHECKER
            )
        return bool(check.validator.is_valid(instance))
    except jsonschema.exceptions.SchemaError:
        return False


def string_blind(schema: Mapping[str, Any]) -> bool:
    """True when replacing strings of an instance with other strings cannot change whether it
    matches `schema`: no keyword of the schema reads a string's value, and every reference
    points inside the schema itself."""
    return _check(schema).blind


def _check(schema: Mapping[str, Any]) -> _Check:
    check = _checks.get(id(schema))
    if check is None or check.schema is not schema:
        if len(_checks) >= _KEPT:
            _checks.clear()
        check = _checks[id(schema)] = _Check(schema)
    return check


def _reads_no_string(schema: object) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _READ_STRINGS:
                    return False
                if key in _REFERENCES and not (isinstance(value, str) and value.startswith("#")):
                    return False
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return True


# --- the plain subset: draft 2020-12 keywords that read no string, checked as jsonschema does


def _is_type(instance: object, name: str) -> bool:
    """jsonschema's draft 2020-12 type checker (a bool is never a number; 1.0 is an integer)."""
    if name == "string":
        return isinstance(instance, str)
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "null":
        return instance is None
    if name == "boolean":
        return isinstance(instance, bool)
    if isinstance(instance, bool):
        return False
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    return isinstance(instance, numbers.Number)  # "number"


def _valid(instance: object, schema: object, root: Mapping[str, Any]) -> bool:
    if schema is True or schema is False:
        return schema is True
    assert isinstance(schema, Mapping)
    for key, value in schema.items():
        keyword = _KEYWORDS.get(key)
        if keyword is not None and not keyword(instance, value, schema, root):
            return False
    return True


def _type(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    names = [value] if isinstance(value, str) else value
    return any(_is_type(instance, name) for name in names)


def _properties(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    if not isinstance(instance, dict):
        return True
    return all(_valid(instance[key], sub, root) for key, sub in value.items() if key in instance)


def _required(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    return not isinstance(instance, dict) or all(key in instance for key in value)


def _additional(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    if not isinstance(instance, dict) or value is True:
        return True
    known = schema.get("properties", {})
    extras = [key for key in instance if key not in known]
    if value is False:
        return not extras
    return all(_valid(instance[key], value, root) for key in extras)


def _items(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    if not isinstance(instance, list):
        return True
    return all(_valid(item, value, root) for item in instance)


def _count(bound: Callable[[int, Any], bool], kind: type) -> Callable[..., bool]:
    def check(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
        return not isinstance(instance, kind) or bound(len(instance), value)  # type: ignore[arg-type]

    return check


def _number(bound: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def check(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
        return not _is_type(instance, "number") or bound(instance, value)

    return check


def _any_of(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    return any(_valid(instance, sub, root) for sub in value)


def _all_of(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    return all(_valid(instance, sub, root) for sub in value)


def _one_of(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    return sum(1 for sub in value if _valid(instance, sub, root)) == 1


def _not(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    return not _valid(instance, value, root)


def _ref(instance: object, value: Any, schema: Mapping[str, Any], root: Any) -> bool:
    return _valid(instance, _target(value, root), root)


_KEYWORDS: dict[str, Callable[[object, Any, Mapping[str, Any], Any], bool]] = {
    "type": _type,
    "properties": _properties,
    "required": _required,
    "additionalProperties": _additional,
    "items": _items,
    "minItems": _count(lambda size, bound: size >= bound, list),
    "maxItems": _count(lambda size, bound: size <= bound, list),
    "minProperties": _count(lambda size, bound: size >= bound, dict),
    "maxProperties": _count(lambda size, bound: size <= bound, dict),
    "minimum": _number(lambda number, bound: number >= bound),
    "maximum": _number(lambda number, bound: number <= bound),
    "exclusiveMinimum": _number(lambda number, bound: number > bound),
    "exclusiveMaximum": _number(lambda number, bound: number < bound),
    "anyOf": _any_of,
    "allOf": _all_of,
    "oneOf": _one_of,
    "not": _not,
    "$ref": _ref,
}
# Keywords that assert nothing: what they hold is not read.
_ANNOTATIONS = frozenset(
    (
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    )
)
_TYPE_NAMES = frozenset({"string", "object", "array", "null", "boolean", "integer", "number"})


def _target(ref: str, root: Mapping[str, Any]) -> Any:
    """The subschema a plain reference names: `#`, or `#/$defs/<name>` (`definitions` too)."""
    if ref == "#":
        return root
    _, container, name = ref.split("/")
    return root[container][name]


def _is_plain(schema: object, root: Mapping[str, Any], *, top: bool = False) -> bool:
    """True when every keyword of `schema` (and of its subschemas) is one `_KEYWORDS` checks,
    an annotation or a container of definitions, each well formed."""
    if schema is True or schema is False:
        return True
    if not isinstance(schema, dict):
        return False
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$schema":
            if not top or value != _DRAFT_2020_12:
                return False
        elif key in ("$defs", "definitions"):
            if not top or not isinstance(value, dict):
                return False
            if not all(_is_plain(sub, root) for sub in value.values()):
                return False
        elif not _plain_keyword(key, value, root):
            return False
    return True


def _plain_keyword(key: str, value: Any, root: Mapping[str, Any]) -> bool:
    if key == "type":
        names = [value] if isinstance(value, str) else value
        return isinstance(names, list) and all(
            isinstance(name, str) and name in _TYPE_NAMES for name in names
        )
    if key == "properties":
        return isinstance(value, dict) and all(_is_plain(sub, root) for sub in value.values())
    if key == "required":
        return isinstance(value, list) and all(isinstance(name, str) for name in value)
    if key in ("additionalProperties", "items", "not"):
        return _is_plain(value, root)
    if key in ("anyOf", "allOf", "oneOf"):
        return isinstance(value, list) and all(_is_plain(sub, root) for sub in value)
    if key in ("minItems", "maxItems", "minProperties", "maxProperties"):
        return type(value) is int and value >= 0
    if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return type(value) in (int, float)
    if key == "$ref":
        return _resolvable(value, root)
    return False


def _resolvable(ref: object, root: Mapping[str, Any]) -> bool:
    if ref == "#":
        return True
    if not isinstance(ref, str):
        return False
    parts = ref.split("/")
    if len(parts) != 3 or parts[0] != "#" or parts[1] not in ("$defs", "definitions"):
        return False
    name = parts[2]
    if not name or "~" in name or "%" in name:
        return False
    container = root.get(parts[1])
    return isinstance(container, dict) and isinstance(container.get(name), dict | bool)
