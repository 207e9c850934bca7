"""A service's verdict on one input field, rendered like any other 422 (field + message)."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError


def reject_null(value: Any) -> Any:
    """For PATCH schemas: leaving a field out keeps it; sending null for a required one is 422."""
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value


def field_error(field: str, message: str) -> RequestValidationError:
    """Raise the result: the app's handler answers 422 `{"detail": "field: message", ...}`."""
    location = ("body", *field.split("."))
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])
