"""Resource URIs as a server reads them, so RBAC decides on what is read, not how it is spelled.

RFC 3986 normalisation (6.2.2): lower-case scheme and host, percent-decode unreserved
characters, upper-case the hex of the other escapes, remove dot segments (5.2.4); for
`file:` (RFC 8089), `file://localhost/p` and `file:/p` are `file:///p`.

Where servers differ, a URI has more than one reading and RBAC must permit them all: a path
with `//` (a file system reads one `/`, a key store an empty segment), a `file:` URI naming
another host (many servers read its path alone), a custom scheme's first name with dot
segments after it (a folder to many servers: `notes://public/../x` is `notes://x` to them),
an escaped `/` or `\\` in the path (a name's character to some servers, a separator to those
that decode before they split), and an ASCII character escaped or written plainly (one name
to a server that decodes). Where they differ past that, the URI is ambiguous: it has no
reading, and RBAC refuses it whenever resources are restricted. That is an encoded NUL, an
encoded dot segment (`%2e%2e`: `..` to some servers, a name to others), a raw `\\` (a `/` to
WHATWG parsers), a control character or a space at either end (stripped by some parsers), a
malformed escape, a dot segment in the query or fragment (a server taking the whole string
as a path climbs out), a dot segment in a relative path, and a `file:` path that is not
absolute.
"""

from __future__ import annotations

import re
from typing import Final

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# C0 controls and DEL anywhere; a space only at either end (where parsers strip it).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|^ | $")
_DOTS = frozenset({".", ".."})
_REPEATED_SLASHES = re.compile("/{2,}")
# URIs that normalising leaves as they are (most): checked in one pass, in linear time (the
# quantifiers are possessive). It may turn away some that the slow way would not change.
_PLAIN = re.compile(
    r"(?!file:(?!///))"  # `file:` only as `file:///`: no host to drop, no `file:/p`
    r"[a-z][a-z0-9]*+:"  # a lower-case scheme
    r"(?://[a-z0-9._~!$&'()*+,;=:@\[\]{}-]*+(?=[/?#]|\Z))?"  # a lower-case authority
    r"(?!\.)"  # no rootless path starting with a dot segment
    # then no escape, `\` or control character, and no `/` followed by `.` or `/`
    r"[^%\\/\x00-\x1f\x7f]*+(?:/(?![./])[^%\\/\x00-\x1f\x7f]*+)*+"
    r"(?<! )"  # no space at the end
)


# Whether `uri` is already normal (its one reading is itself): a match, or None if unsure.
is_plain: Final = _PLAIN.fullmatch


def readings(uri: str) -> tuple[str, ...]:
    """The normalised URIs a server could read `uri` as: usually one, none if ambiguous."""
    if is_plain(uri) is not None:
        return (uri,)
    return _all_readings(uri)


def _all_readings(uri: str) -> tuple[str, ...]:
    split = _split_separators(uri)
    if split is None:
        return _readings(uri)
    # An escaped `/` or `\\` in the path (`gitlab://projects/group%2Fproj`): a name to some
    # servers, a separator to others, which decode before they split. Both readings count.
    kept, apart = _readings(uri), _readings(split)
    return tuple(dict.fromkeys(kept + apart)) if kept and apart else ()


def patterns(text: str) -> tuple[str, ...]:
    """An admin's pattern in the forms URIs are matched in (`*` passes through untouched):
    its normal form, that form with its escapes decoded (`my%20docs`, `my docs`), and with
    an escaped separator it holds, the same of its reading as a separator."""
    split = _split_separators(text)
    firsts = [_readings(text)[:1]]
    if split is not None:
        firsts.append(_readings(split)[:1])
    if not all(firsts):
        # An ambiguous pattern is kept as written: it can match no URI, since those are
        # refused.
        return (text,)
    forms: dict[str, None] = {}
    for (normal,) in firsts:
        plain = _unescaped(normal)
        forms.update(dict.fromkeys((normal, plain, _UNSAFE.sub(_escape, plain))))
    return tuple(forms)


_ESCAPED_SEPARATOR = re.compile("%(?:2[Ff]|5[Cc])")


def _split_separators(uri: str) -> str | None:
    """`uri` with the escaped `/` and `\\` of its path (before `?` or `#`) decoded to `/`;
    None if it has none."""
    end = min((i for i in (uri.find("?"), uri.find("#")) if i >= 0), default=len(uri))
    path = uri[:end]
    if _ESCAPED_SEPARATOR.search(path) is None:
        return None
    return _ESCAPED_SEPARATOR.sub("/", path) + uri[end:]


def _readings(uri: str) -> tuple[str, ...]:
    """`readings` of one spelling, an escaped separator in its path read as a name's
    character (kept escaped): `_all_readings` adds the spelling that splits there."""
    if _CONTROL.search(uri) or "\\" in uri:
        return ()
    match = _SCHEME.match(uri)
    scheme = match.group()[:-1].lower() if match else None
    rest = uri[match.end() :] if match else uri
    rest, has_fragment, fragment = rest.partition("#")
    rest, has_query, query = rest.partition("?")
    authority: str | None = None
    path = rest
    if rest.startswith("//"):
        end = rest.find("/", 2)
        end = len(rest) if end < 0 else end
        authority, path = rest[2:end], rest[end:]

    raw = path.split("/")
    segments = [_decode(segment) for segment in raw]
    decoded: list[str] = []
    for before, after in zip(raw, segments, strict=True):
        if after is None or (after in _DOTS and after != before):
            return ()  # a malformed escape, an encoded NUL, an encoded dot segment
        decoded.append(after)
    path = "/".join(decoded)

    tail = ""
    for mark, present, part in (("?", has_query, query), ("#", has_fragment, fragment)):
        if present:
            plain = _decode(part)
            # What follows a `/` here is a path segment to a server reading it all as a path
            # (`url2pathname`), and so is what follows an escaped one, which it decodes.
            if plain is None or not _DOTS.isdisjoint(_SEPARATORS.split(plain)[1:]):
                return ()
            tail += mark + plain

    host: str | None = None
    if authority is not None:
        plain_authority = _decode(authority)
        if plain_authority is None:
            return ()
        user, at, name = plain_authority.rpartition("@")
        host = user + at + name.lower()
    hosts = [host]
    if scheme == "file":
        if path and not path.startswith("/"):
            return ()
        # RFC 8089: no host and `localhost` are this machine; another host is a second
        # reading, since servers that take the URI's path alone read a local file.
        hosts = [""] if host in (None, "", "localhost") else [host, ""]

    literal = _remove_dot_segments(path)
    collapsed = _remove_dot_segments(_REPEATED_SLASHES.sub("/", path)) if "//" in path else literal
    if literal is None or collapsed is None:
        return ()
    if scheme is None and ":" in literal.partition("/")[0]:
        return ()  # a scheme spelled with escapes, or not a URI at all
    if host is None and scheme != "file" and literal.startswith("//"):
        return ()  # `x:/..//h/p`: without an authority, `//h` would now read as one
    start = "" if scheme is None else scheme + ":"
    found = dict.fromkeys(
        f"{start}{'' if each is None else '//' + each}{reading}{tail}"
        for each in hosts
        for reading in (literal, collapsed)
    )
    if host is not None and scheme not in _HOSTED_SCHEMES and not _DOTS.isdisjoint(raw):
        # Many servers read `notes://public/x` as the path `public/x`: to them the dot
        # segments may climb over `public` (`notes://public/../secret/x` is `secret/x`).
        climbed = _remove_dot_segments(f"/{host}{path}")
        if climbed is None:
            return ()
        found[f"{start}//{climbed[1:]}{tail}"] = None
    # A character written plain or as an escape reads as one name to a server that decodes
    # (`my docs`, `my%20docs`): both spellings are readings, and patterns have both too.
    for reading in [reading for reading in found if "%" in reading]:
        found[_unescaped(reading)] = None
    return tuple(found)


_SEPARATORS = re.compile("/|%2F|%5C")
# Schemes whose authority is a host, never a path segment.
_HOSTED_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
# Escapes left as they are in the decoded spelling: decoded, they would be delimiters.
_KEPT_ESCAPED = frozenset("/\\?#%:\0")
_ESCAPE = re.compile("%([0-9A-F]{2})")


def _unescaped(uri: str) -> str:
    """A normal form with its escapes decoded, but those of delimiters and controls."""

    def plain(match: re.Match[str]) -> str:
        code = int(match.group(1), 16)
        # Past ASCII an escape is one byte of a character: left as it is (not handled).
        keep = code > 0x7E or code < 0x20 or chr(code) in _KEPT_ESCAPED
        return match.group() if keep else chr(code)

    return _ESCAPE.sub(plain, uri)


# What a URI may not hold unescaped (RFC 3986 2.1): a pattern with one written plainly
# (`my docs`) also matches the URI that escapes it (`my%20docs`).
_UNSAFE = re.compile(r'[ "<>\\^`{|}]')


def _escape(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def _decode(part: str) -> str | None:
    """Decode the unreserved characters' escapes and upper-case the others' hex; None if an
    escape is malformed or encodes NUL."""
    if "%" not in part:
        return part
    first, *pieces = part.split("%")
    out = [first]
    for piece in pieces:
        digits = piece[:2]
        if len(digits) < 2 or not _HEX.issuperset(digits):
            return None
        char = chr(int(digits, 16))
        if char in _UNRESERVED:
            out.append(char)
        elif char == "\0":
            return None
        else:
            out.append("%" + digits.upper())
        out.append(piece[2:])
    return "".join(out)


def _remove_dot_segments(path: str) -> str | None:
    """RFC 3986 5.2.4 on an absolute path: `.` segments go, `..` takes the segment before it
    with it. None for a relative path with either: it is relative to what the server picks."""
    if "." not in path:
        return path
    if not path.startswith("/"):
        return None if not _DOTS.isdisjoint(path.split("/")) else path
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in _DOTS:
        kept.append("")  # `/a/b/..` is the directory `/a/`
    return "/" + "/".join(kept)
