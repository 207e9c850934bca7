"""The client's address behind load balancers that append to X-Forwarded-For.

Each proxy appends the address it was reached from, so only the last entries, one per proxy
in front of the gateway, were written by someone the gateway trusts; anything further left
is what the client sent. uvicorn's `forwarded_allow_ips="*"` took the leftmost entry: a
client could name any address, and the change history recorded it as the admin's.
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope


def trust_forwarded(scope: Scope, hops: int) -> None:
    """Set an HTTP request's client from the entry `hops` places from the right of
    X-Forwarded-For (and its scheme from X-Forwarded-Proto), where `hops` proxies that each
    append to it stand in front of the gateway (TRUSTED_PROXY_HOPS, at least 1)."""
    chain: list[str] = []
    proto = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            chain += value.decode("latin-1").split(",")
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
    # Fewer entries than proxies: the request did not come through them all (a health
    # check inside the network); its own peer is the client.
    if len(chain) < hops:
        return
    host = chain[-hops].strip()
    if _is_address(host):  # else the proxies are fewer than set, or one wrote nonsense
        scope["client"] = (host, 0)
    if proto in ("http", "https"):
        scope["scheme"] = proto


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
