"""What each PII detector must catch, and the look-alikes it must leave alone."""

from __future__ import annotations

import random

import pytest

from cerberus.scanning import RULES, scanner


def found(detector: str, text: str) -> list[str]:
    data = text.encode()
    return [data[hit.start : hit.end].decode() for hit in scanner([detector]).scan(data)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SSN 078-05-1120 on file", "078-05-1120"),
        ("ssn: 219 09 9999", "219 09 9999"),
        ("Social Security Number: 536224839", "536224839"),
        ("665-12-3456", "665-12-3456"),
    ],
)
def test_ssn_is_found(text: str, expected: str) -> None:
    assert found("ssn", text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "912-34-5678",  # 9xx area (ITIN range)
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "order 536224839 shipped",  # nine digits without SSN context
        "call 1-123-45-6789-0",  # inside a longer dashed number
        "ISBN 978-0-306-40615-7",
    ],
)
def test_ssn_look_alikes_are_left_alone(text: str) -> None:
    assert found("ssn", text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 exp 12/30", "4111 1111 1111 1111"),
        ("5500-0000-0000-0004", "5500-0000-0000-0004"),
        ("amex 378282246310005.", "378282246310005"),
        ("Amex: 3782 822463 10005", "3782 822463 10005"),
        ("6011111111111117", "6011111111111117"),
        ("4222222222222", "4222222222222"),  # 13-digit Visa
        ("4111 1111 1111 1111 2024 receipt", "4111 1111 1111 1111"),
        ("4000 0000 0000 0000 006", "4000 0000 0000 0000 006"),  # 19 digits, 4-4-4-4-3
        ("4000-0000-0000-6", "4000-0000-0000-6"),  # 13 digits, 4-4-4-1
        ("diners 3056 930902 5904", "3056 930902 5904"),  # 4-6-4
        ("4111111111111111 12", "4111111111111111"),  # ungrouped, then other digits
    ],
)
def test_credit_card_is_found(text: str, expected: str) -> None:
    assert found("credit_card", text) == [expected]


def luhn_complete(prefix: str, length: int) -> str:
    """`prefix` padded with zeros to `length` digits, the last one making the Luhn sum 0."""
    body = prefix + "0" * (length - len(prefix) - 1)
    total = sum(
        (2 * int(d) - 9 if 2 * int(d) > 9 else 2 * int(d)) if i % 2 == 0 else int(d)
        for i, d in enumerate(reversed(body))
    )
    return body + str(-total % 10)


@pytest.mark.parametrize("separator", [" ", "-"])
@pytest.mark.parametrize(
    ("prefix", "groups"),
    [
        ("50", [4, 4, 4, 1]),
        ("50", [4, 4, 4, 2]),
        ("50", [4, 4, 4, 3]),
        ("50", [4, 4, 4, 4]),
        ("50", [4, 4, 4, 4, 1]),
        ("50", [4, 4, 4, 4, 2]),
        ("50", [4, 4, 4, 4, 3]),
        ("37", [4, 6, 5]),
        ("36", [4, 6, 4]),
    ],
)
def test_every_card_grouping_is_found_whole(prefix: str, groups: list[int], separator: str) -> None:
    number = luhn_complete(prefix, sum(groups))
    parts, position = [], 0
    for size in groups:
        parts.append(number[position : position + size])
        position += size
    card = separator.join(parts)
    assert found("credit_card", f"paid with {card}.") == [card]
    assert found("credit_card", f"paid with {number}.") == [number]


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails Luhn
        "1234567890123456",  # no card network starts with 1
        "ISBN-13: 9780306406157",
        "created_at: 1710498153123",
        "4111-1111 1111-1111",  # mixed separators
        "41111 11111 11111 1",  # not card grouping
        "txn 12345678901234567890123",  # longer than any card
    ],
)
def test_credit_card_look_alikes_are_left_alone(text: str) -> None:
    assert found("credit_card", text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dots.. then a.b@example.com, and more..", "a.b@example.com"),
        ("write to jane.roe+tag@mail.example.co.uk.", "jane.roe+tag@mail.example.co.uk"),
        ("<BOB@EXAMPLE.ORG>", "BOB@EXAMPLE.ORG"),
        ("mailto:x9@uni.edu", "x9@uni.edu"),
        ('{"email":"a_b@c-d.io"}', "a_b@c-d.io"),
        ("see https://example.com/x ana@example.org", "ana@example.org"),
        # In a URL's path, query or fragment, past its authority: not a user:password@.
        ("see https://app.example/?email=bob@example.com now", "bob@example.com"),
        ("GET https://api.example/users/bob@example.com HTTP/1.1", "bob@example.com"),
        ("https://app.example/#/u/bob@example.com", "bob@example.com"),
        ("https://a.example/login?next=/home&user=ana.lee@corp.example", "ana.lee@corp.example"),
        # Percent-encoded, as logs and redirect URLs hold them (no `@` to find before).
        ("GET /users?email=ana%40corp.example&page=2", "ana%40corp.example"),
        ("https://idp.example/cb?login_hint=a.b%2Btag%40corp.example", "a.b%2Btag%40corp.example"),
    ],
)
def test_email_is_found(text: str, expected: str) -> None:
    assert found("email", text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Before, only what followed the last such character was found: `john.o'[...]`.
        ("write to john.o'brien@example.com today", "john.o'brien@example.com"),
        ("d'artagnan@mousquetaires.fr", "d'artagnan@mousquetaires.fr"),
        ("r&d@corp.example", "r&d@corp.example"),
        ("sales#1@corp.example", "sales#1@corp.example"),
        ("hey!you@corp.example", "hey!you@corp.example"),
        ("pay$now@corp.example", "pay$now@corp.example"),
        ("a*star@corp.example", "a*star@corp.example"),
        ("dept/unit@corp.example", "dept/unit@corp.example"),
        ("why?not@corp.example", "why?not@corp.example"),
        ("x^y@corp.example", "x^y@corp.example"),
        ("q`b@corp.example", "q`b@corp.example"),
        ("a{b}c@corp.example", "a{b}c@corp.example"),
        ("a|b@corp.example", "a|b@corp.example"),
        ("tilde~me@corp.example", "tilde~me@corp.example"),
        (
            "list-bounces+bob=example.com@lists.example.org",
            "list-bounces+bob=example.com@lists.example.org",
        ),
        ("'o'brien@example.com'", "o'brien@example.com"),
        ("Straße o'brien.müller@firma.de", "o'brien.müller@firma.de"),
        # Read as part of the address, so more is redacted: a path without a leading `/`, and
        # what follows a first `key=` in a chain of them (the SRS bounce address keeps `SRS0=`).
        (
            "arn:aws:ses:us-east-1:123456789012:identity/jane@example.com",
            "identity/jane@example.com",
        ),
        ("SRS0=aO/p=ON=example.org=ana@bounce.example", "aO/p=ON=example.org=ana@bounce.example"),
    ],
)
def test_an_address_with_any_character_a_mailbox_allows_is_found_whole(
    text: str, expected: str
) -> None:
    assert found("email", text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(mail bob@example.com)", "bob@example.com"),
        ('"bob@example.com"', "bob@example.com"),
        ("<bob@example.com>", "bob@example.com"),
        ("'bob@example.com'", "bob@example.com"),
        ("`bob@example.com`", "bob@example.com"),
        ("he said...'bob@example.com'", "bob@example.com"),
        ("mailto:bob@example.com", "bob@example.com"),
        ("a=bob@example.com&b=1", "bob@example.com"),
        ("/login?next=%2F&to=bob@example.com&b=1", "bob@example.com"),
        ("ADMIN_EMAIL=bob@example.com", "bob@example.com"),
        ("--email=bob@example.com", "bob@example.com"),
        ("email='bob@example.com'", "bob@example.com"),
        ("GET /v1/users/bob@example.com HTTP/1.1", "bob@example.com"),
        ("**bob@example.com**", "bob@example.com"),
        ("|bob@example.com|", "bob@example.com"),
        ("{bob@example.com}", "bob@example.com"),
        ("#bob@example.com", "bob@example.com"),
        ("x==bob@example.com", "bob@example.com"),
    ],
)
def test_punctuation_around_an_address_is_left_out(text: str, expected: str) -> None:
    assert found("email", text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Each was no address at all, or only its ASCII tail (`ller@firma.de`), before.
        ("contact: zoë@example.com", "zoë@example.com"),
        ("Herr Müller@firma.de schrieb", "Müller@firma.de"),
        ("josé.garcía@ejemplo.es", "josé.garcía@ejemplo.es"),
        ("write to user@bücher.de now", "user@bücher.de"),
        ("фёдор@почта.рф", "фёдор@почта.рф"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("राम@डाटामेल.भारत", "राम@डाटामेल.भारत"),
        ("ana@shop.xn--p1ai", "ana@shop.xn--p1ai"),
        # Quotes are no part of it, and an ASCII domain ends at its word.
        ("“ana@corp.example”", "ana@corp.example"),
        ("ana@corp.exampleです", "ana@corp.example"),
        # Written without spaces, the words before it go with it: more redacted, not less.
        ("連絡はtaro@example.jp", "連絡はtaro@example.jp"),
    ],
)
def test_an_internationalised_email_is_found_whole(text: str, expected: str) -> None:
    assert found("email", text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "user@localhost",
        "@app.route('/x')",
        "npm i @types/node@20.11.5",
        "postgres://app:pw@db.internal:5432/x",
        "git clone https://git@github.com/org/repo",
        "ssh://git@gitlab.example/x",
        "a..b@example.com",
        "a.b@example..com",
        "x@-bad.example.com",
        "naïve@café",
        "x%40-bad.example.com",
        "ana@corp.comx1",
        "${USER}@example.com",
        "'@example.com",
    ],
)
def test_email_look_alikes_are_left_alone(text: str) -> None:
    assert found("email", text) == []


_INNER = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + bytes(range(128, 256))


def _local_start_a_character_at_a_time(data: bytes, start: int, at: int) -> int:
    """Where an address starts in its candidate's local part data[start:at], read a character
    at a time: past dots, a path, punctuation not between two letters or digits, and a key
    assigned to it (`a=` alone, or after the last `&` or `?`)."""
    while start < at and data[start] == ord("."):
        start += 1
    if start < at and data[start] == ord("/"):
        start = max(i for i in range(start, at) if data[i] == ord("/")) + 1
    for i in reversed(range(start, at)):
        if chr(data[i]) in "!#$&'*/=?^`{|}~":
            before = i > start and data[i - 1] in _INNER
            after = i + 1 < at and data[i + 1] in _INNER
            if not (before and after):
                start = i + 1
                break
    parameter = start
    for i in reversed(range(start, at)):
        if data[i] in b"&?":
            parameter = i + 1
            break
    for i in range(parameter, at):
        if data[i] == ord("="):
            key = data[parameter:i]
            if key and all(chr(c).isascii() and (chr(c).isalnum() or c in b"_.-[]") for c in key):
                start = i + 1
            break
    while start < at and data[start] == ord("."):
        start += 1
    return start


def _email_as_first_written(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The email validator as it was first written (the word before split out, labels read
    by a generator), with the narrowing of its start to the address (written out a
    character at a time): the model the faster one must agree with."""
    at = data.find(b"@", start, end)
    start = _local_start_a_character_at_a_time(data, start, end if at < 0 else at)
    touching = start > 0 and not data[start - 1 : start].isspace()
    word = data[max(0, start - 256) : start].split()[-1:] if touching else []
    if word and word[0].find(b"://") >= 0:
        authority = word[0][word[0].rfind(b"://") + 3 :]
        if not any(c in authority for c in b"/?#"):
            return None
    local, _, domain = data[start:end].partition(b"@")
    if not local or local.endswith(b".") or data.find(b"..", start, end) >= 0:
        return None
    labels = domain.split(b".")
    if any(not label or label[0] == ord("-") or label[-1] == ord("-") for label in labels):
        return None
    return start, end


class _Span:
    def __init__(self, start: int, end: int) -> None:
        self._span = (start, end)

    def span(self, group: int = 0) -> tuple[int, int]:
        return self._span


def test_email_validator_agrees_with_its_first_version_on_random_text() -> None:
    pieces = [b"a", b"b.c", b"@", b"x.io", b"-", b".", b"..", b"://", b"http", b" ", b"\t"]
    pieces += [b"\n", b'"', b"=", b":", b"/", b"z" * 300, b"u@h.org", b"https://h/p?u=a@b.co "]
    # A mailbox's punctuation, quotes, query strings and paths around an address.
    pieces += [b"'", b"&", b"?", b"#", b"`", b"{", b"|", b"~", b"o'b", b"k=", b"?k=", b"&k="]
    pieces += [b"/p/", b"[x]=", b"a.b="]
    rule = next(rule for rule in RULES["email"] if rule.validate is not None)
    validate = rule.validate
    assert validate is not None
    for seed in range(40):
        chooser = random.Random(seed)
        data = b"".join(chooser.choice(pieces) for _ in range(chooser.randint(1, 60)))
        for start in range(len(data)):
            for end in (start, start + 1, data.find(b"@", start) + 5, len(data)):
                if start <= end <= len(data):
                    expected = _email_as_first_written(data, start, end)
                    assert validate(data, _Span(start, end)) == expected, (seed, data, start, end)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call (415) 555-0132 now", "(415) 555-0132"),
        ("415-555-0132", "415-555-0132"),
        ("415.555.0132", "415.555.0132"),
        ("+1 415 555 0132", "+1 415 555 0132"),
        ("1-800-555-0199", "1-800-555-0199"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("+49 30 90182012", "+49 30 90182012"),
        ("+33 1 42 68 53 00", "+33 1 42 68 53 00"),
        ("+81 3-1234-5678", "+81 3-1234-5678"),
        ("(685)318-9539x856 desk", "(685)318-9539x856"),
        ("001-841-942-0831 ext. 285", "001-841-942-0831 ext. 285"),
        ("mobile: 4155550132", "4155550132"),
        # National formats (a trunk 0), after a word saying so, in the languages that use them.
        ("tel: 020 7946 0958", "020 7946 0958"),
        ("Téléphone : 06 12 34 56 78", "06 12 34 56 78"),
        ("tél. 06.12.34.56.78", "06.12.34.56.78"),
        ("Telefon 030 12345678", "030 12345678"),
        ("Handy: 0171/1234567", "0171/1234567"),
        ("phone 0612345678", "0612345678"),
        # A date after it is not part of it.
        ("mobile 07700 900123 2024", "07700 900123"),
    ],
)
def test_phone_is_found(text: str, expected: str) -> None:
    assert found("phone", text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "call 555-0132",  # seven digits
        "+44 20 7946",  # too short
        "SKU 1234-5678-9012",
        "P/N 12-3456-7890",
        "zip 94105-1234",
        "ts=1710498153",  # ten bare digits: a timestamp, not a phone
        "order 4155550132",  # ten bare digits without a word saying "phone"
        "call at 1710498153",  # a timestamp even after "call": no area code starts with 1
        "Windows 10.0.19041.1234",
        "2024-01-15 10:22:33",
        "06 12 34 56 78",  # a national format without a word saying "phone"
        "contact 01.02.2024 1000 pieces",  # a date
        "call 0612 345",  # too few digits
    ],
)
def test_phone_look_alikes_are_left_alone(text: str) -> None:
    assert found("phone", text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 203.0.113.77 refused", "203.0.113.77"),
        ("route 10.0.0.0/8 via eth0", "10.0.0.0"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("0:0:0:0:0:ffff:192.0.2.1", "0:0:0:0:0:ffff:192.0.2.1"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        # With a port, in a URL, after a label: how logs and configurations write them.
        ("connect to 203.0.113.77:5432 failed", "203.0.113.77"),
        ("GET http://203.0.113.77/admin HTTP/1.1", "203.0.113.77"),
        ("mysql://app:secret@10.20.30.40:3306/app", "10.20.30.40"),
        ("eth0 inet addr:192.168.1.20 up", "192.168.1.20"),
    ],
)
def test_ip_address_is_found(text: str, expected: str) -> None:
    assert found("ip_address", text) == [expected]


@pytest.mark.parametrize(
    ("detector", "text", "expected"),
    [
        ("ssn", "ssn:078-05-1120", "078-05-1120"),
        ("credit_card", "card:4111111111111111", "4111111111111111"),
        ("credit_card", "card:4111 1111 1111 1111,exp:12/30", "4111 1111 1111 1111"),
        ("phone", "phone:415-555-0132", "415-555-0132"),
        ("ip_address", "host:203.0.113.77", "203.0.113.77"),
    ],
)
def test_a_value_after_a_label_and_a_colon_is_found(
    detector: str, text: str, expected: str
) -> None:
    # A word before a colon labels the value ("key:value" logs, YAML without the space);
    # only a number before it glues (a time, a ratio: below).
    assert found(detector, text) == [expected]


@pytest.mark.parametrize(
    ("detector", "text"),
    [
        ("ssn", "at 10:22:078-05-1120"),
        ("credit_card", "12:4111111111111111"),
        ("phone", "1:415-555-0132"),
        ("ip_address", "10:22:33.1.2.3"),
    ],
)
def test_a_number_glued_by_a_colon_to_a_number_is_left_alone(detector: str, text: str) -> None:
    assert found(detector, text) == []


@pytest.mark.parametrize(
    "text",
    [
        "256.1.1.1",
        "OID 1.3.6.1.4.1.2021.9",
        "version 1.2.3.4",
        "mac 00:1a:2b:3c:4d:5e",
        "at 12:30:45",
        "std::vector<int> and Foo::Bar",
        "01.02.03.04",  # leading zeros are not an address
        "Gecko/20100101 rv:1.9.4.20",  # a revision in a user agent
        "version:1.2.3.4",
        "1.2.3.4:beta",
    ],
)
def test_ip_look_alikes_are_left_alone(text: str) -> None:
    assert found("ip_address", text) == []
