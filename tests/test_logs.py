from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from cerberus.logs import configure_logging, scrub

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
