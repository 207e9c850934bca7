"""Agent API keys: how they are made, hashed and shown (the plain key is never stored)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_RANDOM_BYTES = 32
DISPLAY_CHARS = 4


@dataclass(frozen=True)
class NewKey:
    plain: str
    hash: str
    display_prefix: str


def generate_key(prefix: str) -> NewKey:
    """`prefix` + 32 random bytes, URL-safe; only its SHA-256 and a short prefix are kept."""
    plain = prefix + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    return NewKey(plain=plain, hash=hash_key(plain), display_prefix=display_prefix(plain, prefix))


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def display_prefix(plain: str, prefix: str) -> str:
    """What admins see to recognise a key, e.g. `sk-AbCd…`."""
    return f"{plain[: len(prefix) + DISPLAY_CHARS]}…"
