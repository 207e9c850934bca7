"""The client's address is the entry the trusted load balancers appended, never one the
client wrote (the change history records it for every admin change)."""

from __future__ import annotations

from typing import Any

import pytest

from cerberus.client_address import trust_forwarded


def scope(*headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "client": ("10.1.2.3", 5123),
        "scheme": "http",
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }


@pytest.mark.parametrize(
    ("hops", "chain", "client"),
    [
        (1, ["203.0.113.7"], "203.0.113.7"),
        # The client's own entries are further left than what the proxies appended.
        (1, ["6.6.6.6, 203.0.113.7"], "203.0.113.7"),
        (1, ["6.6.6.6", "203.0.113.7"], "203.0.113.7"),  # one header each
        (2, ["6.6.6.6, 203.0.113.7 , 10.0.0.5"], "203.0.113.7"),
        # Fewer entries than proxies: not through them all; the peer is the client.
        (2, ["203.0.113.7"], "10.1.2.3"),
        (1, [], "10.1.2.3"),
        (1, [" "], "10.1.2.3"),
        # Not an address (more hops set than proxies, or a proxy that writes names): the
        # peer, not a string that would fill the change history's column.
        (1, ["unknown"], "10.1.2.3"),
        (1, ["6.6.6.6, " + "9" * 80], "10.1.2.3"),
        (1, ["2001:db8::7"], "2001:db8::7"),
    ],
)
def test_the_client_is_the_entry_the_last_trusted_proxy_saw(
    hops: int, chain: list[str], client: str
) -> None:
    request = scope(*[("x-forwarded-for", value) for value in chain])
    trust_forwarded(request, hops)
    assert request["client"][0] == client


def test_the_scheme_is_the_one_the_proxy_set() -> None:
    request = scope(("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"))
    trust_forwarded(request, 1)
    assert request["scheme"] == "https"
    odd = scope(("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "gopher"))
    trust_forwarded(odd, 1)
    assert odd["scheme"] == "http"
