"""Which upstream URLs a workspace may use; every refusal says why."""

from __future__ import annotations

import pytest

from cerberus.tenancy.upstream_urls import check_upstream_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/mcp",
        "https://mcp.example.com/mcp",
        "https://10.0.0.5/mcp",
        "http://[::1]:9000/mcp",
        "http://upstream.internal:8000",
    ],
)
def test_ordinary_http_and_https_urls_are_accepted(url: str) -> None:
    assert check_upstream_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/mcp", "must use http or https"),
        ("file:///etc/passwd", "must use http or https"),
        ("javascript:alert(1)", "must use http or https"),
        ("http:///mcp", "must name a host"),
        ("http://169.254.169.254/latest/meta-data", "link-local or a cloud metadata"),
        ("http://169.254.10.1/", "link-local or a cloud metadata"),
        ("http://[fd00:ec2::254]/", "link-local or a cloud metadata"),
        ("http://[fe80::1]/", "link-local or a cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local or a cloud metadata"),
        ("http://2852039166/", "link-local or a cloud metadata"),
        ("http://0xa9.0xfe.0xa9.0xfe/", "link-local or a cloud metadata"),
        ("http://0251.0376.0251.0376/", "link-local or a cloud metadata"),
        ("http://169.254.43518/", "link-local or a cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://user:secret@example.com/mcp", "must not contain credentials"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_unsafe_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_upstream_url(url)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://mcp.example.com/mcp", ["mcp.example.com"]),
        ("https://a.tools.example.com/", ["*.tools.example.com"]),
        ("http://127.0.0.1:8080/", ["127.0.0.1:8080"]),
        ("http://[::1]:9000/", ["[::1]:9000"]),
        ("https://MCP.Example.com/", ["mcp.example.com"]),
    ],
)
def test_allow_list_admits_listed_hosts(url: str, allowed: list[str]) -> None:
    assert check_upstream_url(url, allowed) == url


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://evil.example.net/", ["mcp.example.com"]),
        ("https://tools.example.com.evil.net/", ["*.tools.example.com"]),
        ("http://127.0.0.1:9090/", ["127.0.0.1:8080"]),
        ("https://notmcp.example.com/", ["mcp.example.com"]),
    ],
)
def test_allow_list_refuses_other_hosts(url: str, allowed: list[str]) -> None:
    with pytest.raises(ValueError, match="not in UPSTREAM_ALLOWED_HOSTS"):
        check_upstream_url(url, allowed)
