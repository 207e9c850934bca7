"""Shapes that used to offer an RE2 candidate every few bytes, each then rejected in Python
(docs/benchmarks.md, "Scanning"), offer almost none now; values next to them are still found.

Candidates are counted, not timed: a count is what the validators' cost is proportional to.
"""

from __future__ import annotations

import pytest
import re2

from cerberus.scanning import RULES, scanner

MEGABYTE = 1 << 20


def repeat(unit: str, size: int = MEGABYTE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def candidates(detector: str, text: str) -> int:
    """Matches the engine would hand to the detector's validators (it resumes after each)."""
    data = text.encode()
    return sum(sum(1 for _ in re2.compile(rule.pattern).finditer(data)) for rule in RULES[detector])


def found(detector: str, text: str) -> list[str]:
    data = text.encode()
    return [data[hit.start : hit.end].decode() for hit in scanner([detector]).scan(data)]


@pytest.mark.parametrize(
    ("detector", "unit"),
    [
        ("ip_address", "1."),  # a dotted run is one candidate, not one per quad
        ("ip_address", "1.1.1.1."),
        ("ip_address", "999.999.999.999 "),  # numbers no octet can be
        ("ip_address", "1.2.3 "),  # versions and decimals have fewer than four parts
        ("ip_address", "3.14 "),
        ("ip_address", "::"),  # an IPv6 candidate never follows a colon
        ("ip_address", "1::"),
        ("ip_address", "ab:cd:"),
        ("credit_card", "555-"),  # no card grouping starts with three digits
        ("credit_card", "4 "),
        ("credit_card", "12-"),
        ("credit_card", "123 45 6789 "),
    ],
)
def test_a_megabyte_of_a_look_alike_offers_at_most_one_candidate(detector: str, unit: str) -> None:
    assert candidates(detector, repeat(unit)) <= 1


@pytest.mark.parametrize(
    ("detector", "before", "value", "after"),
    [
        ("ip_address", "1.", "10.0.0.1", "1."),
        ("ip_address", "999.", "192.0.2.44", "999."),
        ("ip_address", "::", "2001:db8::1", "::"),
        ("ip_address", "1::", "fe80::1ff:fe23:4567:890a", "1::"),
        ("credit_card", "555-", "4111 1111 1111 1111", "555-"),
        ("credit_card", "4 ", "5500-0000-0000-0004", "4 "),
        ("credit_card", "12 ", "6011111111111117", "12 "),
    ],
)
def test_a_value_between_look_alikes_is_still_found(
    detector: str, before: str, value: str, after: str
) -> None:
    text = repeat(before, 100_000) + " " + value + " " + repeat(after, 100_000)
    assert found(detector, text) == [value]


def test_a_short_number_just_before_a_card_no_longer_hides_it() -> None:
    # The loose pattern took "4 4111 ..." as one candidate, rejected it (a card does not
    # start with a group of one) and resumed after the card.
    assert found("credit_card", "ref 4 4111 1111 1111 1111") == ["4111 1111 1111 1111"]
    assert found("credit_card", "order 12 6011111111111117") == ["6011111111111117"]


def test_every_address_of_a_dense_log_is_found_once() -> None:
    text = repeat("10.0.0.1 ", 90_000)
    assert found("ip_address", text) == ["10.0.0.1"] * 10_000


def test_addresses_run_together_are_not_addresses() -> None:
    assert found("ip_address", "10.0.0.1.10.0.0.1 and 1.2.3.4.5") == []
