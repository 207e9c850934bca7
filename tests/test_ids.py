from __future__ import annotations

import time
import uuid

from cerberus.ids import time_ordered_hex, uuid7_many


def test_uuid7_are_valid_version_7_uuids_and_unique() -> None:
    ids = uuid7_many(5000)
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_made_later_sort_later() -> None:
    first_uuid, first_hex = uuid7_many(1)[0], time_ordered_hex()
    time.sleep(0.002)
    second_uuid, second_hex = uuid7_many(1)[0], time_ordered_hex()
    assert first_uuid < second_uuid
    assert first_hex < second_hex


def test_time_ordered_hex_is_32_hex_digits_and_unique() -> None:
    made = {time_ordered_hex() for _ in range(5000)}
    assert len(made) == 5000
    assert all(len(text) == 32 and int(text, 16) >= 0 for text in made)
