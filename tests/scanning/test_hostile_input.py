"""Adversarial megabyte inputs: every detector and shape check completes (linear-time engine).

No timing thresholds: a catastrophically backtracking pattern would not finish within the
run (128 KB of digits and dots took Python's `re` 30 s on a common email pattern).
"""

from __future__ import annotations

import pytest

from cerberus.scanning import scan_text
from cerberus.scanning.shape import code_chars, table_rows

MEGABYTE = 1 << 20


def repeat(unit: str) -> str:
    return (unit * (MEGABYTE // len(unit) + 1))[:MEGABYTE]


HOSTILE = {
    "digits": repeat("1"),
    "dots": repeat("."),
    "at signs": repeat("@"),
    "spaces": repeat(" "),
    "nested brackets": "[" * (MEGABYTE // 2) + "]" * (MEGABYTE // 2),
    "nested braces": repeat('{"a":'),
    "digits, dots and dashes without @": repeat("1.-"),
    "digits and spaces": repeat("1 "),
    "dashed digit groups": repeat("12-"),
    "local part, no domain": repeat("a.") + "@",
    "almost emails": repeat("a@b."),
    "colons": repeat("a:"),
    "hex and double colons": repeat("ab::"),
    "dotted quads run together": repeat("1.1.1.1."),
    "numbers no octet can be": repeat("999."),
    "colons only": repeat(":"),
    "card-like groups of four": repeat("5555 "),
    "plus signs and digits": repeat("+1 "),
    "private key headers without end": repeat("-----BEGIN PRIVATE KEY-----\n"),
    "comment openers": repeat("<!-- "),
    "instruction words": repeat("ignore all previous "),
    "url user parts": repeat("x://a:b"),
    "secret names": repeat("api_key="),
    "zero-width characters": repeat("\u200b"),
    "unicode tags": repeat("\U000e0041"),
    "semicolon lines": repeat(";\n"),
    "alternating csv": repeat("a;\nb\n"),
    # Addresses past ASCII: the pattern takes any such character, its validator narrows.
    "letters past ascii around at signs": repeat("ü@ü."),
    "dashes between short addresses": repeat("a@b.cc—"),
    "a long run of dashes, then an address": "—" * (MEGABYTE // 3 - 10) + "zoë@exemple.fr",
    "a domain of dashes": "a@" + "—" * (MEGABYTE // 3 - 10) + ".рф",
    "phone words before national numbers and dates": repeat("tel 01 23 45 67 89 01.02.2024 "),
    "password names without values": repeat("db_password= "),
    "yaml password lines": repeat("password: x\n"),
    "real PII, densely": repeat("jane@example.org 415-555-0132 4111 1111 1111 1111 10.0.0.1 "),
    # Key blocks in JSON source: escaped line ends, backslash runs, escaped slashes.
    "escaped private key headers without end": repeat("-----BEGIN PRIVATE KEY-----\\n"),
    "an escaped key body without end": "-----BEGIN PRIVATE KEY-----" + repeat("\\nQx9/"),
    "backslashes after a key header": "-----BEGIN PRIVATE KEY-----" + repeat("\\"),
    "escaped headers in a key": "-----BEGIN PRIVATE KEY-----" + repeat("\\nA-b: c\\r\\n"),
    "url passwords with no user": repeat("x://:b"),
    # A mailbox's punctuation: one long local part, and many short ones.
    "mailbox punctuation, then an address": repeat("a'=&?/!#{|}~") + "@example.com",
    "addresses in query strings": repeat("a=o'b@c.io&"),
    "quoted addresses": repeat("'a@b.io'"),
    "possessives after send": repeat("send the user's "),
    "file words after read": repeat("read the file "),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_scanning_a_hostile_megabyte_completes(name: str) -> None:
    hits = scan_text(HOSTILE[name])
    size = len(HOSTILE[name].encode())  # once: per hit, it took 80 s for 150,000 hits
    assert all(0 <= hit.start < hit.end <= size for hit in hits)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_shape_checks_on_a_hostile_megabyte_complete(name: str) -> None:
    assert code_chars(HOSTILE[name]) >= 0
    assert table_rows(HOSTILE[name]) >= 0


def test_dense_real_pii_is_all_found() -> None:
    hits = scan_text(repeat("jane@example.org 415-555-0132 ")[: 30 * 1000])
    assert {hit.detector for hit in hits} == {"email", "phone"}
    assert len(hits) == 2000
