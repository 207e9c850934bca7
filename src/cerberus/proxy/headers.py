"""Which headers cross the proxy in each direction, and the checks made on them.

Every `Mcp-*` header, `Accept`, `Content-Type` and `Last-Event-ID` pass unchanged (a proxy
that drops them breaks sessions and the 2026-07-28 header checks); the client's `Host`,
`Origin`, cookies and, unless configured, `Authorization` stay here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cerberus.header_encoding import decode_header_value
from cerberus.jsonrpc import Message, params_of
from cerberus.media_types import charsets
from cerberus.settings import Settings

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never sent upstream: the gateway's own authority, credentials and bookkeeping replace them.
_NOT_UPSTREAM = HOP_BY_HOP | {
    "host",
    "origin",
    "cookie",
    "content-length",
    "accept-encoding",
    # What a client says about where it connects from: only the gateway's X-Forwarded-For
    # (client_address.py) tells the upstream that.
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-gateway-request-id",
    "x-request-id",
}
# Never sent back to the client: the gateway frames and encodes its own answer.
_NOT_DOWNSTREAM = HOP_BY_HOP | {
    "content-length",
    "content-encoding",
    "date",
    "server",
    "set-cookie",
    "x-request-id",
}
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
# Requests naming these methods carry the target in Mcp-Name (2026-07-28, Standard Headers).
NAMED_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
FIRST_MODERN_VERSION = "2026-07-28"
META_VERSION = "io.modelcontextprotocol/protocolVersion"


def upstream_headers(
    incoming: Iterable[tuple[str, str]],
    *,
    settings: Settings,
    request_id: str,
    client_ip: str | None,
) -> dict[str, str]:
    headers: dict[str, str] = {}
    connection_tokens: set[str] = set()
    items = list(incoming)
    for name, value in items:
        if name == "connection":
            connection_tokens.update(token.strip().lower() for token in value.split(","))
    for name, value in items:
        if name in _NOT_UPSTREAM or name in connection_tokens:
            continue
        if name == "authorization" and not settings.FORWARD_CLIENT_AUTHORIZATION:
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    # The client's address as the gateway trusts it (client_address.py): the chain a client
    # sent could name anyone, and an upstream that believed it was told a forged address.
    if client_ip:
        headers["x-forwarded-for"] = client_ip
    headers["x-gateway-request-id"] = request_id
    return headers


def downstream_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    lowered = ((name.lower(), value) for name, value in upstream)
    return [(name, value) for name, value in lowered if name not in _NOT_DOWNSTREAM]


def origin_allowed(origin: str | None, settings: Settings) -> bool:
    """MCP servers must validate Origin (DNS rebinding); Cerberus is the server clients see."""
    if origin is None:
        return True
    allowed = settings.ALLOWED_ORIGINS
    if "*" in allowed or origin in allowed:
        return True
    if allowed:
        return False
    host = urlsplit(origin).hostname or ""
    return host in LOOPBACK_HOSTS or f"[{host}]" in LOOPBACK_HOSTS


def is_modern(headers: Mapping[str, str]) -> bool:
    version = headers.get("mcp-protocol-version")
    return version is not None and version >= FIRST_MODERN_VERSION


def header_mismatch(headers: Mapping[str, str], message: Message) -> str | None:
    """Why the mirrored headers disagree with the body (2026-07-28), or None.

    Checked before any policy runs, so a header can never carry a different call past a
    guardrail that reads the body.
    """
    method = message.get("method")
    if not isinstance(method, str) or not is_modern(headers):
        return None
    if decode_header_value(headers.get("mcp-method", "")) != method:
        return "Mcp-Method header does not match the request body's method"
    params = params_of(message)
    meta = params.get("_meta")
    if (
        isinstance(meta, dict)
        and META_VERSION in meta
        and meta[META_VERSION] != headers.get("mcp-protocol-version")
    ):
        return "MCP-Protocol-Version header does not match params._meta"
    field = NAMED_METHODS.get(method)
    if field is not None:
        name = headers.get("mcp-name")
        if name is None or decode_header_value(name) != params.get(field):
            return f"Mcp-Name header does not match the request body's params.{field}"
    return None


def mirrored_field_changed(headers: Mapping[str, str], original: Message, new: Message) -> bool:
    """True when a guardrail changed something a 2026-07-28 header mirrors.

    The upstream refuses header/body mismatches, so such a rewrite is refused here instead.
    Mcp-Param-* headers mirror tool arguments named by the tool's schema; without the schema,
    any changed top-level argument whose old value a Mcp-Param-* header carries counts.
    """
    if not is_modern(headers):
        return False
    if original.get("method") != new.get("method"):
        return True
    old_params, new_params = params_of(original), params_of(new)
    field = NAMED_METHODS.get(str(original.get("method")))
    if field is not None and old_params.get(field) != new_params.get(field):
        return True
    old_meta, new_meta = old_params.get("_meta"), new_params.get("_meta")
    if isinstance(old_meta, dict) and (
        not isinstance(new_meta, dict) or old_meta.get(META_VERSION) != new_meta.get(META_VERSION)
    ):
        return True
    mirrored = {
        decode_header_value(value)
        for name, value in headers.items()
        if name.startswith("mcp-param-")
    }
    if not mirrored:
        return False
    old_args, new_args = _arguments(old_params), _arguments(new_params)
    return any(
        _header_text(value) in mirrored and new_args.get(key) != value
        for key, value in old_args.items()
    )


def _arguments(params: dict[str, Any]) -> dict[str, Any]:
    arguments = params.get("arguments")
    return arguments if isinstance(arguments, dict) else {}


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Charsets in which bytes below 0x80 are the ASCII characters, as in UTF-8: a body of such
# bytes is one text whichever of them a peer decodes it by (Java's and older HTTP clients
# label bodies ISO-8859-1 by default). UTF-7 is not one: `+AEA-` is an `@` there.
ASCII_SUPERSETS = frozenset(
    {
        "us-ascii",
        "ascii",
        "iso-8859-1",
        "iso8859-1",
        "latin1",
        "latin-1",
        "l1",
        "windows-1252",
        "cp1252",
        "iso-8859-15",
    }
)


def foreign_charset(content_type: str, body: bytes | None = None) -> str | None:
    """The charset a Content-Type names when it is not UTF-8, else None; given the `body`,
    a charset that reads an ASCII body as UTF-8 does is no foreign one.

    The gateway reads every body as UTF-8, as JSON requires; a peer that decodes by the
    header instead (the TypeScript SDK's server transport does, through iconv-lite) would
    read another text in the same bytes: in UTF-7, `+AEA-` is an `@` and `+ACI-` a quote.
    Every charset parameter counts, since parsers differ on which of several they keep."""
    if ";" not in content_type:
        return None
    for written in charsets(content_type):
        charset = written.lower()
        if charset in ("utf-8", "utf8"):
            continue
        if body is None or charset not in ASCII_SUPERSETS or not body.isascii():
            return charset or "(empty)"
    return None
