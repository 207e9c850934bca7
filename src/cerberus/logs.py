"""JSON logs, one line per request, with credentials scrubbed from every message."""

from __future__ import annotations

import logging
import math
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerberus.ids import time_ordered_hex

access_logger = logging.getLogger("cerberus.access")
# The access record carries its fields as one tuple too, so JsonFormatter can skip the
# generic path (every attribute of the record walked and scrubbed) on every request.
_ACCESS = "_cerberus_access"
_ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "request_id")
_Access = tuple[str, str, int, float, str]
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Anything that looks like a credential is masked, whatever code logged it.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',}&]+"
    ),
    re.compile(r"(?i)(://[^:/@\s]*:)[^@/\s]+(@)"),
]
# One pass that says whether any pattern matches at all: most strings hold no credential,
# and five substitutions per string were most of the cost of a log line.
_ANY_SECRET = re.compile(
    "|".join(
        f"(?i:{p.pattern[4:]})" if p.pattern.startswith("(?i)") else f"(?:{p.pattern})"
        for p in _SECRET_PATTERNS
    )
)
_SENSITIVE_FIELDS = frozenset(
    {"authorization", "password", "token", "access_token", "refresh_token", "key", "api_key"}
)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}


def scrub(text: str) -> str:
    if _ANY_SECRET.search(text) is None:
        return text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(r"\1***\2", text)
        elif pattern.groups == 1:
            text = pattern.sub(r"\1***", text)
        else:
            text = pattern.sub("***", text)
    return text


# A line's time as `datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")` gives
# it: formatting that took ~13,000 instructions of every proxied call (docs/benchmarks.md),
# so the seconds are formatted once per second and the milliseconds looked up.
_MILLISECONDS = tuple(f".{ms:03d}+00:00" for ms in range(1000))
_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def log_time(created: float) -> str:
    """The time of a log line, in UTC to the millisecond (`2026-11-29T07:21:21.698+00:00`)."""
    global _second
    whole = math.floor(created)
    # As datetime does: microseconds rounded half to even, then cut to milliseconds.
    micro = round((created - whole) * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, datetime.fromtimestamp(whole, UTC).isoformat()[:19])
    return cached[1] + _MILLISECONDS[micro // 1000]


# APP_NAME, on every line: instances of several deployments often share one log store.
_service = "cerberus"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, _ACCESS, None)
        if access is not None:
            return _access_line(record, access)
        entry: dict[str, Any] = {
            "time": log_time(record.created),
            "level": record.levelname,
            "service": _service,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name in _STANDARD_ATTRS or name.startswith("_"):
                continue
            if name.lower() in _SENSITIVE_FIELDS:
                entry[name] = "***"
            elif isinstance(value, str):
                entry[name] = scrub(value)
            else:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def _access_line(record: logging.LogRecord, access: _Access) -> str:
    """The per-request line, from fields `_log_access` already scrubbed: nothing to walk."""
    return _access_json(record.created, record.levelname, record.name, str(record.msg), access)


def _access_json(created: float, level: str, name: str, message: str, access: _Access) -> str:
    method, path, status, duration_ms, request_id = access
    return orjson.dumps(
        {
            "time": log_time(created),
            "level": level,
            "service": _service,
            "logger": name,
            "message": message,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": request_id,
        }
    ).decode()


def _log_access(
    method: str, path: str, status: int, duration_ms: float, request_id: str, chosen: bool
) -> None:
    """Scrubs only what a client chose: the path, an unusual method, its own request id."""
    access: _Access = (
        method if method in _HTTP_METHODS else scrub(method),
        scrub(path),
        status,
        duration_ms,
        scrub(request_id) if chosen else request_id,
    )
    handler = _plain_handler()
    if handler is not None:
        # The same line the record would give, without building a LogRecord and passing it
        # through the logger hierarchy (most of a line's cost, on every proxied request).
        line = _access_json(time.time(), "INFO", access_logger.name, "request", access)
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        finally:
            handler.release()
        return
    # The fields also stay plain record attributes for other handlers and formatters.
    extra: dict[str, Any] = dict(zip(_ACCESS_FIELDS, access, strict=True))
    extra[_ACCESS] = access
    # makeRecord + handle rather than .info(): no caller lookup (a stack walk) per request.
    record = access_logger.makeRecord(
        access_logger.name, logging.INFO, __file__, 0, "request", (), None, extra=extra
    )
    access_logger.handle(record)


# The handler configure_logging installed, while it is still the only place records go.
_configured: logging.StreamHandler[Any] | None = None


def _plain_handler() -> logging.StreamHandler[Any] | None:
    """configure_logging's handler when nothing else would see or filter an access record."""
    handler = _configured
    root = logging.root
    if (
        handler is None
        or access_logger.handlers
        or access_logger.filters
        or not access_logger.propagate
        or access_logger.disabled
        or root.handlers != [handler]
        or handler.filters
        or handler.level > logging.INFO
    ):
        return None
    return handler


def configure_logging(level: str, stream: Any = None, service: str = "cerberus") -> None:
    global _configured, _service
    _service = service
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    _configured = handler
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn's own access log would repeat ours without the request id.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every connection at INFO; cerberus.migrate logs the outcome instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class RequestLogMiddleware:
    """Gives every request an id (X-Request-ID, kept if the client sent a sane one) and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, chosen = assign_request_id(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_request(scope, status, started, request_id, chosen)


def new_request_id() -> str:
    # Time first: audit rows are indexed by request id (cerberus/ids.py says why).
    return time_ordered_hex()


def assign_request_id(scope: Scope) -> tuple[str, bool]:
    """The request's id (the client's if sane, else a new one), stored in scope["state"];
    the flag says the client chose it (then it is scrubbed before it is logged)."""
    incoming = _incoming_request_id(scope)
    request_id = incoming or new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id, incoming is not None


def log_request(scope: Scope, status: int, started: float, request_id: str, chosen: bool) -> None:
    """The access line of one finished request (`started` from time.perf_counter())."""
    if access_logger.isEnabledFor(logging.INFO):
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        _log_access(scope["method"], scope["path"], status, duration_ms, request_id, chosen)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 128 and text.isascii() and text.isprintable():
                return text
    return None
