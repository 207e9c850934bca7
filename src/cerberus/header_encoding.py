"""The 2026-07-28 encoding of non-ASCII MCP header values, without importing the MCP SDK.

The proxy (checking that headers mirror the body) and the redactor (refusing to rewrite a
mirrored argument) both decode header values; the SDK has the same function, but importing
it costs ~25 MiB and a slower start in the gateway process, which never needs the rest of it.
"""

from __future__ import annotations

import base64
import binascii

_PREFIX = "=?base64?"
_SUFFIX = "?="


def decode_header_value(value: str) -> str:
    """Undo the `=?base64?...?=` encoding 2026-07-28 uses for non-ASCII header values.

    A malformed sentinel is returned verbatim: it then matches no body value by accident.
    """
    if value.startswith(_PREFIX) and value.endswith(_SUFFIX):
        try:
            return base64.b64decode(value[len(_PREFIX) : -len(_SUFFIX)], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return value
    return value
