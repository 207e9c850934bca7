"""What MCP messages carry: the text a guardrail must scan, in any message kind, and redaction.

One walker (`texts`) finds every piece of text in a JSON-RPC message of either direction:
tool arguments, content blocks, resource links and contents (text-like blobs decoded, as
each kind of client decodes them), structuredContent, prompts, sampling and elicitation
payloads and their answers (legacy responses and 2026-07-28 `inputResponses`),
notifications, tasks results, tool definitions, errors, `_meta`. It walks every string
rather than a list of known fields, so a field a later protocol revision adds is scanned
too; only protocol identifiers (and the `_meta` entries the protocol defines, while they
hold what it defines) are skipped. `redact` rewrites texts in place and refuses (returns a
reason) whenever the rewritten message would no longer be valid JSON-RPC and MCP, or would
no longer match a header that mirrors the body.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from cerberus.header_encoding import decode_header_value
from cerberus.jsonrpc import repeated_name
from cerberus.media_types import charsets
from cerberus.output_schema import SCHEMA_REFUSAL, matches_schema
from cerberus.scanning import scan_text

Path = tuple[str | int, ...]
# A path as a parent link, `(parent, step)` (None: the message itself): extending one costs
# O(1), where copying a tuple path costs its depth, which made deep nesting quadratic.
Link = tuple["Link", str | int] | None

# Keys whose values identify protocol objects rather than carry content (outside user data).
_PROTOCOL_KEYS_WORDS = (
    "jsonrpc id method type mimeType role resultType progressToken cursor nextCursor"
    " protocolVersion taskId requestId subscriptionId ttlMs cacheScope status level action"
)
PROTOCOL_KEYS = frozenset(_PROTOCOL_KEYS_WORDS.split())
# Opaque and sealed by the server (AEAD in the SDK): never read, never touched.
SEALED_KEYS = frozenset({"requestState"})
# Subtrees that hold arbitrary JSON data: every key, string and number in them is content.
_DATA_KEYS_WORDS = (
    "structuredContent arguments input data inputSchema outputSchema requestedSchema annotations"
    " _meta"
)
DATA_KEYS = frozenset(_DATA_KEYS_WORDS.split())
# Data subtrees that describe or annotate rather than carry records (not counted as rows).
_NOT_RECORDS = frozenset({"_meta", "annotations", "inputSchema", "outputSchema", "requestedSchema"})
# How the walk reads a `_meta` entry the protocol defines, when its value has the type the
# protocol gives it; any other value, and any other key (under the reserved prefixes too: the
# server's code reads every entry), is read like the rest of `_meta`, as data. The SDKs write
# most of these on every request or result: what they write costs nothing to read.
_META_ID, _META_VERSION, _META_LEVEL, _META_NAMED, _META_FLAGS = range(5)
_META_ENTRIES: dict[object, int] = {
    # Chosen by the sender, and readable by the server's tool (`request_context.meta`): a
    # string is read, but not with its key, which made `progressToken: "progress-test-1"` a
    # token assignment; an integer is read as a number from `_META_COUNTER_BELOW` on.
    "progressToken": _META_ID,
    "io.modelcontextprotocol/subscriptionId": _META_ID,
    # Skipped when they hold a version or a log level: there is no room for anything else.
    "io.modelcontextprotocol/protocolVersion": _META_VERSION,
    "io.modelcontextprotocol/logLevel": _META_LEVEL,
    # Skipped when they hold only the members that name the sender, or the task, as strings;
    # else read as the same objects are elsewhere in the protocol (`initialize`'s clientInfo
    # and serverInfo): their strings, not their keys or numbers.
    "io.modelcontextprotocol/clientInfo": _META_NAMED,
    "io.modelcontextprotocol/serverInfo": _META_NAMED,
    "io.modelcontextprotocol/related-task": _META_NAMED,
    # Capability flags: read as protocol data (`initialize`'s capabilities) once they hold a
    # string at any depth (an experimental or extension setting).
    "io.modelcontextprotocol/clientCapabilities": _META_FLAGS,
}
_META_NAMES = frozenset({"name", "version", "title", "taskId"})
_STR = frozenset({str})
# Request ids and counters: an integer token below this is an identifier, and from it on a
# number (no detector reads one this short without a key, but a card number would pass).
_META_COUNTER_BELOW = 10**6
_PROTOCOL_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_PROTOCOL_VERSIONS = frozenset(
    {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}
)
_LOG_LEVELS = frozenset(
    {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}
)
# The reason protocol `_meta` cannot be redacted. The `_meta` object itself is pushed with an
# equal string of its own (`_META_NODE`), so that the walk knows it by identity: a `_meta`
# key inside user data is user data, and so is a `_meta` inside the protocol's `_meta`.
_META_LOCK = "protocol metadata"
_META_NODE = " ".join(("protocol", "metadata"))
# Content blocks whose `data` is base64 media, which no text detector can read.
_MEDIA = ("image", "audio")
# Methods whose params field is mirrored by the 2026-07-28 `Mcp-Name` header.
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_TEXT_MIME_PREFIXES = ("text/",)
_TEXT_MIME_TYPES_WORDS = (
    "application/json application/xml application/javascript application/ecmascript"
    " application/x-yaml application/yaml application/toml application/sql"
    " application/graphql application/x-sh application/csv application/x-ndjson"
    " image/svg+xml"
)
_TEXT_MIME_TYPES = frozenset(_TEXT_MIME_TYPES_WORDS.split())


class SlotKind(StrEnum):
    TEXT = "text"  # a JSON string value
    BLOB = "blob"  # base64 contents of a text-like resource, decoded
    KEY = "key"  # an object key inside user data or a schema
    NUMBER = "number"  # a number inside user data, as its decimal text


# Slots that hold prose or documents (keys and numbers are data, not text to read for shape).
READABLE_KINDS = (SlotKind.TEXT, SlotKind.BLOB)


class TextSlot(NamedTuple):
    """One piece of text in a message, where it is, and whether it can be rewritten in place.

    A tuple, not a dataclass: a large structured result yields hundreds of thousands of them.
    The path is kept as a parent link and built only when read (for the few slots a finding
    or a redaction names), so walking a message stays linear in its size at any depth.
    """

    link: Link
    text: str
    kind: SlotKind = SlotKind.TEXT
    # Why redaction may not rewrite this text (None: it may).
    locked: str | None = None
    # The text as UTF-8, which is what the scanners read.
    data: bytes = b""
    # For a value inside user data, the object key it sits under: `{"password": "..."}` says
    # what its value is, and detectors that read context ("SSN", "api_key =") need that.
    key: str | None = None

    @property
    def path(self) -> Path:
        return path_of(self.link)

    @property
    def where(self) -> str:
        return where(path_of(self.link)) + WHERE_SUFFIX.get(self.kind, "")


WHERE_SUFFIX = {SlotKind.KEY: " (key)", SlotKind.BLOB: " (base64)"}


def path_of(link: Link) -> Path:
    """The tuple path a link stands for (iterative: a path may be deeper than the stack)."""
    steps: list[str | int] = []
    while link is not None:
        link, step = link
        steps.append(step)
    steps.reverse()
    return tuple(steps)


def _short_path(link: Link, limit: int) -> Path | None:
    """The link's path if it has at most `limit` steps (None if deeper), in O(limit)."""
    steps: list[str | int] = []
    while link is not None:
        if len(steps) == limit:
            return None
        link, step = link
        steps.append(step)
    steps.reverse()
    return tuple(steps)


def where(path: Sequence[str | int]) -> str:
    """A JSONPath for a message path: `$.result.content[0].text`; a key that holds what a
    detector finds (`{"by_email": {"bob@example.com": ...}}`) is written `['[REDACTED]']`."""
    parts = ["$"]
    for step in path:
        parts.append(f"[{step}]" if isinstance(step, int) else _key_step(step))
    return "".join(parts)


# Keys repeat (a structure's field names): each is scanned once. A longer key is data, not
# a name: it is not written (nor scanned again for every text under it).
_WRITTEN_KEY_CHARS = 256


def _key_step(key: str) -> str:
    if len(key) > _WRITTEN_KEY_CHARS:
        return f"['[KEY OF {len(key)} CHARACTERS]']"
    return _cached_key_step(key)


@lru_cache(maxsize=1024)
def _cached_key_step(key: str) -> str:
    # Paths reach the audit trail, block reasons and logs, which never hold a value a
    # guardrail exists to stop: every detector reads the key, whichever the policies enable.
    if scan_text(key):
        return "['[REDACTED]']"
    return f".{key}" if key.isidentifier() else f"[{key!r}]"


def is_text_mime(mime_type: object) -> bool:
    if not isinstance(mime_type, str):
        return False
    base = mime_type.split(";", 1)[0].strip().lower()
    return (
        base.startswith(_TEXT_MIME_PREFIXES)
        or base in _TEXT_MIME_TYPES
        or base.endswith(("+json", "+xml", "+yaml"))
    )


def tool_name(message: Mapping[str, Any]) -> str | None:
    params = message.get("params")
    if message.get("method") == "tools/call" and isinstance(params, Mapping):
        name = params.get("name")
        return name if isinstance(name, str) else None
    return None


# One walk per message object, shared by the guardrails that read it in turn. Holding the
# message itself (not its id) means a recycled id can never return stale slots.
_last_walk: tuple[object, list[TextSlot], int, set[Path]] | None = None


def texts(message: Mapping[str, Any]) -> list[TextSlot]:
    """Every text the message carries, in document order."""
    return _walked(message)[1]


def walk(message: Mapping[str, Any]) -> tuple[list[TextSlot], int, set[Path]]:
    """`texts` and `text_size` of the message, and the paths of the text blocks that
    serialise the result's structuredContent (not walked: `rewrite` rebuilds them from the
    redacted value), from one call."""
    _, slots, size, mirrors = _walked(message)
    return slots, size, mirrors


def text_size(message: Mapping[str, Any]) -> int:
    """Bytes of text the message carries (UTF-8), e.g. to decide to scan it off the loop."""
    return _walked(message)[2]


def _walked(message: Mapping[str, Any]) -> tuple[object, list[TextSlot], int, set[Path]]:
    global _last_walk
    cached = _last_walk
    if cached is not None and cached[0] is message:
        return cached
    mirrors = _structured_mirrors(message.get("result"))
    slots = _walk(message, mirrors)
    walked = (message, slots, sum(map(len, map(_DATA_OF, slots))), mirrors)
    _last_walk = walked
    return walked


_DATA_OF = itemgetter(4)  # TextSlot.data, read in C
# JSON types that are never a Mapping: the walk tests these before the (slower) ABC check.
_NOT_MAPPINGS = frozenset({list, str, bool, int, float, type(None)})
_SCALARS = frozenset({str, bool, int, float, type(None)})
_RECORD_KEYS = DATA_KEYS - _NOT_RECORDS


def data_roots(message: Mapping[str, Any]) -> list[tuple[Path, Any]]:
    """The user-data JSON values in a message (arguments, structuredContent, ...), with paths."""
    roots: list[tuple[Path, Any]] = []
    stack: list[tuple[Any, Link]] = [(message, None)]
    # Only containers can hold a root: strings, numbers, booleans and nulls are not pushed.
    while stack:
        node, link = stack.pop()
        kind = type(node)
        if kind is dict or (kind not in _NOT_MAPPINGS and isinstance(node, Mapping)):
            for key, value in node.items():
                if key in _RECORD_KEYS:
                    roots.append((path_of((link, key)), value))
                elif type(value) not in _SCALARS and key not in SEALED_KEYS:
                    stack.append((value, (link, key)))
        elif isinstance(node, list):
            stack.extend(
                (value, (link, index))
                for index, value in enumerate(node)
                if type(value) not in _SCALARS
            )
    return roots


def _walk(message: Mapping[str, Any], mirrors: set[Path]) -> list[TextSlot]:
    method = message.get("method")
    mirrored: Path | None = None
    if isinstance(method, str) and "id" in message and method in NAME_BEARING:
        mirrored = ("params", NAME_BEARING[method])
    slots: list[TextSlot] = []
    # A record set repeats its keys on every row; each distinct key is read once (keys are
    # never rewritten, so only whether one holds something matters, not each occurrence).
    seen_keys: set[str] = set()
    # Stack entries: (node, link to its path, in user data, locked reason). Every entry's
    # link is a (parent, step) pair, never None: the message root itself is not pushed.
    stack: list[tuple[Any, tuple[Link, str | int], bool, str | None]] = [
        (message[key], (None, key), False, None)
        for key in reversed(list(message))
        if key not in ("jsonrpc", "id", "method")
    ]
    # Locals: this loop runs once per JSON value of the message. Slots are built with
    # tuple.__new__, which skips the named tuple's Python-level __new__ (a third cheaper).
    new, append, pop, push = tuple.__new__, slots.append, stack.pop, stack.extend
    plain_keys, inert = _PLAIN_KEYS, _INERT
    while stack:
        node, link, in_data, locked = pop()
        step = link[1]
        kind = type(node)
        if isinstance(node, str):
            if mirrored is not None and step == mirrored[1] and _short_path(link, 2) == mirrored:
                locked = "mirrored by the Mcp-Name header"
            elif not in_data and step == "uri":
                locked = locked or "a URI"
            key = step if in_data and isinstance(step, str) else None
            data = node.encode("utf-8", "surrogatepass")
            append(new(TextSlot, (link, node, _TEXT, locked, data, key)))
        elif kind is dict or (kind not in _NOT_MAPPINGS and isinstance(node, Mapping)):
            blobs = _decoded_blobs(node) if "blob" in node else None
            if blobs:
                blob_link = (link, "blob")
                for blob in blobs:
                    append(TextSlot(blob_link, blob, SlotKind.BLOB, locked, _utf8(blob)))
            children: list[tuple[Any, tuple[Link, str | int], bool, str | None]]
            items: Iterable[tuple[Any, Any]]
            if locked is _META_NODE:  # the protocol's `_meta`, read entry by entry
                children, items = _meta_children(node, link, seen_keys, append), ()
            else:
                children, items = [], node.items()
            for key, value in items:
                if in_data:
                    if key in SEALED_KEYS:
                        continue
                    child_link = (link, key)
                    if key not in seen_keys:
                        seen_keys.add(key)
                        name = str(key)
                        data = name.encode("utf-8", "surrogatepass")
                        append(new(TextSlot, (child_link, name, _KEY_KIND, _KEY, data, None)))
                    # Nulls and booleans hold no text (numbers in user data do).
                    if value is not None and value is not True and value is not False:
                        children.append((value, child_link, True, locked))
                    continue
                action = plain_keys.get(key)
                if action is None:
                    # Outside user data nulls, booleans and numbers hold no text.
                    if type(value) not in inert:
                        children.append((value, (link, key), False, locked))
                elif action == _DATA:
                    reason = locked
                    if key == "_meta":
                        reason = _META_NODE if isinstance(value, Mapping) else _META_LOCK
                    children.append((value, (link, key), True, reason))
                elif action == _SPECIAL:
                    child_link = (link, key)
                    if key == "data" and node.get("type") in _MEDIA:
                        continue
                    if key == "text" and mirrors and _short_path(child_link, 4) in mirrors:
                        continue  # the serialised copy of structuredContent: redact() rebuilds it
                    if key == "data" or (key == "content" and _is_answer_content(node, value)):
                        children.append((value, child_link, True, locked))
                    elif type(value) not in inert:
                        children.append((value, child_link, False, locked))
                # else _SKIP: sealed, a blob (decoded above) or a protocol identifier
            if len(children) == 1:
                stack.append(children[0])
            else:
                children.reverse()
                push(children)
        elif isinstance(node, list):
            push(
                (value, (link, index), in_data, locked)
                for index, value in reversed(list(enumerate(node)))
            )
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, (int, float)) and in_data:
            text = _number_text(node)
            key = step if isinstance(step, str) else None
            append(TextSlot(link, text, _NUMBER, "a number", _utf8(text), key))
    return slots


_TEXT, _KEY_KIND, _NUMBER = SlotKind.TEXT, SlotKind.KEY, SlotKind.NUMBER
# How the walk treats a key outside user data (absent: an ordinary field, walked as such).
_SKIP, _DATA, _SPECIAL = 0, 1, 2
_PLAIN_KEYS: dict[object, int] = {
    **dict.fromkeys(SEALED_KEYS | {"blob"} | PROTOCOL_KEYS, _SKIP),
    **dict.fromkeys(DATA_KEYS, _DATA),
    # Decided by the node or the value: media data and structuredContent's serialised
    # copy are skipped, and `content` is user data when it holds an elicitation's answers.
    **dict.fromkeys(("data", "content", "text"), _SPECIAL),
}
# Values that hold no text outside user data.
_INERT = frozenset({bool, int, float, type(None)})


_KEY = "an object key"


def _meta_children(
    meta: Mapping[str, Any], link: Link, seen_keys: set[str], append: Any
) -> list[tuple[Any, tuple[Link, str | int], bool, str | None]]:
    """The protocol's `_meta` object, walked one level: slots for its keys and the entries
    it defines (`_META_ENTRIES`) that are read but not as data, and the entries still to
    walk (as data, or as protocol data), in the walk's stack form. An entry the protocol
    defines, holding the type the protocol gives it, is read as what it is; any other entry
    is user data, as everywhere in `_meta`."""
    children: list[tuple[Any, tuple[Link, str | int], bool, str | None]] = []
    for key, value in meta.items():
        how = _META_ENTRIES.get(key)
        if how is not None:
            if how == _META_ID:
                if type(value) is str:
                    append(TextSlot((link, key), value, _TEXT, _META_LOCK, _utf8(value)))
                    continue
                if type(value) is int:  # not a bool
                    if not -_META_COUNTER_BELOW < value < _META_COUNTER_BELOW:
                        text = str(value)
                        append(TextSlot((link, key), text, _NUMBER, "a number", _utf8(text)))
                    continue
            elif how == _META_VERSION:
                if type(value) is str and (
                    value in _PROTOCOL_VERSIONS or _PROTOCOL_VERSION.fullmatch(value)
                ):
                    continue
            elif how == _META_LEVEL:
                if type(value) is str and value in _LOG_LEVELS:
                    continue
            elif type(value) is dict or (
                type(value) not in _NOT_MAPPINGS and isinstance(value, Mapping)
            ):
                if how == _META_NAMED:
                    if value.keys() <= _META_NAMES and set(map(type, value.values())) <= _STR:
                        continue
                elif not _holds_text(value):
                    continue
                children.append((value, (link, key), False, _META_LOCK))
                continue
        if key in SEALED_KEYS:
            continue
        child_link = (link, key)
        if key not in seen_keys:
            seen_keys.add(key)
            name = str(key)
            append(TextSlot(child_link, name, _KEY_KIND, _KEY, _utf8(name)))
        if value is not None and value is not True and value is not False:
            children.append((value, child_link, True, _META_LOCK))
    return children


def _holds_text(value: object) -> bool:
    """Whether a JSON value has a string anywhere but in its object keys."""
    stack: list[object] = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            stack.extend(node.values())
        elif type(node) is str:
            return True
        elif type(node) is list:
            stack.extend(node)
        elif type(node) not in _SCALARS and isinstance(node, Mapping):
            stack.extend(node.values())
    return False


# Whole floats below this are scanned as the integer they equal: `repr` writes them as their
# digits and ".0", so the text only gets shorter (content_large_documents counts these texts
# too, and relies on that). Up to 19 digits (the longest number a detector reads: a card),
# `repr` writes them with an exponent. Past 2**53 a double holds few integers exactly, but
# those it holds reach a tool as that integer: `{"card": 4.1111111111111117e+18}` is
# 4111111111111111680, a 19-digit Visa number, to an SDK tool whose `card` is an int. These
# are read as the integer too, when that is no longer than the `repr` (a card's digits do
# not round to a short one; `1e+18` stays as it is written).
_WHOLE_FLOAT_DIGITS_BELOW = 1e16
_WHOLE_FLOAT_CARD_DIGITS_BELOW = 1e19


def _number_text(number: int | float) -> str:
    """A number as the detectors read it: as the integer it equals when it is a whole float.

    `4111111111111111.0`, `4.111111111111111e15` and `4111111111111111e0` are all the card
    number 4111111111111111 to the tool that reads them, but `repr` wrote them with a `.0`,
    which no card or account pattern matches, and the value passed every guardrail."""
    if type(number) is float and number.is_integer():
        size = abs(number)
        if size < _WHOLE_FLOAT_DIGITS_BELOW:
            return str(int(number))
        if size < _WHOLE_FLOAT_CARD_DIGITS_BELOW:
            digits, written = str(int(number)), repr(number)
            return digits if len(digits) <= len(written) else written
    return repr(number)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _is_answer_content(node: Mapping[str, Any], value: object) -> bool:
    """Whether `node.content` is user data: the answers of an elicitation, whatever its fields
    are named (a form may well have one named `type`, which made it a content block). An
    ElicitResult says what it is with its `action`, wherever it sits: a response's result,
    an `inputResponses` entry, a task's result. Otherwise content is content blocks (a list,
    or one block, which has a `type`), and an object without a `type` is answers too."""
    if "action" in node:
        return True
    if type(value) is dict:
        return "type" not in value
    if type(value) in _NOT_MAPPINGS:  # a list of content blocks, mostly: no ABC check
        return False
    return isinstance(value, Mapping) and "type" not in value


def _decoded_blobs(node: Mapping[str, Any]) -> list[str] | None:
    """The texts of a text-like blob as its readers get it: base64 decoded the ways clients
    decode it (`_blob_readings`), in the encoding `blob_encoding` names, what it cannot read
    as U+FFFD. Read strictly, such a blob was left unread and passed every guardrail."""
    blob = node.get("blob")
    if not isinstance(blob, str) or not is_text_mime(node.get("mimeType")):
        return None
    return [raw.decode(blob_encoding(node, raw), "replace") for raw in _blob_readings(blob)]


def _blob_readings(blob: str) -> list[bytes]:
    """Every reading of `blob` a client may make, each once: valid base64 has one. Otherwise
    the most lenient (`_lenient_b64decode`: wrapped lines, no padding, both alphabets), and
    where they differ from it, Python's (`base64.b64decode`, which langchain-mcp-adapters
    calls: it drops `-` and `_`, and a `=` that ends no group) and Node's (Buffer: both
    alphabets, up to the first `=`). One `-` read as `+` hid a text every Python host read,
    and a `=` before digits hid a card that Node hosts read."""
    try:
        return [base64.b64decode(blob, validate=True)]
    except ValueError:  # binascii.Error, or a character outside ASCII
        pass
    lenient = _lenient_b64decode(blob)
    pad = blob.find("=")
    if "-" not in blob and "_" not in blob and (pad < 0 or not _B64_LETTER.search(blob, pad)):
        return [lenient]  # every reader skips the same characters and stops at the same end
    readings = [lenient]
    up_to_padding = _lenient_b64decode(blob[:pad]) if pad >= 0 else lenient
    if up_to_padding not in readings:
        readings.append(up_to_padding)
    try:
        # The padding a reader may add to a blob without it; ignored after a complete group.
        python = base64.b64decode(blob + "==")
    except ValueError:
        return readings  # Python hosts fail to read it
    if python not in readings:
        readings.append(python)
    return readings


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
         (codecs.BOM_UTF8, "utf-8-sig"))  # fmt: skip


def blob_encoding(node: Mapping[str, Any], raw: bytes) -> str:
    """The text encoding a reader decodes a text-like blob with: the charset its mimeType
    names, else the one its byte order mark shows, else UTF-8. A file saved as UTF-16 read
    as UTF-8 has a NUL after every ASCII letter, and no pattern matched in it."""
    mime_type = node.get("mimeType")
    named = charsets(mime_type) if isinstance(mime_type, str) else []
    if named:
        return _text_encoding(named[0])
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding
    return "utf-8"


def _text_encoding(name: str) -> str:
    """Python's codec for a charset name, or UTF-8 when it names none (or no text encoding)."""
    try:
        encoding = codecs.lookup(name).name
        b"a".decode(encoding)  # LookupError too for a codec that is no text encoding (rot13)
    except LookupError:
        return "utf-8"
    except ValueError:
        pass  # a text encoding that cannot read this one byte (UTF-16)
    return encoding


def _blob_of(node: Mapping[str, Any], text: str) -> str:
    """A redacted blob's text as base64, in the encoding its reader decodes it with."""
    encoding = blob_encoding(node, _lenient_b64decode(node["blob"][:16]))
    return base64.b64encode(text.encode(encoding, "replace")).decode()


def _lenient_b64decode(blob: str) -> bytes:
    """What the most lenient decoders make of `blob`: the URL-safe alphabet read as the
    standard one, anything else outside the alphabet skipped, a lone last character
    dropped and the padding supplied."""
    letters = _NOT_B64.sub("", blob.translate(_URL_SAFE))
    if len(letters) % 4 == 1:
        letters = letters[:-1]
    return base64.b64decode(letters + "=" * (-len(letters) % 4))


_URL_SAFE = str.maketrans("-_", "+/")
_NOT_B64 = re.compile(r"[^A-Za-z0-9+/]")
_B64_LETTER = re.compile(r"[A-Za-z0-9+/_-]")


def _structured_mirrors(result: object) -> set[Path]:
    """Paths of text blocks that are the JSON serialisation of the result's structuredContent."""
    if not isinstance(result, Mapping) or "structuredContent" not in result:
        return set()
    content = result.get("content")
    if not isinstance(content, list):
        return set()
    structured = result["structuredContent"]
    return {
        ("result", "content", index, "text")
        for index, block in enumerate(content)
        if isinstance(block, Mapping)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
        and same_json(block["text"], structured)
    }


def same_json(text: str, value: object) -> bool:
    """True when `text` is JSON for `value` and says nothing else: a text block found to be
    the serialisation of structuredContent is not scanned itself (the structure is, and a
    redaction rebuilds the text), so a member the parse drops, its name written twice, would
    reach the model unread."""
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return False
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return _identical(parsed, value) and repeated_name(text, parsed) is None


def _identical(parsed: object, value: object) -> bool:
    """`parsed == value`, with every number and boolean of the same type: Python calls
    `4111111111111111680` and `4.1111111111111117e+18` equal (and `1`, `1.0` and `true`),
    so a text block holding the card passed for the copy of a float that no pattern reads.
    Two values that are equal and serialise alike (the types show: `1` / `1.0` / `true`)
    are the same JSON; key order aside, which equality ignores."""
    try:
        if orjson.dumps(parsed) == orjson.dumps(value):
            return True  # the common case: the server wrote its members in their order
        if parsed != value:
            return False
        sort = orjson.OPT_SORT_KEYS
        return orjson.dumps(parsed, option=sort) == orjson.dumps(value, option=sort)
    except TypeError:  # not JSON orjson writes (another Mapping, a 65-bit integer): not a copy
        return False


# --- redaction -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rewrite:
    """A rewritten message, or the reason it could not be rewritten validly (then: block)."""

    message: dict[str, Any] | None
    refusal: str | None = None


def redact(
    message: Mapping[str, Any],
    changes: Sequence[tuple[TextSlot, str]],
    *,
    output_schema: Mapping[str, Any] | None = None,
    request_headers: Mapping[str, str] | None = None,
) -> Rewrite:
    """`message` with each slot's text replaced, or a refusal.

    The original is not modified: containers on the changed paths are copied, the rest shared.
    Refuses when a slot cannot hold a replacement string (a key, a number, a URI, protocol
    metadata, a field a 2026-07-28 header mirrors) or when the redacted structuredContent would
    no longer match the tool's declared outputSchema.
    """
    refused = refusal(message, changes, request_headers)
    if refused is not None:
        return Rewrite(None, refused)
    return rewrite(message, changes, output_schema=output_schema)


def refusal(
    message: Mapping[str, Any],
    changes: Sequence[tuple[TextSlot, str]],
    request_headers: Mapping[str, str] | None = None,
) -> str | None:
    """Why these slots cannot be rewritten in place (None: they can), short of the
    outputSchema, which only the rewritten message can be checked against."""
    for slot, _ in changes:
        if slot.locked is not None:
            return f"cannot redact {slot.where}: it is {slot.locked}"
    return _mirrored_argument(message, changes, request_headers)


def rewrite(
    message: Mapping[str, Any],
    changes: Sequence[tuple[TextSlot, str]],
    *,
    output_schema: Mapping[str, Any] | None = None,
    mirrors: set[Path] | None = None,
    paths: Sequence[Path] | None = None,
) -> Rewrite:
    """`message` with each slot's text replaced (slots `refusal` accepted), in one copy; a
    refusal only when the redacted structuredContent would not match `output_schema`.
    `mirrors`: the message's mirror paths (from `walk`), and `paths`: the changed slots' paths,
    when the caller has them."""
    if paths is None:
        paths = [slot.path for slot, _ in changes]
    structured_changed = any(path[:2] == ("result", "structuredContent") for path in paths)
    rewritten = dict(message)
    fresh = {id(rewritten)}  # containers this copy made, safe to change
    # Redacted fields of one record share their parent: it is found (and copied) once.
    parent_path: Path | None = None
    parent: Any = None
    for path, (slot, text) in zip(paths, changes, strict=True):
        head = path[:-1]
        if head != parent_path:
            parent, parent_path = _copied(rewritten, fresh, head), head
        parent[path[-1]] = _blob_of(parent, text) if slot.kind is SlotKind.BLOB else text
    result = rewritten.get("result")
    if structured_changed and isinstance(result, dict):
        # The text blocks that serialise structuredContent are rebuilt from the redacted value.
        rebuilt = sorted(_structured_mirrors(message.get("result")) if mirrors is None else mirrors)
        for mirror in rebuilt:
            original_text = message["result"]["content"][mirror[2]]["text"]
            serialised = _serialise_like(original_text, result["structuredContent"])
            _copied(rewritten, fresh, mirror[:-1])[mirror[-1]] = serialised
        if output_schema is not None and not matches_schema(
            result["structuredContent"], output_schema
        ):
            return Rewrite(None, SCHEMA_REFUSAL)
    return Rewrite(rewritten)


def _mirrored_argument(
    message: Mapping[str, Any],
    changes: Sequence[tuple[TextSlot, str]],
    headers: Mapping[str, str] | None,
) -> str | None:
    """A 2026-07-28 client mirrors `x-mcp-header` arguments into Mcp-Param-* headers; the
    upstream rejects a body that no longer matches them, so such a redaction is refused."""
    if message.get("method") != "tools/call":
        return None
    arguments = [slot for slot, _ in changes if slot.path[:2] == ("params", "arguments")]
    if not arguments:
        return None
    if headers is None:
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, Mapping) else None
        modern = isinstance(meta, Mapping) and "io.modelcontextprotocol/protocolVersion" in meta
        if modern:
            return "cannot redact tools/call arguments without the request's Mcp-Param-* headers"
        return None
    mirrored = {
        decode_header_value(value)
        for name, value in headers.items()
        if name.lower().startswith("mcp-param-")
    }
    for slot in arguments:
        if slot.text in mirrored:
            return f"cannot redact {slot.where}: an Mcp-Param-* header mirrors it"
    return None


def _copied(root: dict[str, Any], fresh: set[int], path: Path) -> Any:
    """The container at `path` in `root`, after copying each container on the way there
    (itself included) that the copy still shares with the original (`fresh`: the ids of
    those already copied)."""
    node: Any = root
    for step in path:
        child = node[step]
        if id(child) not in fresh:
            kind = type(child)
            if kind is dict or (kind is not list and isinstance(child, Mapping)):
                child = dict(child)
            else:
                child = list(child)
            node[step] = child
            fresh.add(id(child))
        node = child
    return node


def _serialise_like(original: str, value: object) -> str:
    """Serialise `value` the way the server serialised the original (indented or compact)."""
    if "\n" in original.strip():
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    if ", " in original or ": " in original:
        return json.dumps(value, ensure_ascii=False)
    return orjson.dumps(value).decode()
