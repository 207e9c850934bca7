"""Rules that find credentials: provider tokens, private keys, JWTs, passwords in URLs and
connection strings, and high-entropy values assigned to secret-sounding names."""

from __future__ import annotations

import base64
import math
from collections import Counter
from typing import Any

from cerberus.scanning.engine import Rule, Validator, _regexp

# Values that name a secret instead of containing one.
_PLACEHOLDERS = (b"${", b"{{", b"<", b"%(", b"os.environ", b"process.env", b"getenv")


_DIGIT_BYTES = b"0123456789"


def shannon_entropy(value: bytes) -> float:
    counts = Counter(value)
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in counts.values())


def _looks_random(value: bytes) -> bool:
    """A generated secret mixes classes of characters and has high per-character entropy."""
    lowered = value.lower()
    if any(marker in lowered for marker in _PLACEHOLDERS):
        return False
    if len(set(value)) < 6:
        return False
    # Byte-string methods rather than a loop per byte: a record set can hold a value under a
    # secret-sounding key on every row, and a value can be as long as the text.
    has_digit = len(value.translate(None, _DIGIT_BYTES)) < len(value)
    has_alpha = lowered != value.upper()  # bytes change case of ASCII letters only
    threshold = 3.0 if has_digit and has_alpha else 3.8
    return shannon_entropy(value) >= threshold


def _assignment(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span(1)
    return (start, end) if _looks_random(data[start:end]) else None


# What the secrets guardrail left where a password was: redacted texts are read again until
# nothing more is found (guardrails/text_checks.py, SETTLE_ROUNDS). Another guardrail's
# marker in a password's place (`password = "[REDACTED:EMAIL]"`) is still found, as before.
_REDACTED_SECRET = b"[REDACTED:SECRET]"


def _bearer(data: bytes, match: Any) -> tuple[int, int] | None:
    """A random-looking bearer credential; a JWT there is the JWT rule's (one finding)."""
    start, end = match.span(1)
    if data.startswith(b"eyJ", start) or not _looks_random(data[start:end]):
        return None
    return start, end


def _basic(data: bytes, match: Any) -> tuple[int, int] | None:
    """HTTP Basic credentials: base64 of `user:password`."""
    start, end = match.span(1)
    try:
        decoded = base64.b64decode(data[start:end], validate=True)
    except ValueError:
        return None
    if not decoded.isascii() or not decoded.decode("ascii").isprintable():
        return None
    user, colon, password = decoded.partition(b":")
    # Either side may be empty: APIs that take a key as the user (Stripe: `sk_live_...:`) or
    # as the password with no user (`:token`).
    return (start, end) if colon and (user or password) else None


def _password_group(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span(1)
    value = data[start:end].lower()
    if any(marker in value for marker in _PLACEHOLDERS) or set(value) <= set(b"*x."):
        return None
    if data[start:end] == _REDACTED_SECRET:
        return None
    return start, end


# What a config line holds where no password is set (`password: required`).
_NOT_A_PASSWORD = frozenset(
    b"required optional true false null none nil hidden redacted unset empty prompt".split()
)


def _last_word_of_line(data: bytes, match: Any) -> tuple[int, int] | None:
    """`_unquoted_password` for a value that must end its line (`password: hunter2`)."""
    end = match.end(1)
    rest = data[end : end + 256].split(b"\n", 1)[0].strip(b" \t\r")
    # A YAML comment after the value (`# rotated monthly`) still ends it.
    return _unquoted_password(data, match) if not rest or rest[:1] == b"#" else None


def _unquoted_password(data: bytes, match: Any) -> tuple[int, int] | None:
    """A password written without quotes (an env file, a query string, a flag, a YAML
    line), unless it is one of the words such lines hold instead of one."""
    start, end = match.span(1)
    # Six characters or more, counted here: `{6,}` on so large a class made RE2's states
    # several times larger.
    if end - start < 6 or data[start:end].lower() in _NOT_A_PASSWORD:
        return None
    return _password_group(data, match)


_WORD = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def _word_start(data: bytes, match: Any) -> tuple[int, int] | None:
    """The `\\b` before a token whose pattern starts with a literal, checked here: RE2 skips
    to a literal prefix with memchr (0.03 instead of 1.5 ms per MB once the rule's set bit is
    on), and a leading `\\b` in the pattern prevents that. Only for tokens made of word
    characters, where the rejected candidate cannot hide a token that starts inside it."""
    start, end = match.span()
    return None if start > 0 and data[start - 1] in _WORD else (start, end)


def _token(data: bytes, match: Any) -> tuple[int, int] | None:
    start, end = match.span()
    value = data[start:end]
    return (start, end) if _looks_random(value) else None


def _word_start_in_run(token: str, then: Validator | None = None) -> Validator:
    """`_word_start` for a token whose characters run on to the end of its class (a dash in
    it can start a word): a candidate glued to a word is searched, within itself, for the
    token with a `\\b` before it, which ends where the candidate ends. That search is bounded
    by the candidate, so a text stays linear."""
    inner = _regexp(rf"\b{token}")

    def validate(data: bytes, match: Any) -> tuple[int, int] | None:
        start, end = match.span()
        if start > 0 and data[start - 1] in _WORD:
            found = inner.search(data, start + 1, end)
            if found is None:
                return None
            match = found
        return match.span() if then is None else then(data, match)

    return validate


_GITLAB = r"gl(?:pat|dt|ptt|rt|soat)-[A-Za-z0-9_\-]{20,}"
_SLACK = r"xox[abposr]-[A-Za-z0-9\-]{10,}"
_OPENAI = r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}"
_ANTHROPIC = r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,}"


def _openai(data: bytes, match: Any) -> tuple[int, int] | None:
    """An `sk-` token that is not Anthropic's (`sk-ant-`, its own rule): one finding a key."""
    start, _ = match.span()
    return None if data.startswith(b"sk-ant-", start) else _token(data, match)


# A key block's lines end in whitespace, or in escaped line ends where the block is inside
# JSON or code source (a service-account key file read as text: `\n`, `\r\n`, `\\n` when
# escaped twice). A body line may hold `\/`, as PHP's json_encode writes `/`. A header's value
# holds no backslash, so an escaped line end ends it.
_PEM_LINE_END = r"(?:\s|\\+[rn])"
_PEM_BODY = r"(?:[A-Za-z0-9+/=]|\\+/)+"

_NAMES = (
    r"api[_\-]?key|apikey|secret|token|passwd|password|pwd|credentials?|private[_\-]?key"
    r"|access[_\-]?key|auth[_\-]?key|client[_\-]?secret"
)

RULES: dict[str, tuple[Rule, ...]] = {
    "secrets": (
        # Cloud and provider tokens with a fixed, documented shape.
        Rule(
            "aws_access_key",
            r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
            _word_start,
        ),
        Rule(
            "aws_secret_key",
            r"(?i)aws.{0,20}?secret.{0,20}?[=:]\s*[\"']?([A-Za-z0-9/+]{40})\b",
            _assignment,
        ),
        Rule("github_token", r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b", _word_start),
        Rule("github_token", r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b", _word_start),
        Rule("gitlab_token", _GITLAB, _word_start_in_run(_GITLAB)),
        Rule("slack_token", _SLACK, _word_start_in_run(_SLACK)),
        Rule("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]{20,}"),
        Rule("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
        Rule("openai_key", _OPENAI, _word_start_in_run(_OPENAI, _openai)),
        Rule("anthropic_key", _ANTHROPIC, _word_start_in_run(_ANTHROPIC)),
        Rule("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
        Rule("huggingface_token", r"hf_[A-Za-z0-9]{34}\b", _word_start),
        Rule("npm_token", r"npm_[A-Za-z0-9]{36}\b", _word_start),
        Rule("pypi_token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}", _word_start),
        Rule("sendgrid_key", r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b", _word_start),
        # Header, body lines (PEM headers such as Proc-Type, or base64) and the END line, each
        # a run of one character class: no lazy "find the END" search, which would rescan
        # the rest of the text once per BEGIN. The header branch comes first: RE2 takes the
        # first branch that leads to a match, and the body's took `Proc` of `Proc-Type:`.
        Rule(
            "private_key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            rf"(?:{_PEM_LINE_END}+(?:[A-Za-z][A-Za-z\-]*:[ -\[\]-~]*|{_PEM_BODY}))*"
            rf"(?:{_PEM_LINE_END}*-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
        ),
        Rule("jwt", r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}"),
        # The credential of an HTTP Authorization header, as logs and curl commands show it.
        Rule("bearer_token", r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)", _bearer),
        Rule("basic_auth", r"(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})", _basic),
        # user:password@ in any URL (database, broker, HTTP basic auth), the user possibly
        # empty (`redis://:password@cache`). The scheme is not counted: `{1,30}` made the
        # union set's DFA track every letter run's length (see the hidden-element rule in
        # injection.py), and 31 letters before `://` hid the URL. Without an `@` after it, a
        # colon is a port's (`http://example.com:8080/`, `http://[::1]:8080/`).
        Rule(
            "url_password",
            r"\b[A-Za-z][A-Za-z0-9+.\-]+://[^\s:/@\"'<>]*:([^\s@/\"'<>]+)@[^\s/@\"'<>]+",
            _password_group,
        ),
        # A literal password in code or config is a leak whatever its entropy.
        Rule(
            "password_assignment",
            r"(?i)\b[A-Za-z0-9_]*(?:password|passwd|pwd)[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']",
            _password_group,
        ),
        # Unquoted, whatever its entropy, where the form says it is one: `DB_PASSWORD=hunter2`
        # (an env file, an INI file, a query string), `--password hunter2`, and a YAML line
        # `password: hunter2` (one word to the end of the line: prose goes on). A bare `PWD`
        # is the working directory.
        Rule(
            "password_assignment",
            r"(?i)(?:(?:password|passwd|_pwd|_pass)\s*=|--password[= ])\s*"
            r"([^\s\"'$;&]+)",
            _unquoted_password,
        ),
        Rule(
            "password_assignment",
            r"(?i)(?:password|passwd):[ \t]+([^\s\"']+)",
            _last_word_of_line,
        ),
        # Password=...; in ADO/ODBC-style connection strings.
        Rule(
            "connection_string",
            r"(?i)\b(?:password|pwd)\s*=\s*([^;\s\"']{3,})\s*;",
            _password_group,
        ),
        # api_key = "...", SECRET_KEY: ..., "clientSecret": "..." with a random-looking value.
        Rule(
            "generic_secret",
            r"(?i)[A-Za-z0-9_.\-]*(?:" + _NAMES + r")[A-Za-z0-9_.\-]*[\"']?\s*[:=]>?\s*[\"']?"
            r"([A-Za-z0-9+/_\-.!#$%^&*~=]{12,})",
            _assignment,
        ),
    ),
}
