"""RBAC decides on a resource URI as a server would read it, and refuses one it cannot read
one way only: a dot segment, an encoding or a host must not carry a URI past a deny."""

from __future__ import annotations

from typing import Any

import pytest

from cerberus.guardrails import CheckContext, Direction, Outcome
from cerberus.guardrails.rbac import Rbac


def read(uri: str, method: str = "resources/read") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": {"uri": uri}}


def outcome(rbac: Rbac, uri: str, method: str = "resources/read") -> Outcome:
    context = CheckContext("org", "ws", "agent", Direction.REQUEST)
    return rbac.check(read(uri, method), context).outcome


PUBLIC_ONLY = Rbac(allowed_resources=["file:///public/*"])
NO_ETC = Rbac(denied_resources=["file:///etc/*"])


@pytest.mark.parametrize(
    "uri",
    [
        "file:///public/../secret/key.pem",
        "file:///public/%2e%2e/secret/key.pem",
        "file:///public/%2E%2E/secret/key.pem",
        "file:///public/.%2e/secret/key.pem",
        "file:///public/a/../../secret/key.pem",
        "file:///public/..",
        "file:///public/%2F..%2Fsecret/key.pem",
        "file:///public/..%5Csecret/key.pem",
        "file:///public\\..\\secret\\key.pem",
        "file:///public/a.txt?/../../secret/key.pem",
        "file:///public/a.txt#/../../secret/key.pem",
        "file:///public/%zz",
        # Escaped separators after `?` are separators to a server decoding the whole string.
        "file:///public/a.txt?%2F..%2F..%2Fsecret%2Fkey.pem",
        "file:///public/a.txt?x=%5C..%5C..%5Csecret",
    ],
)
def test_a_uri_leaving_the_allowed_directory_is_refused(uri: str) -> None:
    assert outcome(PUBLIC_ONLY, uri) is Outcome.BLOCK
    assert outcome(PUBLIC_ONLY, uri, "resources/subscribe") is Outcome.BLOCK


@pytest.mark.parametrize(
    "uri",
    [
        "file:///public/a.txt",
        "file:///public/./a.txt",
        "file:///public/docs/../a.txt",
        "file:///public/%61.txt",
        "file:///public/.hidden/a.txt",
        "file:///public/a%20b.txt",
        "FILE:///public/a.txt",
        "file://localhost/public/a.txt",
        "file://LocalHost/public/a.txt",
        "file:/public/a.txt",
        "file:///public//a.txt",
        # In a query an encoded "/" is data, not a separator.
        "file:///public/a.txt?next=%2Fetc%2Fpasswd",
    ],
)
def test_a_uri_inside_the_allowed_directory_is_allowed_however_it_is_spelled(uri: str) -> None:
    assert outcome(PUBLIC_ONLY, uri) is Outcome.ALLOW


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file:///tmp/../etc/passwd",
        "file:///tmp/%2e%2e/etc/passwd",
        "file://localhost/etc/passwd",
        "file://LOCALHOST/etc/passwd",
        "FILE:///etc/passwd",
        "File:///etc/passwd",
        "file:///%65tc/passwd",
        "file:///%65%74%63/passwd",
        "file:////etc/passwd",
        "file://///etc/passwd",
        "file:///tmp/..//etc/passwd",
        "file:///tmp//..//etc/passwd",
        "file:/etc/passwd",
        "file://server/etc/passwd",  # servers that take the URI's path alone read /etc
        "file:///tmp/x/..%2F..%2Fetc/passwd",
        "file:///tmp\\..\\etc\\passwd",
        "file:///et%00c/passwd",
        "file:///et\tc/passwd",
        " file:///etc/passwd",
        "file:etc/passwd",
    ],
)
def test_no_spelling_of_a_denied_uri_escapes_the_deny(uri: str) -> None:
    assert outcome(NO_ETC, uri) is Outcome.BLOCK


@pytest.mark.parametrize(
    "uri",
    [
        "file:///tmp/a.txt",
        "file:///tmp/x/../a.txt",
        "file:///tmp//a.txt",
        "file:///home/ana/.config/app.toml",
        "file:///etcetera/a.txt",
        "file://server/share/a.txt",
        "file:///tmp/a.txt?q=%2Fetc%2Fpasswd",
        "https://example.com/etc/passwd",
    ],
)
def test_other_uris_still_pass_a_deny_list(uri: str) -> None:
    assert outcome(NO_ETC, uri) is Outcome.ALLOW


def test_patterns_are_read_the_way_uris_are() -> None:
    rbac = Rbac(denied_resources=["FILE://localhost/%65tc/*", "HTTPS://Example.COM/private/*"])
    assert outcome(rbac, "file:///etc/passwd") is Outcome.BLOCK
    assert outcome(rbac, "https://example.com/private/a") is Outcome.BLOCK
    assert outcome(rbac, "https://EXAMPLE.com/public/../private/a") is Outcome.BLOCK
    # Paths stay case-sensitive.
    assert outcome(rbac, "https://example.com/PRIVATE/a") is Outcome.ALLOW


def test_dot_segments_cannot_climb_over_a_custom_schemes_first_name() -> None:
    # To many servers `notes://public/x` is the path `public/x`: `..` climbs over `public`.
    allow = Rbac(allowed_resources=["notes://public/*"])
    assert outcome(allow, "notes://public/a/../b") is Outcome.ALLOW
    assert outcome(allow, "notes://public/../secret/x") is Outcome.BLOCK
    deny = Rbac(denied_resources=["notes://secret/*"])
    assert outcome(deny, "notes://public/../secret/x") is Outcome.BLOCK
    assert outcome(deny, "notes://public/x") is Outcome.ALLOW
    # A host is a host to http: `..` stays below it.
    web = Rbac(allowed_resources=["https://docs.example/*"])
    assert outcome(web, "https://docs.example/a/../b") is Outcome.ALLOW


def test_an_escaped_slash_in_a_name_passes_unless_a_reading_is_refused() -> None:
    # Servers that name things by paths escape their slashes (GitLab's `group%2Fproject`):
    # refused whenever any resource pattern existed, they now pass if both readings do.
    uri = "gitlab://projects/group%2Fproj/README.md"
    assert outcome(NO_ETC, uri) is Outcome.ALLOW
    assert outcome(Rbac(allowed_resources=["gitlab://projects/*"]), uri) is Outcome.ALLOW
    hidden = Rbac(denied_resources=["gitlab://projects/group/proj/*"])
    assert outcome(hidden, uri) is Outcome.BLOCK
    named = Rbac(allowed_resources=["gitlab://projects/group%2Fproj/*"])
    assert outcome(named, uri) is Outcome.ALLOW
    assert outcome(named, "gitlab://projects/group/proj/README.md") is Outcome.ALLOW
    assert outcome(named, "gitlab://projects/other%2Fproj/README.md") is Outcome.BLOCK


def test_a_character_escaped_or_plain_is_one_name() -> None:
    deny = Rbac(denied_resources=["file:///srv/my docs/*", "file:///srv/a%21b/*"])
    for uri in ("file:///srv/my%20docs/x", "file:///srv/my docs/x", "file:///srv/a!b/x"):
        assert outcome(deny, uri) is Outcome.BLOCK, uri
    allow = Rbac(allowed_resources=["file:///srv/my docs/*"])
    for uri in ("file:///srv/my%20docs/x", "file:///srv/my docs/x"):
        assert outcome(allow, uri) is Outcome.ALLOW, uri
    assert outcome(allow, "file:///srv/other/x") is Outcome.BLOCK


def test_a_double_slash_passes_an_allow_list_only_if_both_readings_are_allowed() -> None:
    rbac = Rbac(allowed_resources=["db://main/public/*"])
    assert outcome(rbac, "db://main/public//a") is Outcome.ALLOW
    # A server that keeps the empty segment reads a key outside /public/.
    assert outcome(rbac, "db://main//public/a") is Outcome.BLOCK


def test_an_ambiguous_uri_passes_when_resources_are_not_restricted() -> None:
    rbac = Rbac(denied_tools=["shell"])
    assert outcome(rbac, "file:///public/%2F..%2Fsecret") is Outcome.ALLOW


def test_resource_lists_are_filtered_by_the_uri_a_server_would_read() -> None:
    listing = {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {
            "resources": [
                {"uri": "file:///public/../secret/key.pem"},
                {"uri": "file:///public/a.txt"},
                {"uri": "FILE://localhost/public/b.txt"},
            ]
        },
    }
    context = CheckContext("org", "ws", "agent", Direction.RESPONSE, method="resources/list")
    verdict = PUBLIC_ONLY.check(listing, context)
    assert verdict.message is not None
    assert verdict.message["result"]["resources"] == [
        {"uri": "file:///public/a.txt"},
        {"uri": "FILE://localhost/public/b.txt"},
    ]


def test_tool_names_are_still_matched_exactly() -> None:
    rbac = Rbac(denied_tools=["a/c", "Drop"])
    context = CheckContext("org", "ws", "agent", Direction.REQUEST)
    for name in ("a/b/../c", "a//c", "drop", "a%2Fc"):
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}}
        assert rbac.check(message, context).outcome is Outcome.ALLOW, name
