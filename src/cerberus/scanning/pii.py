"""Rules that find personal data: SSNs, payment cards, email addresses, phone numbers, IPs.

The RE2 patterns find candidates; the validators apply what a pattern cannot say: SSN
area/group/serial rules, Luhn and card-network prefixes, IPv6 syntax, and that a number is
not the middle of a longer number (RE2 has no look-around). A pattern offers a candidate
only where a value can be (an octet, a card grouping): each candidate costs a call into
Python, and a loose pattern offered one every few bytes of look-alike text.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any

from cerberus.scanning.engine import Rule

_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
# Characters that glue a number to a neighbouring number (a longer id, a version, a date).
_GLUE = frozenset(b"-./:")
_COLON, _SLASH = ord(":"), ord("/")


def clear_before(data: bytes, start: int) -> bool:
    """True when what precedes data[start] does not make it part of a longer id."""
    if start > 0:
        before = data[start - 1]
        if before in _ALNUM:
            return False
        if before in _GLUE and start > 1:
            glued = data[start - 2]
            # A colon glues a number to a number (a time, a ratio); after a word it ends a
            # label: "ssn:078-05-1120", "card:4111...", "host:10.0.0.1" are values.
            if glued in _DIGITS if before == _COLON else glued in _ALNUM:
                return False
    return True


def clear_after(data: bytes, end: int) -> bool:
    """True when what follows data[:end] does not make it part of a longer id."""
    if end < len(data):
        after = data[end]
        if after in _ALNUM:
            return False
        if after in _GLUE and end + 1 < len(data) and data[end + 1] in _ALNUM:
            return False
    return True


def standalone(data: bytes, start: int, end: int) -> bool:
    """True when data[start:end] is not part of a longer word, number or dotted/dashed id."""
    return clear_before(data, start) and clear_after(data, end)


_NOT_DIGITS = bytes(c for c in range(256) if c not in _DIGITS)


def _digits(chunk: bytes) -> str:
    return chunk.translate(None, _NOT_DIGITS).decode("ascii")


# --- SSN -------------------------------------------------------------------------------


def _valid_ssn(number: str) -> bool:
    area, group, serial = number[:3], number[3:5], number[5:]
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def _ssn(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span()
    if not standalone(data, start, end) or not _valid_ssn(_digits(data[start:end])):
        return None
    return start, end


def _ssn_bare(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span(1)
    if not standalone(data, start, end) or not _valid_ssn(_digits(data[start:end])):
        return None
    return start, end


# --- payment cards ---------------------------------------------------------------------


# Every second digit from the right is doubled, minus 9 above 9: one translation table, so
# the check is two byte sums rather than a Python loop per digit.
_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def luhn(number: bytes) -> bool:
    """The Luhn check of a run of ASCII digits."""
    doubled = number[-2::-2].translate(_DOUBLED)
    return (sum(number[-1::-2]) + sum(doubled) - 48 * len(number)) % 10 == 0


def _network_accepts(number: bytes) -> bool:
    length = len(number)
    if number[:1] == b"4":
        return length in (13, 16, 19)
    two, three, four = int(number[:2]), int(number[:3]), int(number[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16
    if two in (34, 37):
        return length == 15
    if four == 6011 or two == 65 or 644 <= three <= 649:
        return 16 <= length <= 19
    if two == 35:  # JCB (3528-3589 by the book; issued and test numbers use all of 35)
        return 16 <= length <= 19
    if 300 <= three <= 305 or two in (36, 38, 39):
        return 14 <= length <= 19
    if two == 62:
        return 16 <= length <= 19
    if two == 50 or 56 <= two <= 58 or two == 67:
        return 13 <= length <= 19
    return False


# Every way of writing 13-19 card digits that is accepted: in a row, or grouped by spaces or
# dashes (one kind) as 4-4-4-1..4, 4-4-4-4-1..3, 4-6-5 or 4-6-4. A candidate's shape (its
# digits written as `d`) is looked up in this set.
_CARD_SHAPES = frozenset(
    [b"d" * length for length in range(13, 20)]
    + [
        separator.join(b"d" * size for size in groups)
        for separator in (b" ", b"-")
        for groups in (
            *([4, 4, 4, last] for last in range(1, 5)),
            *([4, 4, 4, 4, last] for last in range(1, 4)),
            [4, 6, 5],
            [4, 6, 4],
        )
    ]
)
_SHAPE = bytes.maketrans(b"0123456789", b"dddddddddd")


def _grouping_ok(chunk: bytes) -> bool:
    """Card grouping of a candidate of 13-19 digits, spaces and dashes (the pattern's bytes)."""
    return chunk.translate(_SHAPE) in _CARD_SHAPES


def _card_groupings(separator: str) -> str:
    """The groupings of `_CARD_SHAPES`, longest first: 4-4-4-4 then 1-3 digits, 4-4-4 then
    1-4, 4-6-4/5 (a separator is the same throughout, and RE2 has no backreference)."""
    group = rf"{separator}\d{{4}}"
    return (
        rf"\d{{4}}(?:{group}){{3}}{separator}\d{{1,3}}"
        rf"|\d{{4}}(?:{group}){{2}}{separator}\d{{1,4}}"
        rf"|\d{{4}}{separator}\d{{6}}{separator}\d{{4,5}}"
    )


# 13-19 digits in a row, or a card grouping. Only shapes a card can have are candidates:
# `555-555-...` or `4 4 4 ...` offer none (a loose "digits and separators" pattern offered
# one every few bytes), and a short number just before a card no longer swallows it.
_CARD = rf"\b(?:\d{{13,19}}|{_card_groupings(' ')}|{_card_groupings('-')})\b"


def _card(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span()
    if not clear_before(data, start):
        return None
    chunk = data[start:end]
    # The whole candidate, then shorter ones cut at a separator: a grouped card followed by
    # more digits ("... 1111 2024"). Cheap and selective checks first (a table of four-digit
    # numbers offers a candidate every twenty bytes, and nine in ten fail Luhn).
    size = len(chunk)
    while size >= 13:
        number = chunk[:size].translate(None, b" -")
        if len(number) < 13:
            return None  # a shorter cut holds fewer digits still
        if (
            len(number) <= 19
            and luhn(number)
            and _network_accepts(number)
            and clear_after(data, start + size)
            and _grouping_ok(chunk[:size])
        ):
            return start, start + size
        size = max(chunk.rfind(b" ", 0, size), chunk.rfind(b"-", 0, size))
    return None


# --- email -----------------------------------------------------------------------------


# Internationalised addresses (RFC 6531) hold letters of any script: `zoë@example.com` was no
# address at all, and `Müller@firma.de` lost only `ller@firma.de`. The pattern takes any
# character past ASCII in the local part and the domain (Unicode's letter classes made RE2's
# states several times larger, and it ~3 MiB bigger on varied text); `_letters_only` then
# keeps what an address can hold: letters of any script and combining marks
# (`фёдор@почта.рф`, `用户@例子.广告`). In a script written without spaces the words just
# before an address are taken with it (`連絡はtaro@example.jp`): more redacted, never less.
_BEYOND_ASCII = r"\x{80}-\x{10FFFF}"
# The other characters RFC 5322 allows in a local part (`john.o'brien`, `r&d`, `a/b`). Between
# two letters or digits they are part of the address; elsewhere they are the punctuation
# around one in prose, markup, code or a URL (`'bob@...'`, `**bob@...**`, `x==bob@...`), and
# the address starts after the last such one (`_local_start`).
_MAILBOX_PUNCTUATION = "!#$&'*/=?^`{|}~"
_LOCAL_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-" + _MAILBOX_PUNCTUATION
)
_DOMAIN_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def _letter(char: str) -> bool:
    return char.isalpha() or unicodedata.category(char)[0] == "M"


def _letters_only(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """A candidate with characters past ASCII, narrowed to letters and marks on both sides of
    its `@` (quotes, dashes and other punctuation end it), or None."""
    try:
        text = data[start:end].decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return start, end  # not text: redact all of it rather than read it wrong
    at = text.index("@")
    first = at
    while first and (text[first - 1] in _LOCAL_ASCII or _letter(text[first - 1])):
        first -= 1
    last = at + 1
    while last < len(text) and (text[last] in _DOMAIN_ASCII or _letter(text[last])):
        last += 1
    domain = text[at + 1 : last]
    dot = domain.rfind(".")
    if first == at or dot <= 0 or not _top_level(domain[dot + 1 :]):
        return None
    return (
        start + len(text[:first].encode("utf-8", "surrogatepass")),
        start + len(text[:last].encode("utf-8", "surrogatepass")),
    )


def _top_level(label: str) -> bool:
    if label.isascii():
        return label.startswith("xn--") or (2 <= len(label) <= 24 and label.isalpha())
    return _letter(label[0]) and not label[0].isascii()


_ANY_PUNCTUATION = re.compile(b"[%s]" % re.escape(_MAILBOX_PUNCTUATION.encode()))
# Searched in a local part written backwards (the condition reads the same both ways): the
# first find is the last such character, after which the address starts.
_LOOSE_PUNCTUATION = re.compile(
    rb"(?<![A-Za-z0-9\x80-\xff])[%(p)s]|[%(p)s](?![A-Za-z0-9\x80-\xff])"
    % {b"p": re.escape(_MAILBOX_PUNCTUATION.encode())}
)
# What a key before `=` is made of (`email=`, `a=`, `--to=`, `user[email]=`).
_KEY_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-[]"


def _local_start(data: bytes, start: int, at: int) -> int:
    """Where the address whose local part is a candidate's data[start:at] starts: after a
    path (`/users/bob@...` in a request line), the punctuation around it (`_MAILBOX_PUNCTUATION`
    not between two letters or digits) and a key it is assigned to (`a=bob@...&b=1`,
    `?to=bob@...`, `EMAIL=bob@...`: a first `=` after a name of letters, digits, `_.-[]`)."""
    start = _past_dots(data, start, at)
    if _ANY_PUNCTUATION.search(data, start, at) is None:  # as most local parts
        return start
    if data.startswith(b"/", start, at):
        start = data.rfind(b"/", start, at) + 1
    loose = _LOOSE_PUNCTUATION.search(data[start:at][::-1])
    if loose is not None:
        start = at - loose.start()
    separator = max(data.rfind(b"&", start, at), data.rfind(b"?", start, at))
    parameter = start if separator < 0 else separator + 1
    equals = data.find(b"=", parameter, at)
    if equals > parameter and not data[parameter:equals].translate(None, _KEY_BYTES):
        start = equals + 1
    return _past_dots(data, start, at)


def _email(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span()
    if not data[start:end].isascii():
        narrowed = _letters_only(data, start, end)
        if narrowed is None:
            return None
        start, end = narrowed
    at = data.find(b"@", start, end)
    start = _local_start(data, start, end if at < 0 else at)
    # user:password@host in a URL is not a mailbox: the word the address starts in holds
    # `://` and no `/`, `?` or `#` after it (past those, the authority has ended and an
    # `@` is in the path, query or fragment: `https://app.example/?email=bob@...`). The
    # look-back is bounded so that a text full of addresses costs linear time; the last
    # `://` in it is in that word when no whitespace follows it (a rare find: the word
    # itself is not split out).
    if start > 0 and not data[start - 1 : start].isspace():
        url = data.rfind(b"://", max(0, start - 256), start)
        if url >= 0 and len(data[url:start].split()) == 1:
            authority = data[url + 3 : start]
            if b"/" not in authority and b"?" not in authority and b"#" not in authority:
                return None
    local, _, domain = data[start:end].partition(b"@")
    return _mailbox(data, start, end, local, domain)


def _encoded_email(data: bytes, match: Any) -> tuple[int, int] | None:
    """An address percent-encoded in a URL or a form (`?email=ana%40corp.example`), as logs
    and redirect URLs hold them: `%40` is its `@`, so no `user:password@` look-back."""
    start, end = match.span()
    start = _past_dots(data, start, end)
    local, _, domain = data[start:end].rpartition(b"%40")
    return _mailbox(data, start, end, local, domain)


def _past_dots(data: bytes, start: int, end: int) -> int:
    """Where a candidate starts once the dots before its local part are left out."""
    while start < end and data[start] == ord("."):
        start += 1
    return start


def _mailbox(
    data: bytes, start: int, end: int, local: bytes, domain: bytes
) -> tuple[int, int] | None:
    """data[start:end], split into `local` and `domain`, when both are well formed."""
    if not local or local.endswith(b".") or data.find(b"..", start, end) >= 0:
        return None
    for label in domain.split(b"."):
        if not label or label[0] == _HYPHEN or label[-1] == _HYPHEN:
            return None
    return start, end


_HYPHEN = ord("-")


# --- phone -----------------------------------------------------------------------------


# Words after which bare or nationally written digits are a phone number, in the languages
# whose national formats `_national` reads too.
_PHONE_WORDS = (
    r"(?i)\b(?:phone|t[ée]l|mobile|cell|fax|call|contact|sms|whatsapp"
    r"|t[ée]l[ée]phone|portable|telefon|handy|tel[ée]fono|m[óo]vil|telefone|telefoon|mobiel)"
)


def _nanp(data: bytes, match: Any) -> tuple[int, int] | None:
    """A formatted North American number: the format is the evidence, so any digits go. The
    pattern fixes the count (ten, after a `1`, `+1` or `001` prefix; an extension is extra),
    so what is left to check is that the number stands alone."""
    start, end = match.span()
    return (start, end) if standalone(data, start, end) else None


def _nanp_bare(data: bytes, match: Any) -> tuple[int, int] | None:
    """Ten bare digits are a phone number only after a word saying so, and only if they obey
    the numbering plan (area code and exchange start with 2-9; no timestamp does)."""
    start, end = match.span(1)
    number = _digits(data[start:end])
    number = number[1:] if len(number) == 11 else number
    if len(number) != 10 or number[0] in "01" or number[3] in "01":
        return None
    return (start, end) if standalone(data, start, end) else None


_DATE = re.compile(rb"\d{1,2}([./\-])\d{1,2}\1(?:19|20)\d\d(?!\d)")


def _national(data: bytes, match: Any) -> tuple[int, int] | None:
    """A number in a national format (a trunk `0`, then 9-11 digits in groups: `020 7946
    0958`, `06 12 34 56 78`, `030 12345678`) after a word saying it is a phone number. As
    for a card, a run that goes on into other digits (a date after it) is cut at a
    separator."""
    start, end = match.span(1)
    if _DATE.match(data, start):
        return None  # "contact 01.02.2024 1000 pieces"
    while end > start:
        count = len(_digits(data[start:end]))
        if count < 10:
            return None
        if count <= 12 and clear_after(data, end):
            return (start, end) if clear_before(data, start) else None
        cut = max(data.rfind(sep, start, end) for sep in (b" ", b".", b"-", b"/"))
        end = cut if cut > start else start
    return None


def _international(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span()
    if not 10 <= len(_digits(data[start:end])) <= 15:
        return None
    if start > 0 and data[start - 1] in _ALNUM:
        return None
    if end < len(data) and data[end] in _ALNUM:
        return None
    return start, end


# --- IP addresses ----------------------------------------------------------------------

# A dotted quad after these is a version ("rv:" is the revision in a Gecko user agent).
_VERSION_WORDS = (b"version", b"ver", b"v", b"rv", b"release", b"build")
# 0-255 without a leading zero, as `ipaddress` reads an octet: a run of other numbers
# (`999.999.999.999`, `01.02.03.04`) is no candidate at all, and a candidate of four parts
# needs no further range check.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


def _ipv4(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span()
    # The pattern takes a whole dotted run at once, so `1.1.1.1.1...` is one candidate, not
    # one per quad; a run of more than four parts is an OID or a longer id.
    if data.count(b".", start, end) != 3:
        return None
    if not clear_before(data, start):
        return None
    # A CIDR suffix or a URL's path ("10.0.0.0/8", "http://10.0.0.1/admin") and a port
    # ("10.0.0.1:8080") still name the address; other glue makes it part of a longer id.
    follower = data[end] if end + 1 < len(data) else None
    named = follower == _SLASH or (follower == _COLON and data[end + 1] in _DIGITS)
    if not named and not clear_after(data, end):
        return None
    words = data[max(0, start - 12) : start].lower().split()
    if words and words[-1].rstrip(b":") in _VERSION_WORDS:
        return None
    return start, end


def _ipv6(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span(1)
    candidate = data[start:end]
    if start > 0 and (data[start - 1] in _ALNUM or data[start - 1] == ord(":")):
        return None
    if end < len(data) and (data[end] in _ALNUM or data[end] == ord(":")):
        return None
    groups = [group for group in candidate.replace(b".", b":").split(b":") if group]
    if len(groups) < 2:
        return None
    try:
        ipaddress.IPv6Address(candidate.decode("ascii"))
    except ValueError:
        return None
    return start, end


RULES: dict[str, tuple[Rule, ...]] = {
    "ssn": (
        Rule("ssn", r"\b(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4})\b", _ssn),
        # Nine digits in a row are an SSN only when the text says so just before them.
        Rule(
            "ssn",
            r"(?i)(?:\bssn|social security(?: number| no\.?)?|\bss ?#|taxpayer id)"
            r"\D{0,12}(\d{9})\b",
            _ssn_bare,
        ),
    ),
    # Word boundaries keep RE2 from offering every window of a long digit run as a candidate.
    "credit_card": (Rule("credit_card", _CARD, _card),),
    "email": (
        Rule(
            "email",
            rf"[A-Za-z0-9._%+\-{_MAILBOX_PUNCTUATION}{_BEYOND_ASCII}]+"
            rf"@(?:[A-Za-z0-9\-{_BEYOND_ASCII}]+\.)+"
            rf"(?:xn--[A-Za-z0-9\-]{{1,59}}\b|[A-Za-z]{{2,24}}\b|[{_BEYOND_ASCII}]+)",
            _email,
        ),
        Rule(
            "email",
            r"[A-Za-z0-9._%+\-]+%40(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}\b",
            _encoded_email,
        ),
    ),
    "phone": (
        Rule(
            "phone",
            r"(?:(?:\+?1|001)[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}"
            r"(?:[ ]?(?:[xX]|[eE]xt\.?|[eE]xtension)[ ]?\d{1,6})?",
            _nanp,
        ),
        Rule(
            "phone",
            rf"{_PHONE_WORDS}\D{{0,15}}\b(1?\d{{10}})\b",
            _nanp_bare,
        ),
        Rule("phone", r"\+[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,8})){1,6}", _international),
        Rule(
            "phone",
            rf"{_PHONE_WORDS}\D{{0,15}}\b(0\d{{1,4}}(?:[ .\-/]?\d{{1,8}}){{1,5}})\b",
            _national,
        ),
    ),
    "ip_address": (
        # At least four parts, greedily: a longer run (`1.1.1.1.1...`, an OID) is one
        # candidate, and versions and decimals (`1.2.3`, `0.5`) are none.
        Rule("ip_address", rf"\b{_OCTET}(?:\.{_OCTET}){{3,}}\b", _ipv4),
        Rule(
            "ip_address",
            # Full (eight groups) or compressed (with "::"): so that times such as 08:12:18,
            # common in logs, are not even candidates. The byte before it is part of the
            # match (RE2 has no look-behind): an address never follows a letter, digit or
            # colon, so a run such as `::::` or `1::1::1::` is not a candidate at every colon.
            r"(?:^|[^0-9A-Za-z_:])("
            r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
            r"|(?:[0-9A-Fa-f]{1,4}:){6}\d{1,3}(?:\.\d{1,3}){3}"
            r"|(?:(?:[0-9A-Fa-f]{1,4}:){1,7}|:):(?:[0-9A-Fa-f]{1,4}:){0,6}"
            r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?)",
            _ipv6,
        ),
    ),
}
