"""Resource URIs normalised as a server reads them; the quick check agrees with the full one."""

from __future__ import annotations

import random
import time

import pytest

from cerberus.guardrails import resource_uris
from cerberus.guardrails.resource_uris import patterns, readings


def test_an_escaped_separator_reads_both_as_a_name_and_as_a_separator() -> None:
    assert readings("gitlab://projects/group%2Fproj/f") == (
        "gitlab://projects/group%2Fproj/f",
        "gitlab://projects/group/proj/f",
    )
    # Read as a separator, the dot segments climb: that reading is the one RBAC refuses.
    assert readings("file:///public%2F..%2Fsecret") == (
        "file:///public%2F..%2Fsecret",
        "file:///secret",
    )
    assert readings("file:///public/a%5C..%5C..%5Csecret")[-1] == "file:///secret"
    assert readings("file:///a%00b%2Fc") == ()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///public/a.txt", ("file:///public/a.txt",)),
        ("file:///public/../secret/key.pem", ("file:///secret/key.pem",)),
        ("file:///a/b/./c/..", ("file:///a/b/",)),
        ("file:///..", ("file:///",)),
        ("FILE://LocalHost/%65tc/passwd", ("file:///etc/passwd",)),
        ("file:/etc/passwd", ("file:///etc/passwd",)),
        ("file:////etc/passwd", ("file:////etc/passwd", "file:///etc/passwd")),
        ("file:///tmp//../etc/passwd", ("file:///tmp/etc/passwd", "file:///etc/passwd")),
        ("file://server/etc/passwd", ("file://server/etc/passwd", "file:///etc/passwd")),
        (
            "HTTPS://User@Example.COM/A/%7e/b%2c?q=%2f#F",
            (
                "https://User@example.com/A/~/b%2C?q=%2F#F",
                "https://User@example.com/A/~/b,?q=%2F#F",
            ),
        ),
        ("test://customers/{customer_id}", ("test://customers/{customer_id}",)),
        ("urn:isbn:0451450523", ("urn:isbn:0451450523",)),
        ("x:a/b", ("x:a/b",)),
    ],
)
def test_a_uri_reads_as_its_normal_forms(uri: str, expected: tuple[str, ...]) -> None:
    assert readings(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "file:///public/%2e%2e/secret",
        "file:///public/.%2E/secret",
        "file:///public/%2e/secret",
        "file:///public\\..\\secret",
        "file:///public/a%00.txt",
        "file:///public/a%zz",
        "file:///public/a%2",
        "file:///public/a\n",
        " file:///public/a",
        "file:///public/a ",
        "file:///public/a?/../../secret",
        "file:///public/a#/%2e%2e/secret",
        "file:public/a",
        "x:../secret",
        "x:a/../b",
        "%66ile:///etc/passwd",
        "x:/..//host/p",
    ],
)
def test_an_ambiguous_uri_has_no_reading(uri: str) -> None:
    assert readings(uri) == ()


def test_patterns_are_normalised_and_ambiguous_ones_kept_as_written() -> None:
    assert patterns("FILE://localhost/%65tc/*") == ("file:///etc/*",)
    assert patterns("Secret://Vault/*") == ("secret://vault/*",)
    assert patterns("*") == ("*",)
    # An escaped separator: a name's character to some servers, a separator to others.
    assert patterns("file:///a%2Fb/*") == ("file:///a%2Fb/*", "file:///a/b/*")
    # Both spellings of a character a server decodes alike.
    assert patterns("file:///srv/my%20docs/*") == (
        "file:///srv/my%20docs/*",
        "file:///srv/my docs/*",
    )
    assert patterns("file:///srv/my docs/*") == ("file:///srv/my docs/*", "file:///srv/my%20docs/*")


PIECES = [
    *("file:", "FILE:", "x:", "s3:", "a+b:", "file://", "x://", "HOST", "host", "localhost"),
    *("LocalHost", "//", "/", "/", ".", "..", "%2e", "%2E", "%2f", "%41", "%7e", "%", "%zz"),
    *("a", "A", "?", "#", "@", ":", " ", "\t", "\\", "é", "É", "\u00a0", "{", "}", "*", "[", "]"),
]


def test_the_quick_check_never_passes_a_uri_that_normalising_would_change() -> None:
    rng = random.Random(2026)
    plain = 0
    for _ in range(30_000):
        uri = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 9)))
        slow = resource_uris._all_readings(uri)
        if resource_uris.is_plain(uri):
            plain += 1
            assert slow == (uri,), uri
        assert readings(uri) == slow
        for reading in slow:
            # A normal form is read as itself (so patterns and URIs meet in the same form).
            assert reading in resource_uris._all_readings(reading), (uri, reading)
    assert plain > 300


@pytest.mark.parametrize(
    "uri",
    [
        "x:" + "a" * 200_000 + "%",
        "x:" + "/a" * 100_000 + "/.",
        "x://" + "a" * 200_000 + "A",
        "a" * 200_000,
        "file:///" + "%2e%2e/" * 30_000,
        "file:///" + "a/../" * 30_000,
    ],
)
def test_normalising_stays_fast_on_hostile_uris(uri: str) -> None:
    started = time.perf_counter()
    readings(uri)
    patterns(uri)
    assert time.perf_counter() - started < 0.5
