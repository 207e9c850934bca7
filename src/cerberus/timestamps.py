"""The timestamp types the admin API takes: converted to UTC, or refused with a reason.

Python's datetimes run from year 1 to year 9999, so `9999-12-31T23:59:59-01:00` parses but
has no UTC equivalent (`astimezone(UTC)` raises OverflowError). Every datetime input goes
through `in_utc`, which turns that into a validation error (422 naming the field); values
are in UTC from then on, so the database layer's own conversion cannot overflow on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

OUT_OF_RANGE = "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in UTC"


def in_utc(value: datetime) -> datetime:
    """The same instant in UTC; a time without an offset is read as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None


# An ISO 8601 time that must carry an offset (one without is 422), as UTC.
UTCTimestamp = Annotated[AwareDatetime, AfterValidator(in_utc)]
# An ISO 8601 time whose offset may be left out, meaning UTC, as UTC.
UTCTimestampOrNaive = Annotated[datetime, AfterValidator(in_utc)]
