from __future__ import annotations

import time
import uuid

from cerberus.ids import random_bytes, time_ordered_hex, uuid7_many


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


def test_a_forked_child_draws_its_own_random_bytes() -> None:
    import os

    time_ordered_hex()  # the parent holds a pool of random bytes now
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, random_bytes(32))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        child = reader.read()
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != random_bytes(32)


def test_ids_made_on_many_threads_are_unique() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: time_ordered_hex(), range(20000)))
    assert len(set(made)) == len(made)
