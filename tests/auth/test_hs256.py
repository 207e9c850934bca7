"""The gateway's HS256 tokens against PyJWT, an independent implementation, and every way a
token can be malformed, forged or out of date."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time

import jwt
import pytest

from cerberus.auth import hs256

KEY = "a-test-signing-key-of-enough-length-0123"
REQUIRED = ("sub", "exp", "iat")


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"sub": "u1", "org": None, "iat": now, "exp": now + 600}
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(header: dict[str, object], claims: dict[str, object], key: str = KEY) -> str:
    """A token with any header, signed with HMAC-SHA256 whatever the header says."""
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64(signature)}"


def test_pyjwt_reads_our_tokens_and_we_read_its() -> None:
    claims = _claims(role="admin", n=1.5)
    assert jwt.decode(hs256.encode(claims, KEY), KEY, algorithms=["HS256"]) == claims
    theirs = jwt.encode(claims, KEY, algorithm="HS256")
    assert hs256.decode(theirs, KEY, required=REQUIRED) == claims


def test_an_expired_token_says_so() -> None:
    token = hs256.encode(_claims(iat=int(time.time()) - 100, exp=int(time.time()) - 1), KEY)
    with pytest.raises(hs256.ExpiredToken):
        hs256.decode(token, KEY)


def _forgeries() -> dict[str, str]:
    good = hs256.encode(_claims(), KEY)
    header, payload, signature = good.split(".")
    last = signature[-1]
    # The signature's 32 bytes leave 2 unused bits in its last character: set one.
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = sibling[sibling.index(last) ^ 1]
    return {
        "alg none": jwt.encode(_claims(), None, algorithm="none"),
        "alg none, signed anyway": _signed({"alg": "none"}, _claims()),
        "HS512": jwt.encode(_claims(), KEY + "-" * 40, algorithm="HS512"),
        "critical extension": _signed({"alg": "HS256", "crit": ["x"], "x": 1}, _claims()),
        "tampered claims": f"{header}.{_b64(json.dumps(_claims(sub='root')).encode())}.{signature}",
        "another key": hs256.encode(_claims(), "another-key-of-enough-length-0123456789"),
        "signature respelled": f"{header}.{payload}.{signature[:-1]}{respelled}",
        "padding": f"{good}=",
        "two parts": f"{header}.{payload}",
        "four parts": f"{good}.{signature}",
        "not ascii": f"{header}.{payload}.{signature[:-1]}é",
        "header not an object": _signed([], _claims()),  # type: ignore[arg-type]
        "claims not an object": f"{header}.{_b64(b'[1]')}.x",
        "header nested past the parser's limit": f"{_b64(b'[' * 5000)}.{payload}.{signature}",
        "exp not a number": hs256.encode(_claims(exp="9999999999"), KEY),
        "exp a boolean": hs256.encode(_claims(exp=True), KEY),
        "issued in the future": hs256.encode(_claims(iat=int(time.time()) + 3600), KEY),
        "not valid yet": hs256.encode(_claims(nbf=int(time.time()) + 3600), KEY),
        "missing sub": hs256.encode({k: v for k, v in _claims().items() if k != "sub"}, KEY),
        "empty": "",
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize("case", sorted(_forgeries()))
def test_a_bad_token_is_refused(case: str) -> None:
    token = _forgeries()[case]
    with pytest.raises(hs256.InvalidToken) as refused:
        hs256.decode(token, KEY, required=REQUIRED)
    assert not isinstance(refused.value, hs256.ExpiredToken)


def test_reading_a_token_does_not_load_the_cryptography_package() -> None:
    # PyJWT loaded it for algorithms never used: 8.7 MiB of every admin-serving process.
    code = (
        "import sys; from cerberus.auth import hs256; "
        "hs256.decode(hs256.encode({'sub': 'u'}, 'k' * 40), 'k' * 40, required=['sub']); "
        "print(sorted({'cryptography', 'jwt'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
