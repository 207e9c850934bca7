"""The few exceptions services raise; one handler renders each as `{"detail": ...}`."""

from __future__ import annotations


class CerberusError(Exception):
    """A failure the caller can be told about: it carries the HTTP status that describes it."""

    status_code = 400

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequest(CerberusError):
    status_code = 400


class Unauthorized(CerberusError):
    status_code = 401


class Forbidden(CerberusError):
    status_code = 403


class NotFound(CerberusError):
    status_code = 404


class Conflict(CerberusError):
    status_code = 409


class Unprocessable(CerberusError):
    status_code = 422


class TooManyRequests(CerberusError):
    status_code = 429


class UpstreamUnavailable(CerberusError):
    status_code = 502


class ConfigurationError(Exception):
    """Settings or environment that make start-up impossible; the CLI prints it as one line."""
