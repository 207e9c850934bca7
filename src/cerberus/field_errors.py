"""A service's verdict on one input field, rendered like any other 422 (field + message)."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError


def field_error(field: str, message: str) -> RequestValidationError:
    """Raise the result: the app's handler answers 422 `{"detail": "field: message", ...}`."""
    location = ("body", *field.split("."))
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])
