from __future__ import annotations

import io
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from cerberus.logs import configure_logging, log_time, scrub

SECRETS = [
    "sk-live0123456789abcdefghijklmnop",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "hunter2-correct-horse",
]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", stream)
    yield stream
    root.handlers, root.level = saved[0], saved[1]


def log_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_each_request_is_one_json_line_with_its_id(
    client: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    response = await client.get("/health")
    request_lines = [line for line in log_lines(log_stream) if line["message"] == "request"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["method"] == "GET"
    assert line["path"] == "/health"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == response.headers["x-request-id"]


async def test_every_line_names_the_service_from_app_name(client: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", stream, service="cerberus-stage")
    try:
        await client.get("/health")
        logging.getLogger("cerberus.test").warning("something %s", "happened")
    finally:
        configure_logging("INFO", io.StringIO())
        root.handlers, root.level = saved[0], saved[1]
    lines = log_lines(stream)
    assert {line["message"] for line in lines} >= {"request", "something happened"}
    assert {line["service"] for line in lines} == {"cerberus-stage"}


async def test_a_sane_client_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"


async def test_credentials_never_reach_the_logs(
    client: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    await client.get(
        f"/health?token={SECRETS[1]}", headers={"Authorization": f"Bearer {SECRETS[0]}"}
    )
    logger = logging.getLogger("cerberus.test")
    logger.info("connecting with Authorization: Bearer %s", SECRETS[0])
    logger.info("login attempt", extra={"password": SECRETS[2], "token": SECRETS[1]})
    logger.info('payload {"password": "%s", "api_key": "%s"}', SECRETS[2], SECRETS[0])
    logger.info("dsn postgresql://cerberus:%s@db:5432/x", SECRETS[2])
    output = log_stream.getvalue()
    assert output.strip()
    for secret in SECRETS:
        assert secret not in output


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def.ghi",
        "key sk-abcdefghijklmnop",
        "password=swordfish",
        "redis://:swordfish@cache:6379",
    ],
)
def test_scrub_masks_credential_shapes(text: str) -> None:
    masked = scrub(text)
    assert "swordfish" not in masked
    assert "abcdefghijklmnop" not in masked
    assert "abc.def.ghi" not in masked


async def test_access_line_scrubs_credentials_a_client_put_in_the_path_or_request_id(
    client: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    await client.get(f"/nowhere/{SECRETS[0]}", headers={"X-Request-ID": SECRETS[0]})
    access = [line for line in log_lines(log_stream) if line["message"] == "request"]
    assert len(access) == 1
    assert access[0]["status"] == 404
    assert SECRETS[0] not in log_stream.getvalue()


async def test_access_line_is_the_same_whether_written_directly_or_through_a_filter(
    client: httpx.AsyncClient, log_stream: io.StringIO
) -> None:
    # With only configure_logging's handler, the access line is written without a LogRecord;
    # a filter on the handler makes it take the logging hierarchy. Both must give the same line.
    await client.get(f"/nowhere?token={SECRETS[2]}", headers={"X-Request-ID": "trace-1"})
    handler = logging.getLogger().handlers[0]
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    handler.addFilter(keep)
    try:
        await client.get(f"/nowhere?token={SECRETS[2]}", headers={"X-Request-ID": "trace-1"})
    finally:
        handler.removeFilter(keep)
    direct, filtered = [line for line in log_lines(log_stream) if line["message"] == "request"]
    assert any(record.name == "cerberus.access" for record in seen)
    for line in (direct, filtered):
        assert line.pop("time")
        assert isinstance(line.pop("duration_ms"), float)
    assert direct == filtered
    assert SECRETS[2] not in json.dumps(direct)


def test_log_time_is_datetimes_isoformat_to_the_millisecond() -> None:
    draw = random.Random(29)
    now = time.time()
    times = [now + draw.uniform(-1e7, 1e7) for _ in range(20_000)]
    for second in (0, 1_790_000_000, 1_790_000_001):
        for fraction in (0.0, 0.0005, 0.0009995, 0.0009994999, 0.999, 0.9995, 0.9999995):
            times.append(second + fraction)
        times.append(math.nextafter(second + 1, 0))
    for created in times:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert log_time(created) == expected, created
