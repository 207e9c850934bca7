"""Whether a tool result's structuredContent still matches the tool's declared outputSchema.

A redaction inside structuredContent is checked against the schema the tool declared: MCP
clients validate structuredContent against it, so a result the redaction broke would fail at
the client (the guardrail blocks it instead, saying why). The official SDKs declare a schema
for every tool with a typed result, and clients list the tools before they call them, so
with a redacting policy this check runs on most structured answers (docs/benchmarks.md):

* a schema that reads no string's value gives one answer for every redaction of a result
  (a redaction replaces strings with strings), so the pass that redacts a result asks once;
* a schema made only of the keywords the SDKs write for typed results (types, properties,
  required, items, combinators, local references, bounds, lengths, patterns, enums of plain
  values: `_is_plain`) is compiled once into a check that answers as `jsonschema` would
  (`tests/test_output_schema.py` compares the two on random schemas);
* any other is checked by `jsonschema` (2.3 MiB once imported), formats included, with one
  validator built per schema.
"""

from __future__ import annotations

import numbers
import re
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
        # The gateway's own check of a plain schema, else jsonschema's (built when needed).
        self.plain: Check | None = _compile(schema, schema, {}) if _is_plain(schema) else None
        self.validator: Any = None


# id(schema) -> its check. The schema is kept in it so that its id cannot be reused by
# another while the entry lives; by id, not by content, because a schema is parsed JSON from
# a tools/list answer that nothing modifies in place (a rewrite copies what it changes,
# mcp.rewrite). Tools' schemas are few; bounded all the same (cleared when full).
_checks: dict[int, _Check] = {}
_KEPT = 256


def matches_schema(instance: object, schema: Mapping[str, Any]) -> bool:
    """True when `instance` is valid against `schema`, as `jsonschema` (formats asserted) says;
    False when checking it recurses without end (a schema that refers to itself without
    descending) or deeper than Python's recursion limit lets it (a deeply nested instance)."""
    check = _check(schema)
    try:
        if check.plain is not None:
            return check.plain(instance)
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


Check = Callable[[object], bool]


def _is_number(instance: object) -> bool:
    return isinstance(instance, numbers.Number) and not isinstance(instance, bool)


def _is_integer(instance: object) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


# jsonschema's draft 2020-12 type checker: a bool is never a number; 1.0 is an integer.
_TYPE_CHECKS: dict[str, Check] = {
    "string": lambda instance: isinstance(instance, str),
    "object": lambda instance: isinstance(instance, dict),
    "array": lambda instance: isinstance(instance, list),
    "null": lambda instance: instance is None,
    "boolean": lambda instance: isinstance(instance, bool),
    "integer": _is_integer,
    "number": _is_number,
}


def _compile(schema: object, root: Mapping[str, Any], refs: dict[str, list[Check]]) -> Check:
    """One function that answers as jsonschema does for a plain schema (`_is_plain`), built
    once per schema: its keywords' checks, each a closure over what the keyword holds."""
    if schema is True or schema is False:
        return (lambda instance: True) if schema else (lambda instance: False)
    assert isinstance(schema, Mapping)
    checks = [
        _compile_keyword(key, value, schema, root, refs)
        for key, value in schema.items()
        if key in _KEYWORDS
    ]
    if len(checks) == 1:
        return checks[0]

    def every(instance: object) -> bool:
        for check in checks:  # noqa: SIM110 - a loop, not a generator per instance
            if not check(instance):
                return False
        return True

    return every


def _compile_keyword(
    key: str, value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], refs: Any
) -> Check:
    if key == "type":
        names = [value] if isinstance(value, str) else value
        kinds = [_TYPE_CHECKS[name] for name in names]
        if len(kinds) == 1:
            return kinds[0]
        return lambda instance: any(kind(instance) for kind in kinds)
    if key == "properties":
        fields = [(name, _compile(sub, root, refs)) for name, sub in value.items()]

        def properties(instance: object) -> bool:
            if not isinstance(instance, dict):
                return True
            for name, check in fields:
                if name in instance and not check(instance[name]):
                    return False
            return True

        return properties
    if key == "required":
        names = frozenset(value)  # every name a key of the instance: a subset of its keys
        return lambda instance: not isinstance(instance, dict) or names <= instance.keys()
    if key == "additionalProperties":
        return _additional(_compile(value, root, refs), value, set(schema.get("properties", {})))
    if key == "items":
        item = _compile(value, root, refs)
        return lambda instance: not isinstance(instance, list) or all(map(item, instance))
    if key in _COUNTS:
        kind, at_least = _COUNTS[key]
        if at_least:
            return lambda instance: not isinstance(instance, kind) or len(instance) >= value  # type: ignore[arg-type]
        return lambda instance: not isinstance(instance, kind) or len(instance) <= value  # type: ignore[arg-type]
    if key in _BOUNDS:
        compare = _BOUNDS[key]
        return lambda instance: not _is_number(instance) or compare(instance, value)
    if key == "$ref":
        return _reference(value, root, refs)
    if key == "pattern":
        search = re.compile(value).search
        return lambda instance: not isinstance(instance, str) or search(instance) is not None
    if key == "enum":
        members = list(value)
        return lambda instance: any(_equal(member, instance) for member in members)
    if key == "const":
        return lambda instance: _equal(value, instance)
    subs = [_compile(sub, root, refs) for sub in value] if key != "not" else []
    if key == "anyOf":
        return lambda instance: any(sub(instance) for sub in subs)
    if key == "allOf":
        return lambda instance: all(sub(instance) for sub in subs)
    if key == "oneOf":
        return lambda instance: sum(1 for sub in subs if sub(instance)) == 1
    negated = _compile(value, root, refs)  # "not"
    return lambda instance: not negated(instance)


def _additional(check: Check, value: Any, known: set[str]) -> Check:
    if value is True:
        return lambda instance: True

    def additional(instance: object) -> bool:
        if not isinstance(instance, dict):
            return True
        for name in instance:
            if name not in known and (value is False or not check(instance[name])):
                return False
        return True

    return additional


def _reference(ref: str, root: Mapping[str, Any], refs: dict[str, list[Check]]) -> Check:
    """A reference's target, compiled once per schema: a recursive schema refers back to a
    check that is being built, so each reference reads its target's check when it runs."""
    holder = refs.get(ref)
    if holder is None:
        holder = refs[ref] = []
        holder.append(_compile(_target(ref, root), root, refs))
    return lambda instance: holder[0](instance)


# A bound on the size of one JSON type (items, properties, characters): (that type, whether
# the bound is a minimum); other types pass.
_COUNTS: dict[str, tuple[type, bool]] = {
    "minItems": (list, True),
    "maxItems": (list, False),
    "minProperties": (dict, True),
    "maxProperties": (dict, False),
    "minLength": (str, True),
    "maxLength": (str, False),
}
_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda number, bound: number >= bound,
    "maximum": lambda number, bound: number <= bound,
    "exclusiveMinimum": lambda number, bound: number > bound,
    "exclusiveMaximum": lambda number, bound: number < bound,
}
_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "$ref", "not"}
    | {"anyOf", "allOf", "oneOf", "pattern", "enum", "const"}
    | set(_COUNTS)
    | set(_BOUNDS)
)
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


def _target(ref: str, root: Mapping[str, Any]) -> Any:
    """The subschema a plain reference names: `#`, or `#/$defs/<name>` (`definitions` too)."""
    if ref == "#":
        return root
    _, container, name = ref.split("/")
    return root[container][name]


def _is_plain(schema: object, root: Mapping[str, Any] | None = None) -> bool:
    """True when every keyword of `schema` (and of its subschemas) is one `_KEYWORDS` checks,
    an annotation or a container of definitions, each well formed (`root`: the whole schema,
    None when `schema` is the whole schema)."""
    if schema is True or schema is False:
        return root is not None
    if not isinstance(schema, dict):
        return False
    top = root is None
    root = schema if root is None else root
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
            isinstance(name, str) and name in _TYPE_CHECKS for name in names
        )
    if key == "properties":
        return isinstance(value, dict) and all(_is_plain(sub, root) for sub in value.values())
    if key == "required":
        return isinstance(value, list) and all(isinstance(name, str) for name in value)
    if key in ("additionalProperties", "items", "not"):
        return _is_plain(value, root)
    if key in ("anyOf", "allOf", "oneOf"):
        return isinstance(value, list) and all(_is_plain(sub, root) for sub in value)
    if key in _COUNTS:
        return type(value) is int and value >= 0
    if key in _BOUNDS:
        return type(value) in (int, float)
    if key == "$ref":
        return _resolvable(value, root)
    if key == "pattern":
        return isinstance(value, str) and _compiles(value)
    if key == "enum":
        return isinstance(value, list) and all(type(each) in _SCALARS for each in value)
    if key == "const":
        return type(value) in _SCALARS
    return False


# What `enum` and `const` may hold in a plain schema: JSON's scalars, which jsonschema's
# `equal` compares as Python does, but that a bool is only ever equal to itself.
_SCALARS = (str, int, float, bool, type(None))


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _equal(member: object, instance: object) -> bool:
    """jsonschema's `equal` for a scalar `member`: True is not 1, False is not 0, 1 is 1.0."""
    if member is instance:
        return True
    if isinstance(member, bool) or isinstance(instance, bool):
        return False  # the same bool is the same object, above
    return member == instance


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
