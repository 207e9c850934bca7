"""JSON Web Tokens signed with HMAC-SHA256 (RFC 7515 compact form, RFC 7519 claims).

The people's tokens use this one algorithm. PyJWT, which made and read them before, imports
the `cryptography` package for the algorithms it also offers: 8.7 MiB of every process that
served one authenticated admin request (docs/benchmarks.md). Reading a token refuses any
other algorithm (`none` included) and any critical header extension, compares signatures in
constant time, and accepts only well-formed base64url, so that one token has one spelling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from typing import Any

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(Exception):
    """Not a token this key signed, or one whose claims do not hold now."""


class ExpiredToken(InvalidToken):
    """Signed with this key, but its `exp` has passed."""


def encode(claims: dict[str, Any], key: str) -> str:
    payload = _encoded(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{_HEADER}.{payload}"
    return f"{signed}.{_encoded(_signature(signed, key))}"


def decode(token: str, key: str, *, required: Sequence[str] = ()) -> dict[str, Any]:
    """The claims of a token this key signed; InvalidToken (or ExpiredToken) otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_BASE64URL.fullmatch(part) for part in parts):
        raise InvalidToken("not a compact JWS")
    header_part, payload_part, signature_part = parts
    header = _json_object(header_part)
    if header.get("alg") != "HS256":
        raise InvalidToken("algorithm is not HS256")
    if "crit" in header:
        raise InvalidToken("unsupported critical header")
    if not hmac.compare_digest(
        _decoded(signature_part), _signature(f"{header_part}.{payload_part}", key)
    ):
        raise InvalidToken("signature does not match")
    claims = _json_object(payload_part)
    missing = [name for name in required if name not in claims]
    if missing:
        raise InvalidToken(f"missing claim {missing[0]!r}")
    _check_times(claims, time.time())
    return claims


def _check_times(claims: dict[str, Any], now: float) -> None:
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_number(claims[name]):
            raise InvalidToken(f"claim {name!r} is not a number")
    if "exp" in claims and claims["exp"] <= now:
        raise ExpiredToken("token expired")
    if "iat" in claims and claims["iat"] > now:
        raise InvalidToken("issued in the future")
    if "nbf" in claims and claims["nbf"] > now:
        raise InvalidToken("not valid yet")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_object(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_decoded(part))
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the limit
        raise InvalidToken("not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("not a JSON object")
    return value


def _signature(signed: str, key: str) -> bytes:
    return hmac.new(key.encode(), signed.encode("ascii"), hashlib.sha256).digest()


def _encoded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decoded(part: str) -> bytes:
    # A length of 4n+1 is no base64 at all; otherwise the padding is restored.
    if len(part) % 4 == 1:
        raise InvalidToken("not base64url")
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if _encoded(data) != part:  # unused low bits set: a second spelling of the same bytes
        raise InvalidToken("not canonical base64url")
    return data
