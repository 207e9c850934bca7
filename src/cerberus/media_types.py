"""The charset parameters of a media type, as a `Content-Type` or a resource's `mimeType`
writes them: the proxy refuses a body labelled other than UTF-8, and the redactor reads a
text-like blob in the charset its `mimeType` names."""

from __future__ import annotations


def charsets(media_type: str) -> list[str]:
    """Every `charset` parameter's value, in order, unquoted and as written (parsers differ
    on which of several they keep, so a caller may need them all)."""
    found = []
    for parameter in media_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            found.append(value.strip().strip('"'))
    return found
