"""Which upstream MCP URLs a workspace may point at, and why the others are refused.

The gateway makes requests to this URL on behalf of agents, so a careless or hostile value
could reach the cloud metadata service or other internal addresses (server-side request
forgery). Checked without DNS resolution: the scheme, literal link-local and metadata
addresses, and, when UPSTREAM_ALLOWED_HOSTS is set, the host against that allow-list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")
METADATA_HOSTNAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, incl. 169.254.169.254
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
)


def check_upstream_url(url: str, allowed_hosts: Sequence[str] = ()) -> str:
    """The URL unchanged, or ValueError saying why it may not be used."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise ValueError("must use http or https")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials; configure them elsewhere")
    _refuse_metadata(host)
    if allowed_hosts and not _host_allowed(host, port, allowed_hosts):
        raise ValueError(f"host {host} is not in UPSTREAM_ALLOWED_HOSTS")
    return url.strip()


def _refuse_metadata(host: str) -> None:
    if host in METADATA_HOSTNAMES:
        raise ValueError(f"host {host} is a cloud metadata service")
    address = _literal_address(host)
    if address is None:
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network in METADATA_ADDRESSES:
        if address in network:
            raise ValueError(f"address {address} is link-local or a cloud metadata service")


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A literal IP, also forms like `2852039166` or `0xa9.0xfe.0xa9.0xfe` that resolvers take."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return _legacy_ipv4(host)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    # inet_aton accepts 1-4 parts in decimal, octal (0...) or hex (0x...); so do HTTP clients.
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part[2:], 16))
            elif part.startswith("0") and len(part) > 1:
                numbers.append(int(part[1:], 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def _host_allowed(host: str, port: int | None, allowed_hosts: Sequence[str]) -> bool:
    """Entries are `host`, `host:port`, `[v6]`, `[v6]:port` or `*.domain` (any subdomain)."""
    for entry in allowed_hosts:
        pattern_host, pattern_port = _split_entry(entry.strip().lower())
        if pattern_port and str(port) != pattern_port:
            continue
        if pattern_host.startswith("*."):
            if host.endswith(pattern_host[1:]):
                return True
        elif host == pattern_host:
            return True
    return False


def _split_entry(entry: str) -> tuple[str, str]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = entry.partition(":")
    return host, port
