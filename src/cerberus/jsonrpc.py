"""JSON-RPC 2.0 messages as the proxy sees them: parse once, classify, build error answers."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import orjson

# JSON-RPC 2.0 and MCP codes (-32020..-32099 belong to the MCP spec: never invent one there).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020  # MCP 2026-07-28: an Mcp-* header disagrees with the body
# Cerberus' own codes, in the implementation range -32000..-32019.
GATEWAY_REFUSED = -32000  # unauthenticated, forbidden origin, foreign or unknown session
BLOCKED = -32001  # a guardrail blocked or throttled the message
UPSTREAM_TIMEOUT = -32002
UPSTREAM_UNAVAILABLE = -32003

Message = dict[str, Any]


class Kind(StrEnum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


class JsonRpcError(Exception):
    """Input that is not a JSON-RPC message; the proxy answers it with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AmbiguousJson(JsonRpcError):
    """A JSON object that names one member twice. Parsers disagree on which one counts (this
    one keeps the last, others the first or refuse), so the gateway would decide on one
    message and pass on another: a tool name, an argument or an answer's text unchecked."""

    def __init__(self, name: str | None) -> None:
        shown = "a member" if name is None else repr(name[:MAX_NAME_SHOWN])
        super().__init__(INVALID_REQUEST, f"Invalid Request: a JSON object names {shown} twice")


MAX_NAME_SHOWN = 64


def loads(data: bytes | str) -> Any:
    """The JSON value of a message; JsonRpcError when it is not JSON, AmbiguousJson when an
    object in it repeats a name."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JsonRpcError(PARSE_ERROR, f"Parse error: {exc.msg}") from None
    repeated = repeated_name(data, value)
    if repeated is not None:
        raise AmbiguousJson(repeated or None)
    return value


def repeated_name(data: bytes | str, value: Any) -> str | None:
    """A name some object of `data` repeats (`value` is orjson's reading of `data`), "" when
    the standard library cannot read `data` to tell which, None when no object repeats one."""
    if not (type(value) is dict or type(value) is list) or not _may_repeat_a_name(data, value):
        return None
    # The rare slow path: read again by the standard library, which hands over each
    # object's members in order.
    try:
        json.loads(data, object_pairs_hook=_unique_members)
    except _Repeated as repeated:
        return repeated.name
    except (ValueError, RecursionError):
        return ""  # orjson read it and this parser did not: which reading counts is unclear
    return None


def _may_repeat_a_name(data: bytes | str, value: Any) -> bool:
    """False when no object in `data` can repeat a name, found at C speed: the colons in
    `data` are one per object member plus those inside its strings; re-serialised, the
    value has one per member it kept plus the same in its strings (orjson escapes none).
    Fewer colons in the value means a member was dropped. An escaped colon (\\u003a) is a
    colon in the value's strings but not in `data`'s bytes, so each one is counted too."""
    if isinstance(data, str):
        written = data.count(":") + data.count("\\u003a") + data.count("\\u003A")
    else:
        written = data.count(b":") + data.count(b"\\u003a") + data.count(b"\\u003A")
    return written > orjson.dumps(value).count(b":")


class _Repeated(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _unique_members(pairs: list[tuple[str, Any]]) -> None:
    names: set[str] = set()
    for name, _ in pairs:
        if name in names:
            raise _Repeated(name)
        names.add(name)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def parse_body(body: bytes) -> Message | list[Message]:
    """One message or a batch (an array, only legal in 2025-03-26), each one checked."""
    value = loads(body)
    if isinstance(value, list):
        if not value:
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: empty batch")
        for item in value:
            kind_of(item)
        return value
    kind_of(value)
    return value  # type: ignore[no-any-return]


def kind_of(message: Any) -> Kind:
    """Classify one message, raising -32600 when it is not JSON-RPC 2.0."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
    method = message.get("method")
    if method is not None:
        if not isinstance(method, str) or not method:
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: method must be a string")
        if "result" in message or "error" in message:
            # Read here as a request and by the SDKs as the answer beside it (they take the
            # request shape only with object params): an upstream's tools/list answer with
            # `"method": "ping", "params": []` went through unfiltered and unpinned.
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: both a request and a response")
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            # MCP's params are always an object; positional ones no SDK reads as a request.
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: params must be an object")
        if "id" not in message:
            return Kind.NOTIFICATION
        _check_id(message["id"])
        return Kind.REQUEST
    if "result" in message or "error" in message:
        if "id" not in message:
            raise JsonRpcError(INVALID_REQUEST, "Invalid Request: a response needs an id")
        return Kind.RESPONSE
    raise JsonRpcError(INVALID_REQUEST, "Invalid Request: neither a request nor a response")


def _check_id(value: Any) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: id must be a string or a number")


def error(request_id: Any, code: int, message: str, data: dict[str, Any] | None = None) -> Message:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def error_bytes(
    request_id: Any, code: int, message: str, data: dict[str, Any] | None = None
) -> bytes:
    return orjson.dumps(error(request_id, code, message, data))


def params_of(message: Message) -> dict[str, Any]:
    params = message.get("params")
    return params if isinstance(params, dict) else {}


def tool_name_of(method: str | None, params: dict[str, Any]) -> str | None:
    """The tool a message is about (tools/call), else None."""
    if method == "tools/call":
        name = params.get("name")
        return name if isinstance(name, str) else None
    return None


# Listing method -> the result field holding its list (RBAC filters these lists, and an
# answer whose request is not known is recognised as a listing by that field).
LISTING_FIELDS = {
    "tools/list": "tools",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
    "prompts/list": "prompts",
}


def listing_methods_of(message: Message) -> tuple[str, ...]:
    """The listing methods an answer whose request is not known may answer, judged by its
    shape: each listing field its result holds as a list, in `LISTING_FIELDS` order.

    An answer resumed after its request was forgotten (15 minutes on, or lost by the shared
    cache) is decided without it; a listing must still be filtered by RBAC and its tools
    checked against their pins. A result with one of the listing fields as a list is taken
    for that listing, even beside a `content`: an upstream that added one, and answered with
    an id its request's does not match, had a changed tool list pass unpinned. A result with
    several is decided as each of them: a client reads the one its request asked for, which
    the gateway cannot tell, and `prompts` beside an empty `tools` passed unfiltered.
    """
    result = message.get("result")
    if not isinstance(result, dict):
        return ()
    return tuple(
        method for method, field in LISTING_FIELDS.items() if isinstance(result.get(field), list)
    )
